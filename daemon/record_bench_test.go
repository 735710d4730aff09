package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/runner"
	"github.com/chaosd/chaosd/probes"
	"github.com/chaosd/chaosd/targets"
)

// healthyBackend is a Prometheus whose probes always hold.
type healthyBackend struct{}

func (healthyBackend) Ping(context.Context) error { return nil }
func (healthyBackend) Eval(_ context.Context, p probes.Probe, at time.Time) probes.Result {
	return probes.Result{Probe: p.Name, Time: at, OK: true, Value: 1}
}
func (b healthyBackend) EvalRange(ctx context.Context, p probes.Probe, start, end time.Time, step time.Duration) ([]probes.Result, error) {
	var out []probes.Result
	for t := start; !t.After(end); t = t.Add(step) {
		out = append(out, b.Eval(ctx, p, t))
	}
	return out, nil
}
func (healthyBackend) ScrapeInterval(context.Context) (time.Duration, error) {
	return 5 * time.Millisecond, nil
}

// instantAgent applies and reverts every fault at once.
type instantAgent struct{}

func (instantAgent) Status(context.Context) (agentapi.Status, error) { return agentapi.Status{}, nil }
func (instantAgent) Inject(_ context.Context, f agentapi.Fault) (agentapi.FaultStatus, error) {
	return agentapi.FaultStatus{Fault: f, State: agentapi.StateActive, AppliedAt: time.Now()}, nil
}
func (instantAgent) Renew(context.Context, string, time.Duration) (agentapi.FaultStatus, error) {
	return agentapi.FaultStatus{State: agentapi.StateActive}, nil
}
func (instantAgent) Revert(context.Context, string) (agentapi.FaultStatus, error) {
	return agentapi.FaultStatus{State: agentapi.StateReverted, RevertedAt: time.Now(), Verified: true}, nil
}

// nodesInventory resolves every target to n nodes, each with an instantAgent.
type nodesInventory int

func (n nodesInventory) Resolve(_ context.Context, t experiments.Target) ([]targets.Node, error) {
	out := make([]targets.Node, n)
	for i := range out {
		out[i] = targets.Node{Cluster: t.Cluster, Name: fmt.Sprintf("n%d", i)}
	}
	return out, nil
}
func (nodesInventory) Agent(string, string) (runner.Agent, error) { return instantAgent{}, nil }

// BenchmarkRunRecordWrites runs whole runs of 10, 100 and 1,000 partition
// faults (one per node, agents answering at once, a 50ms fault) through
// the daemon's saver into a real Store, and reports what one run costs
// the data directory: fsyncs/run and KiB-written/run (the run record's
// durable writes; the first record, written before the run starts,
// included).
func BenchmarkRunRecordWrites(b *testing.B) {
	slo := []probes.Probe{{Name: "slo", Query: "up", Op: probes.OpGE, Threshold: new(float64)}}
	*slo[0].Threshold = 1
	exp := &experiments.Experiment{APIVersion: experiments.APIVersion, Kind: "Experiment", Metadata: experiments.Metadata{Name: "bench"},
		Spec: experiments.Spec{
			Targets: []experiments.Target{{Name: "nodes", Cluster: "c1", Mode: experiments.BlastRadius{Kind: experiments.BlastAll}}},
			Faults: []experiments.Fault{{Name: "cut", Kind: agentapi.KindPartition, Target: "nodes",
				Partition: &experiments.PartitionParams{CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Direction: experiments.DirectionBoth}}},
			Duration:      experiments.Duration(50 * time.Millisecond),
			ProbeInterval: experiments.Duration(10 * time.Millisecond),
			SteadyState:   experiments.SteadyState{Probes: slo},
			Recovery: experiments.Recovery{RTO: experiments.Duration(10 * time.Second), HoldFor: experiments.Duration(30 * time.Millisecond),
				Timeout: experiments.Duration(2 * time.Second), Probes: slo},
		}}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("faults=%d", n), func(b *testing.B) {
			st, err := store.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			d := &Daemon{store: st, lg: zap.NewNop()}
			d.runs.init()
			inv := nodesInventory(n)
			for i := 0; i < b.N; i++ {
				rec := api.Run{ID: fmt.Sprintf("r-bench-%d", i), Experiment: "bench", CreatedAt: time.Now()}
				var rn *runner.Runner
				save := d.saver(d.lg, func(why string) { rn.Fail(why) })
				rn = runner.New(exp, rec, runner.Deps{Prober: healthyBackend{}, Inventory: inv, Agents: inv, Save: save}, nil, runner.Options{})
				if err := st.Save(rn.Record()); err != nil {
					b.Fatal(err)
				}
				if final := rn.Run(context.Background()); final.Verdict != api.VerdictPass {
					b.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
				}
			}
			s := st.Stats()
			b.ReportMetric(float64(s.Syncs)/float64(b.N), "fsyncs/run")
			b.ReportMetric(float64(s.Bytes)/1024/float64(b.N), "KiB-written/run")
			b.ReportMetric(float64(s.Writes)/float64(b.N), "writes/run")
		})
	}
}
