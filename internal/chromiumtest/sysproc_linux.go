package chromiumtest

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts the browser in its own process group (so its helpers
// can be ended together) and has the kernel kill it if the test binary
// dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup ends the browser's process group (the one this package
// started), if it is still there.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil || cmd.Process.Pid <= 0 {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}
