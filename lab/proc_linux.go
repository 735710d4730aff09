package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// startProc starts argv inside namespace ns with `ip netns exec`, which
// execs the program in place: the recorded PID is the program's own and
// its cmdline is argv. The process gets its own session so it outlives
// the `chaoslab up` that started it; output goes to logPath.
func startProc(ns string, argv []string, logPath string) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	// nsenter joins only the network namespace. (`ip netns exec` also
	// unshares the mount namespace and remounts /sys, which hides the
	// cgroup hierarchy the agents' memory faults and the lab's cgroups
	// live in.)
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, "--"}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s in %s: %w", argv[0], ns, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reap it if it ends while we run
	// Wait for nsenter to exec the program, so that the recorded
	// argv is what /proc/PID/cmdline shows from now on.
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for !procMatches(pid, argv) {
		select {
		case <-exited:
			return 0, fmt.Errorf("start %s in %s: exited at once (%s): %s", argv[0], ns, cmd.ProcessState, tail(logPath, 800))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return 0, fmt.Errorf("start %s in %s: did not exec within 5s", argv[0], ns)
		}
	}
	return pid, nil
}

// procMatches reports whether pid is alive (not a zombie) and still runs
// argv, so a recycled PID is never signalled.
func procMatches(pid int, argv []string) bool {
	if pid <= 1 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return false // gone, or a zombie
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if len(got) != len(argv) {
		return false
	}
	for i := range got {
		if got[i] != argv[i] {
			return false
		}
	}
	return true
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// state is the field after "(comm)".
	if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// stopProc sends SIGTERM (the agents revert faults on it), waits up to
// grace, then SIGKILLs. It signals only if the cmdline still matches.
func stopProc(ctx context.Context, p Proc, grace time.Duration, log *zap.Logger) error {
	if !procMatches(p.PID, p.Argv) {
		return nil
	}
	log.Info("stopping process", zap.String("proc", p.Name), zap.Int("pid", p.PID))
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s (pid %d): %w", p.Name, p.PID, err)
	}
	if waitGone(ctx, p.PID, grace) {
		return nil
	}
	log.Warn("process ignored SIGTERM, killing", zap.String("proc", p.Name), zap.Int("pid", p.PID))
	if procMatches(p.PID, p.Argv) {
		if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
		}
	}
	if !waitGone(ctx, p.PID, 5*time.Second) {
		return fmt.Errorf("%s (pid %d) still running after SIGKILL", p.Name, p.PID)
	}
	return nil
}

func waitGone(ctx context.Context, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		select {
		case <-ctx.Done():
			return !alive(pid)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return !alive(pid)
}
