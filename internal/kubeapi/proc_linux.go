package kubeapi

import (
	"errors"
	"syscall"
)

// sysProcAttr makes the kernel kill a server process if the test binary
// dies without stopping it, so no etcd or kube-apiserver outlives a
// crashed test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
