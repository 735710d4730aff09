//go:build !linux

package memory

import (
	"errors"
	"syscall"
)

const supported = false

var errUnsupported = errors.New("the memory fault needs Linux")

func stressorPrelude(int) error             { return errUnsupported }
func mapAnon(uint64) ([]byte, error)        { return nil, errUnsupported }
func sysProcAttr(int) *syscall.SysProcAttr  { return nil }
func cloneIntoCgroupUnsupported(error) bool { return false }
func killIf(int, func() bool) (bool, error) { return false, errUnsupported }
func writable(string) error                 { return errUnsupported }
func openDir(string) (int, error)           { return -1, errUnsupported }
func closeFD(int)                           {}
func setCgroupNS(string) error              { return errUnsupported }
