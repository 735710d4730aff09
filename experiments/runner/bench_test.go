package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/internal/agentsim"
	"github.com/chaosd/chaosd/targets"
)

// benchAgents serves the simulated fleet's agents through chaosd's real
// agent client (one per agent, kept across runs like chaosd's fleet).
type benchAgents map[string]*agentclient.Client

func (a benchAgents) Agent(_, node string) (Agent, error) {
	if c, ok := a[node]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("no agent for node %s", node)
}

// countRecorder counts the faults in place and calls onInjected with
// the count after each.
type countRecorder struct {
	injected   atomic.Int64
	onInjected func(n int64)
}

func (c *countRecorder) Event(_ string, _ *targets.Node, _ bool, reason, _ string) {
	if reason == ReasonInjected {
		n := c.injected.Add(1)
		if c.onInjected != nil {
			c.onInjected(n)
		}
	}
}

// benchFleet spawns n simulated agents in a child process (so this
// process's CPU time and memory are chaosd's alone) with the latency
// profile prof, and clients for them.
func benchFleet(b *testing.B, n int, prof agentsim.Profile) benchAgents {
	b.Helper()
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "sim")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	fleet, err := agentsim.Spawn(agentsim.Config{Dir: dir, Agents: n, Profile: prof, Token: "t"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fleet.Stop() })
	agents := benchAgents{}
	for _, nd := range fleet.Nodes() {
		c, err := agentclient.NewClient(nd.Endpoint, "t")
		if err != nil {
			b.Fatal(err)
		}
		agents[nd.Name] = c
	}
	return agents
}

// benchRunner is a runner of a partition on every agent, its plan
// resolved and every agent asked once (connections open).
func benchRunner(b *testing.B, agents benchAgents, rec Recorder) (*Runner, []liveFault) {
	b.Helper()
	save := func(r api.Run) error { return json.NewEncoder(io.Discard).Encode(r) } // a save's encoding, without the disk
	r := New(experiment(nil), api.Run{ID: "r-bench", Experiment: "t"},
		Deps{Inventory: manyNodes(len(agents)), Agents: agents, Save: save, Recorder: rec}, nil, Options{})
	// The record writer runs as in Run: saves coalesce (at most one per
	// SaveInterval, and the durable ones the fan-out waits for).
	r.w.start(r)
	b.Cleanup(func() { _ = r.w.stopAndFlush(r) })
	ctx := context.Background()
	plan, err := r.plan(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if why := r.checkAgents(ctx, plan); why != "" {
		b.Fatal(why)
	}
	return r, plan
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapLive is the live heap after a collection.
func heapLive() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// allocated is what this process has allocated so far.
func allocated() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.TotalAlloc)
}

// fanOutCases are the fleets the fan-out is measured on: agents as fast
// as the agent measures today (agentsim.Now), and as slow as before issue
// 10 (agentsim.Before, ~15 ms a call), each with 10, 100 and 1,000 agents.
func fanOutCases(b *testing.B, run func(b *testing.B, n int, prof agentsim.Profile)) {
	for _, p := range []struct {
		name string
		prof agentsim.Profile
	}{{"now", agentsim.Now}, {"before", agentsim.Before}} {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("agent=%s/agents=%d", p.name, n), func(b *testing.B) { run(b, n, p.prof) })
		}
	}
}

// BenchmarkFanOut: chaosd puts a partition on N simulated agents
// (fanOutCases) and reverts it, through its real agent client on unix sockets, the
// agents in a child process. Per run: inplace-ms (first inject asked →
// every fault in place), revert-ms (every fault reverted), and chaosd's
// cpu-µs/agent (inject + revert), heap-KiB/agent (live heap while the
// faults are in place) and alloc-KiB/agent (allocated by inject +
// revert: a cost that grew with N per fault would show here).
func BenchmarkFanOut(b *testing.B) {
	fanOutCases(b, func(b *testing.B, n int, prof agentsim.Profile) {
		agents := benchFleet(b, n, prof)
		ctx := context.Background()
		var inPlace, revert, cpu time.Duration
		var heap, alloc int64
		for b.Loop() {
			b.StopTimer()
			r, plan := benchRunner(b, agents, nil)
			heap0 := heapLive()
			b.StartTimer()
			a0, c0, t0 := allocated(), cpuTime(), time.Now()
			leases := r.startLeases(ctx)
			if v, why := r.injectAll(ctx, plan, leases); v != "" {
				b.Fatalf("inject: %s %s", v, why)
			}
			inPlace += time.Since(t0)
			cpu += cpuTime() - c0
			alloc += allocated() - a0
			b.StopTimer()
			heap += heapLive() - heap0
			b.StartTimer()
			a1, c1, t1 := allocated(), cpuTime(), time.Now()
			leases.stop()
			if err := r.revertAll(ctx); err != nil {
				b.Fatal(err)
			}
			revert += time.Since(t1)
			cpu += cpuTime() - c1
			alloc += allocated() - a1
		}
		runs := float64(b.N)
		b.ReportMetric(float64(inPlace.Microseconds())/1e3/runs, "inplace-ms")
		b.ReportMetric(float64(revert.Microseconds())/1e3/runs, "revert-ms")
		b.ReportMetric(float64(cpu.Microseconds())/runs/float64(n), "cpu-µs/agent")
		b.ReportMetric(float64(heap)/1024/runs/float64(n), "heap-KiB/agent")
		b.ReportMetric(float64(alloc)/1024/runs/float64(n), "alloc-KiB/agent")
	})
}

// BenchmarkHalt: a run is aborted (chaosd's halt) when half of its N
// faults are in place; halt-ms is the time from the abort until every
// fault that went in is reverted and no inject is in flight.
func BenchmarkHalt(b *testing.B) {
	fanOutCases(b, func(b *testing.B, n int, prof agentsim.Profile) {
		agents := benchFleet(b, n, prof)
		ctx := context.Background()
		var halt time.Duration
		for b.Loop() {
			b.StopTimer()
			var t0 atomic.Pointer[time.Time]
			rec := &countRecorder{}
			r, plan := benchRunner(b, agents, rec)
			rec.onInjected = func(k int64) {
				if k == int64(n/2) {
					now := time.Now()
					t0.Store(&now)
					r.Abort("halt")
				}
			}
			b.StartTimer()
			leases := r.startLeases(ctx)
			if v, _ := r.injectAll(ctx, plan, leases); v != api.VerdictAborted {
				b.Fatalf("inject ended %q, want aborted", v)
			}
			leases.stop()
			if err := r.revertAll(ctx); err != nil {
				b.Fatal(err)
			}
			halt += time.Since(*t0.Load())
		}
		b.ReportMetric(float64(halt.Microseconds())/1e3/float64(b.N), "halt-ms")
	})
}
