// Command vmexec is a `go test -exec` program that runs a Go test binary
// inside a stock Debian cloud kernel booted under QEMU (TCG).
//
// The host kernel on developer machines and CI lacks netem, prio and fq and
// mounts the memory controller through cgroup v1; the stock kernel has all
// of them and cgroup v2. go test invokes
//
//	vmexec <test-binary> <args...>
//
// with the package directory as working directory. vmexec caches the kernel
// and a base initramfs (busybox and kernel modules), appends the test binary
// and the package's testdata/ per run, boots the VM with no network device,
// streams the guest console to stdout and exits with the status the guest
// wrote to its second serial port. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// exitToolFailure is the exit status when vmexec itself fails (no kernel,
// no QEMU, no exit status from the guest), as opposed to the guest's tests.
const exitToolFailure = 125

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(exitCode(Run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// exitCode maps Run's error to the process exit status, printing it once.
func exitCode(err error, stderr *os.File) int {
	if err == nil {
		return 0
	}
	var ge *guestExitError
	if errors.As(err, &ge) {
		return ge.code
	}
	fmt.Fprintf(stderr, "vmexec: %v\n", err)
	return exitToolFailure
}
