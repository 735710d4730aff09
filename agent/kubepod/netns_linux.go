package kubepod

import (
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// NetNS is an open network namespace of a pod. It holds one file
// descriptor (which keeps the namespace alive while open): Close it.
type NetNS struct {
	fd     int
	ID     NSID
	PID    int    // the process it was opened through
	Cgroup string // that process's cgroup (relative to the hierarchy root)
}

// Fd is the namespace's file descriptor, valid until Close.
func (n *NetNS) Fd() int { return n.fd }

// Close releases the descriptor.
func (n *NetNS) Close() error {
	if n == nil || n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	return err
}

// StatNS returns the identity of the namespace file at path (e.g.
// /proc/PID/ns/net, a bind mount under /run/netns, /proc/self/fd/N).
func StatNS(path string) (NSID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return NSID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return NSID{Dev: st.Dev, Ino: st.Ino}, nil
}

// FdNS returns the identity of an open namespace file descriptor.
func FdNS(fd int) (NSID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return NSID{}, fmt.Errorf("fstat namespace fd %d: %w", fd, err)
	}
	return NSID{Dev: st.Dev, Ino: st.Ino}, nil
}

// openProcNetNS opens /proc/PID/ns/net of pr and checks that it is the
// namespace of the process that was in dir: a pidfd pins the process
// while its membership is read and its namespace opened, and is asked at
// the end whether the process still lives, so a PID reused meanwhile is
// never taken for the pod's.
func openProcNetNS(procRoot, dir string, pr Proc) (*NetNS, error) {
	pidfd, err := unix.PidfdOpen(pr.PID, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return nil, fmt.Errorf("pid %d: exited", pr.PID)
	case errors.Is(err, unix.ENOSYS):
		pidfd = -1 // before Linux 5.3: the membership re-check below only
	case err != nil:
		return nil, fmt.Errorf("pidfd_open %d: %w", pr.PID, err)
	default:
		defer unix.Close(pidfd)
	}
	if !InCgroup(dir, pr.PID) {
		return nil, fmt.Errorf("pid %d: no longer in %s", pr.PID, dir)
	}
	p := procRoot + "/" + strconv.Itoa(pr.PID) + "/ns/net"
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("open %s: %w (the agent needs the host's PID namespace and CAP_SYS_PTRACE to open other processes' namespaces)", p, err)
		}
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	if pidfd >= 0 {
		if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("pid %d: exited while its namespace was opened", pr.PID)
		}
	} else if !InCgroup(dir, pr.PID) {
		unix.Close(fd)
		return nil, fmt.Errorf("pid %d: left %s while its namespace was opened", pr.PID, dir)
	}
	id, err := FdNS(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &NetNS{fd: fd, ID: id, PID: pr.PID, Cgroup: pr.Cgroup}, nil
}
