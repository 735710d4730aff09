package daemon

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/probes/promtest"
)

// chaosdBinary returns the chaosd binary: CHAOSD_BIN_DIR's (make test
// builds it) or one built now.
func chaosdBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("CHAOSD_BIN_DIR"); dir != "" {
		if p := filepath.Join(dir, "chaosd"); fileExists(p) {
			return p
		}
	}
	out := filepath.Join(t.TempDir(), "chaosd")
	cmd := exec.Command("go", "build", "-o", out, "github.com/chaosd/chaosd/cmd/chaosd")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build chaosd: %v\n%s", err, b)
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// replica is one chaosd process of a two-replica deployment.
type replica struct {
	name   string
	cmd    *exec.Cmd
	client *client.Client
	done   chan error
}

// TestIntegrationLeaderKilledMidRun runs two chaosd replicas against a real
// API server, kills the leader (SIGKILL) while a run holds faults on both
// nodes, and checks that the other replica takes the Lease within its
// duration, marks the run interrupted in its ExperimentRun and reverts
// every fault it left.
func TestIntegrationLeaderKilledMidRun(t *testing.T) {
	ctx := context.Background()
	bin := chaosdBinary(t)
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	w := newKubeWorld(t, ctx, "kube-elect", healthy)
	w.createExperiment(t, ctx, experimentObject(t, w.ns, "cut", "60s", ""))

	const leaseDuration = 4 * time.Second
	replicas := map[string]*replica{}
	for _, name := range []string{"chaosd-a", "chaosd-b"} {
		dir := t.TempDir()
		cfg := w.kubeConfig(t, dir, prom)
		cfg.Kubernetes.LeaderElection.LeaseDuration = leaseDuration.String()
		data, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "chaosd.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(filepath.Join(dir, "chaosd.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", "--config", path)
		cmd.Env = append(os.Environ(), "POD_NAME="+name)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := &replica{name: name, cmd: cmd, done: make(chan error, 1)}
		go func() { r.done <- cmd.Wait(); log.Close() }()
		r.client, _ = client.NewClient("unix://"+cfg.Listen.Socket, "secret-token")
		replicas[name] = r
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-r.done:
				case <-time.After(30 * time.Second):
					_ = cmd.Process.Kill()
				}
			}
			if t.Failed() {
				b, _ := os.ReadFile(log.Name())
				t.Logf("%s log (tail):\n%s", name, tail(string(b), 4000))
			}
		})
	}
	holder := func() string {
		l, err := w.admin.CoordinationV1().Leases(w.ns).Get(ctx, DefaultLeaseName, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	var leader string
	waitFor(t, 30*time.Second, "a leader is elected", func() bool { leader = holder(); return leader != "" })
	var follower string
	for name := range replicas {
		if name != leader {
			follower = name
		}
	}
	lc, fc := replicas[leader].client, replicas[follower].client
	waitFor(t, 30*time.Second, "both replicas answer", func() bool { return lc.Health(ctx) == nil && fc.Health(ctx) == nil })

	// The follower says who leads instead of running.
	if _, err := fc.StartRun(ctx, api.StartRequest{Experiment: "cut"}); err == nil || !strings.Contains(err.Error(), leader+" leads") {
		t.Errorf("follower's answer to a run: %v, want it to name the leader %s", err, leader)
	}
	var run api.Run
	var err error
	waitFor(t, 30*time.Second, "the leader accepts the run", func() bool {
		run, err = lc.StartRun(ctx, api.StartRequest{Experiment: "cut"})
		return err == nil
	})
	waitFor(t, 30*time.Second, "faults on both nodes", func() bool {
		return w.nodes[0].activeCount() == 1 && w.nodes[1].activeCount() == 1
	})

	killed := time.Now()
	if err := replicas[leader].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-replicas[leader].done
	waitFor(t, leaseDuration+10*time.Second, "the follower takes the Lease", func() bool { return holder() == follower })
	takeover := time.Since(killed)
	waitFor(t, 30*time.Second, "the new leader reverts the dead leader's faults", func() bool {
		return w.nodes[0].activeCount() == 0 && w.nodes[1].activeCount() == 0
	})
	reverted := time.Since(killed)
	ks := store.NewKubeStore(mustDynamic(t, w.srv), w.ns)
	var rec api.Run
	waitFor(t, 30*time.Second, "the run's record says interrupted", func() bool {
		rec, err = ks.Get(run.ID)
		return err == nil && rec.Phase == api.PhaseDone
	})
	if !rec.Interrupted || rec.Verdict != api.VerdictError {
		t.Errorf("record after the leader died: verdict %s interrupted %v reason %q", rec.Verdict, rec.Interrupted, rec.Reason)
	}
	for _, f := range rec.Faults {
		if f.InjectedAt != nil && (f.RevertedAt == nil || !f.Verified) {
			t.Errorf("fault %s on %s not recorded as reverted and verified: %+v", f.Name, f.Node, f)
		}
	}
	// The new leader runs experiments.
	if _, err := fc.StartRun(ctx, api.StartRequest{Experiment: "cut", DryRun: true}); err != nil {
		t.Errorf("the new leader refuses a run: %v", err)
	}
	t.Logf("leader %s killed: %s took the Lease after %s (lease %s), its faults were reverted after %s",
		leader, follower, takeover.Round(time.Millisecond), leaseDuration, reverted.Round(time.Millisecond))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
