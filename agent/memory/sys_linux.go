package memory

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const supported = true

// stressorPrelude asks the kernel to SIGKILL this process when its parent
// dies, then closes the race where the parent died before the prctl: if
// the parent is no longer the agent that started us, exit.
func stressorPrelude(parent int) error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_PDEATHSIG: %w", err)
	}
	if pp := os.Getppid(); pp != parent {
		return fmt.Errorf("parent %d is gone (parent is now %d)", parent, pp)
	}
	return nil
}

// mapAnon reserves size bytes of private anonymous memory (not yet backed:
// pages are charged as they are touched). MADV_NOHUGEPAGE keeps the charge
// growing page by page, so the ramp and the target stay exact even with
// transparent huge pages set to "always".
func mapAnon(size uint64) ([]byte, error) {
	if size > uint64(^uint(0)>>1) {
		return nil, fmt.Errorf("size %d too large", size)
	}
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	_ = unix.Madvise(b, unix.MADV_NOHUGEPAGE) // EINVAL without THP support: fine
	return b, nil
}

// sysProcAttr makes the stressor die with the thread that forks it
// (PDEATHSIG; the runtime re-checks the parent after the prctl) and, when
// cgroupFD >= 0, clones it straight into that cgroup (CLONE_INTO_CGROUP,
// cgroup v2 only).
func sysProcAttr(cgroupFD int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if cgroupFD >= 0 {
		a.UseCgroupFD, a.CgroupFD = true, cgroupFD
	}
	return a
}

// cloneIntoCgroupUnsupported says the kernel cannot clone into a cgroup
// (clone3 or CLONE_INTO_CGROUP missing: before 5.7).
func cloneIntoCgroupUnsupported(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.E2BIG)
}

// killIf sends SIGKILL to pid only if verify still holds once the process
// is pinned by a pidfd, so a PID reused between the check and the kill is
// never signalled. A process already gone is success (killed = false).
func killIf(pid int, verify func() bool) (killed bool, err error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.3: check then kill; the window is tiny.
		if !verify() {
			return false, nil
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return false, fmt.Errorf("kill %d: %w", pid, err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if !verify() {
		return false, nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return false, nil
		}
		return false, fmt.Errorf("pidfd_send_signal %d: %w", pid, err)
	}
	return true, nil
}

func writable(p string) error { return unix.Access(p, unix.W_OK) }

func openDir(p string) (int, error) {
	return unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

func closeFD(fd int) { unix.Close(fd) }

// setCgroupNS moves the calling thread into the cgroup namespace at path
// (the caller holds the thread locked and lets it end afterwards).
func setCgroupNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, unix.CLONE_NEWCGROUP)
}
