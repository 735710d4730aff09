package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/probes/promtest"
)

// mountDataDir mounts a small tmpfs (size) on the harness's data
// directory, unmounted when the test ends (after chaosd stops: cleanups
// run last registered first). It returns a function that remounts it
// read-only.
func mountDataDir(t *testing.T, h *harness, size string) (readOnly func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs for the data directory")
	}
	dir := h.cfg.DataDir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0750"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return func() {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount %s read-only: %v", dir, err)
		}
	}
}

// fillDir fills the file system of dir until it has no space left.
func fillDir(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return
		}
	}
}

// TestDaemonRefusesRunWhoseRecordCannotBeWritten: with the data directory
// read-only, starting a run fails with a 5xx saying why, and no agent is
// asked for anything.
func TestDaemonRefusesRunWhoseRecordCannotBeWritten(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	readOnly := mountDataDir(t, h, "4m")
	h.start()
	readOnly()
	_, err := h.client.StartRun(context.Background(), api.StartRequest{Experiment: "cut"})
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status < 500 || !strings.Contains(ae.Message, "read-only file system") ||
		!strings.Contains(ae.Message, "not started") || strings.Contains(ae.Message, h.cfg.DataDir) {
		t.Fatalf("start with a read-only data directory: %v; want a 5xx saying why, without the path", err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, n := range h.nodes {
		if f := n.lastFault(); f.ID != "" {
			t.Errorf("node %s was asked to inject %s", n.name, f.ID)
		}
	}
	if runs, err := h.client.Runs(context.Background()); err != nil || len(runs) != 0 {
		t.Errorf("runs: %v %v", runs, err)
	}
}

// TestIntegrationRunEndsInErrorWhenItsRecordCannotBeSaved: the data
// directory becomes read-only, or full, while a run holds its faults:
// the faults are reverted, the run ends in error saying its record could
// not be saved, GET still serves it (from memory), and chaosctl run
// --wait exits 3 with the reason instead of hanging or answering 404.
func TestIntegrationRunEndsInErrorWhenItsRecordCannotBeSaved(t *testing.T) {
	for _, tc := range []struct {
		name, cause string
		spoil       func(t *testing.T, h *harness, readOnly func())
	}{
		{"read-only", "read-only file system", func(_ *testing.T, _ *harness, readOnly func()) { readOnly() }},
		{"full", "no space left on device", func(t *testing.T, h *harness, _ func()) { fillDir(t, h.cfg.DataDir) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
			healthy.Set(1)
			prom := promtest.Start(t, exporter(t, healthy))
			h := newHarness(t, prom, healthy, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "60s", "")})
			readOnly := mountDataDir(t, h, "4m")
			h.start()
			var out, errOut bytes.Buffer
			code := make(chan int, 1)
			go func() {
				code <- cli.Run(context.Background(), []string{"--socket", h.cfg.Listen.Socket, "--token", "secret-token",
					"run", "cut", "--wait", "--poll", "200ms"}, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			}()
			deadline := time.Now().Add(30 * time.Second)
			for {
				if n := h.nodes[0].activeCount(); n > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no fault injected\n%s", errOut.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			tc.spoil(t, h, readOnly)
			var rc int
			select {
			case rc = <-code:
			case <-time.After(45 * time.Second):
				t.Fatalf("chaosctl run --wait still waiting 45s after the data directory was spoilt\n%s", errOut.String())
			}
			if rc != cli.ExitTool || !strings.Contains(out.String()+errOut.String(), "could not be saved") {
				t.Errorf("chaosctl exit %d, want 3 with the reason\nstdout:\n%s\nstderr:\n%s", rc, out.String(), errOut.String())
			}
			for _, n := range h.nodes {
				if n.activeCount() != 0 {
					t.Errorf("node %s still has faults", n.name)
				}
			}
			runs, err := h.client.Runs(context.Background())
			if err != nil || len(runs) != 1 {
				t.Fatalf("runs: %v %v", runs, err)
			}
			got, err := h.client.Run(context.Background(), runs[0].ID)
			if err != nil {
				t.Fatalf("GET the run: %v", err)
			}
			if got.Phase != api.PhaseDone || got.Verdict != api.VerdictError || !strings.Contains(got.Reason, "could not be saved ("+tc.cause+")") {
				t.Fatalf("run: phase %s verdict %s reason %q", got.Phase, got.Verdict, got.Reason)
			}
			for _, f := range got.Faults {
				if f.RevertedAt == nil {
					t.Errorf("fault %s on %s not recorded as reverted", f.Name, f.Node)
				}
			}
		})
	}
}

// TestDaemonSecondServeOnSameDataDirRefuses: a second chaosd on the same
// data directory refuses to start and leaves the live one's socket alone.
func TestDaemonSecondServeOnSameDataDirRefuses(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	h.start()
	d2, err := New(h.cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = d2.Run(ctx)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second chaosd Run: %v, want ErrLocked", err)
	}
	if _, err := os.Stat(h.cfg.Listen.Socket); err != nil {
		t.Fatalf("live socket: %v", err)
	}
	if err := h.client.Health(context.Background()); err != nil {
		t.Fatalf("first chaosd after the second tried: %v", err)
	}
}
