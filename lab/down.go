package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// DownByName removes the lab called name using its state directory alone
// (for `make lab-down` after a crash).
func DownByName(ctx context.Context, name string) error {
	return DownConfig(ctx, Config{Name: name})
}

// DownConfig removes the lab cfg names. Without a state directory it
// still deletes the lab namespaces of cfg.Prefix (default "cl").
func DownConfig(ctx context.Context, cfg Config) error {
	if err := cfg.complete(); err != nil {
		return err
	}
	st, err := readState(cfg.StateDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		cfg.Logger.Info("no lab state, removing namespaces by prefix", zap.String("state", cfg.StateDir), zap.String("prefix", cfg.Prefix))
		st = &State{Name: cfg.Name, Prefix: cfg.Prefix}
	case err != nil:
		return fmt.Errorf("read lab state: %w", err)
	}
	return teardown(ctx, cfg.StateDir, st, cfg.Logger)
}

// teardown stops processes (last started first), kills whatever else is
// left inside the lab's namespaces, deletes the namespaces and removes
// the state directory. It carries on past errors and returns them all.
func teardown(ctx context.Context, stateDir string, st *State, log *zap.Logger) error {
	start := time.Now()
	var errs []error
	for i := len(st.Procs) - 1; i >= 0; i-- {
		if err := stopProc(ctx, st.Procs[i], 10*time.Second, log); err != nil {
			errs = append(errs, err)
		}
	}
	// Every namespace the lab could have made: recorded ones plus the
	// fixed role names under the prefix (in case state was written late).
	nss := slices.Clone(st.Namespaces)
	for _, r := range Roles {
		if ns := NetnsName(st.Prefix, r); !slices.Contains(nss, ns) {
			nss = append(nss, ns)
		}
	}
	existing, err := listNetns()
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if !slices.Contains(existing, ns) {
			continue
		}
		// Anything still running inside a lab namespace was started by the
		// lab (a child of a lab process): it would keep the namespace alive.
		if err := killNetnsPids(ctx, ns, log); err != nil {
			errs = append(errs, err)
		}
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete netns %s: %w: %s", ns, err, strings.TrimSpace(string(out))))
		}
	}
	errs = append(errs, removeCgroups(st.Cgroups)...)
	if len(errs) == 0 {
		if err := os.RemoveAll(stateDir); err != nil {
			errs = append(errs, fmt.Errorf("remove state dir: %w", err))
		}
		if filepath.Dir(stateDir) == DefaultStateRoot {
			_ = os.Remove(DefaultStateRoot) // only if empty
		}
	}
	log.Info("lab down", zap.String("lab", st.Name), zap.Duration("took", time.Since(start)), zap.Int("errors", len(errs)))
	return errors.Join(errs...)
}

func listNetns() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

func killNetnsPids(ctx context.Context, ns string, log *zap.Logger) error {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return fmt.Errorf("list processes in %s: %w", ns, err)
	}
	self := os.Getpid()
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 || pid == self {
			continue
		}
		log.Warn("killing leftover process in lab namespace", zap.String("netns", ns), zap.Int("pid", pid))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill pid %d in %s: %w", pid, ns, err)
		}
		if !waitGone(ctx, pid, 5*time.Second) {
			return fmt.Errorf("pid %d in %s survived SIGKILL", pid, ns)
		}
	}
	return nil
}

func sleep() { time.Sleep(20 * time.Millisecond) }
