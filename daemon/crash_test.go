package daemon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/probes/promtest"
)

// manyFaultsExperiment is testExperiment with faults partitions, each on
// both nodes.
func manyFaultsExperiment(name string, faults int, duration string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: chaosd.io/v1alpha1\nkind: Experiment\nmetadata:\n  name: %s\nspec:\n", name)
	b.WriteString("  targets:\n    - name: c1-nodes\n      cluster: c1\n  faults:\n")
	for i := range faults {
		fmt.Fprintf(&b, "    - name: cut%d\n      kind: partition\n      target: c1-nodes\n      partition:\n        cidrs: [10.1.%d.0/24]\n", i, i)
	}
	fmt.Fprintf(&b, "  duration: %s\n  probeInterval: 1s\n", duration)
	b.WriteString("  steadyState:\n    baseline: 1s\n    probes:\n      - name: healthy\n        query: min(sut_healthy)\n        op: \"==\"\n        threshold: 1\n")
	b.WriteString("  recovery:\n    holdFor: 1s\n    timeout: 30s\n")
	return b.String()
}

// TestIntegrationChaosdKilledAtAnyPointLosesNoRun kills a chaosd process
// (SIGKILL) in the middle of a run of 16 faults, at a random agent call
// — just after an agent applied or removed a fault and before chaosd
// heard back — or at a random instant, then starts chaosd again on the
// same data directory: the run is there, ends interrupted (or with the
// verdict it reached), every fault any agent ever applied is named in its
// record, and none is left in place.
func TestIntegrationChaosdKilledAtAnyPointLosesNoRun(t *testing.T) {
	bin := chaosdBinary(t)
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0))
	const specFaults = 8 // × 2 nodes
	const calls = 2 * specFaults * 2
	for i := range 5 {
		// Kill at agent call k (injects 1..16, reverts 17..32), or, for
		// k == 0, at a random instant of the run.
		k := rnd.IntN(calls + 1)
		at := time.Duration(rnd.IntN(6000)) * time.Millisecond
		name := fmt.Sprintf("kill %d at call %d", i, k)
		if k == 0 {
			name = fmt.Sprintf("kill %d after %s", i, at)
		}
		t.Run(name, func(t *testing.T) {
			if i > 0 {
				// Let Prometheus' baseline forget the last run's impact.
				healthy.Set(1)
				time.Sleep(3 * time.Second)
			}
			h := newHarness(t, prom, healthy, map[string]string{"cut": manyFaultsExperiment("cut", specFaults, "3s")})
			cmd, exited := startChaosdProcess(t, bin, h)
			var once sync.Once
			kill := func() { once.Do(func() { _ = cmd.Process.Signal(syscall.SIGKILL) }) }
			var mu sync.Mutex
			n := 0
			for _, node := range h.nodes {
				node.afterCall = func() {
					mu.Lock()
					n++
					hit := n == k
					mu.Unlock()
					if hit {
						kill()
						<-exited // the answer never reaches chaosd
					}
				}
			}
			run, err := h.client.StartRun(context.Background(), api.StartRequest{Experiment: "cut"})
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				time.AfterFunc(at, kill)
			}
			for ended := false; !ended; {
				select {
				case <-exited:
					ended = true
				case <-time.After(200 * time.Millisecond):
					if r, err := h.client.Run(context.Background(), run.ID); err == nil && r.Phase == api.PhaseDone {
						t.Logf("the run ended (%s) before the kill point", r.Verdict)
						kill()
						<-exited
						ended = true
					}
				}
			}
			for _, node := range h.nodes {
				node.afterCall = nil
			}
			applied := map[string]bool{} // agent fault ID @ node
			for _, node := range h.nodes {
				node.mu.Lock()
				for _, e := range node.history {
					if id, ok := strings.CutPrefix(e, "inject "); ok {
						applied[id+"@"+node.name] = true
					}
				}
				node.mu.Unlock()
			}

			h.start() // the same data directory: restart recovery
			final := h.wait(run.ID, 60*time.Second)
			named := map[string]bool{}
			for _, f := range final.Faults {
				named[f.AgentFaultID+"@"+f.Node] = true
			}
			for id := range applied {
				if !named[id] {
					t.Errorf("fault %s was applied but the record does not name it", id)
				}
			}
			for _, node := range h.nodes {
				if c := node.activeCount(); c != 0 {
					t.Errorf("node %s: %d fault(s) left in place after the restart", node.name, c)
				}
			}
			if final.Verdict != api.VerdictError && final.Verdict != api.VerdictPass || (final.Verdict == api.VerdictError && !final.Interrupted) {
				t.Errorf("run after the restart: verdict %s interrupted %v (%s)", final.Verdict, final.Interrupted, final.Reason)
			}
			t.Logf("%d fault(s) applied before the kill; run %s: %s", len(applied), final.Verdict, final.Reason)
		})
	}
}

// startChaosdProcess starts chaosd serve with the harness's
// configuration as a process of its own; exited is closed when it ends.
func startChaosdProcess(t *testing.T, bin string, h *harness) (*exec.Cmd, chan struct{}) {
	t.Helper()
	data, err := yaml.Marshal(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(h.dir, "chaosd.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(h.dir, "chaosd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(20 * time.Second)
	for h.client.Health(context.Background()) != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(h.dir, "chaosd.log"))
			t.Fatalf("chaosd did not answer /healthz\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd, exited
}
