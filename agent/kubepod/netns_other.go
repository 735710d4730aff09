//go:build !linux

package kubepod

import "errors"

var errNotLinux = errors.New("kubepod: network namespaces need Linux")

// NetNS is an open network namespace of a pod (Linux only).
type NetNS struct {
	ID     NSID
	PID    int
	Cgroup string
}

// Fd is always -1 off Linux.
func (n *NetNS) Fd() int { return -1 }

// Close does nothing off Linux.
func (n *NetNS) Close() error { return nil }

// StatNS fails off Linux.
func StatNS(string) (NSID, error) { return NSID{}, errNotLinux }

// FdNS fails off Linux.
func FdNS(int) (NSID, error) { return NSID{}, errNotLinux }

func openProcNetNS(string, string, Proc) (*NetNS, error) { return nil, errNotLinux }
