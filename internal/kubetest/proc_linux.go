package kubetest

import "syscall"

// sysProcAttr makes the kernel kill a server process if the test binary
// dies without stopping it, so no etcd or kube-apiserver outlives a
// crashed test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
