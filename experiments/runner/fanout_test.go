package runner

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/targets"
)

// manyNodes resolves every target to nodes n1..nN.
type manyNodes int

func (n manyNodes) Resolve(_ context.Context, t experiments.Target) ([]targets.Node, error) {
	out := make([]targets.Node, n)
	for i := range out {
		out[i] = targets.Node{Cluster: t.Cluster, Name: fmt.Sprintf("n%d", i+1)}
	}
	return out, nil
}

// fanOutRun runs e against nodes fake agents with opts; during, when
// set, gets the runner once it exists.
func fanOutRun(t *testing.T, e *experiments.Experiment, s *system, nodes int, opts Options, during func(*Runner)) (api.Run, []api.Run) {
	t.Helper()
	var mu sync.Mutex
	var saved []api.Run
	save := func(r api.Run) error { mu.Lock(); saved = append(saved, r); mu.Unlock(); return nil }
	rn := New(e, api.Run{ID: "r-f", Experiment: "t"}, deps(s, manyNodes(nodes), save), zaptest.NewLogger(t), opts)
	if during != nil {
		during(rn)
	}
	final := rn.Run(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.active) != 0 {
		t.Fatalf("%d fault(s) left active after the run ended with %s: %s", len(s.active), final.Verdict, final.Reason)
	}
	if s.maxCalls > opts.FanOut && opts.FanOut > 0 {
		t.Errorf("%d agent calls in flight at once, want at most FanOut %d", s.maxCalls, opts.FanOut)
	}
	mu.Lock()
	defer mu.Unlock()
	return final, saved
}

// TestThousandFaultsKeepTheDefaultLease: 1,000 agents that take 15 ms per
// inject (today's partition) with the default lease (5s) and fan-out:
// every lease is renewed from its own inject, none is lost, and the run
// passes with every fault reverted. Injected one at a time, the first
// leases ran out before the last fault was in place.
func TestThousandFaultsKeepTheDefaultLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		s.injectDelay, s.renewDelay, s.revertDelay = 15*time.Millisecond, 5*time.Millisecond, 14*time.Millisecond
		s.recoverAfter = 0
		e := experiment(func(sp *experiments.Spec) {
			sp.Duration, sp.Recovery.RTO = experiments.Duration(12*time.Second), experiments.Duration(time.Minute)
		})
		final, _ := fanOutRun(t, e, s, 1000, Options{}, nil)
		if final.Verdict != api.VerdictPass {
			t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
		}
		if s.injected != 1000 || len(s.reverted) != 1000 {
			t.Errorf("injected %d, reverted %d; want 1000 and 1000", s.injected, len(s.reverted))
		}
		if s.maxCalls > DefaultFanOut {
			t.Errorf("%d agent calls in flight at once, want at most %d", s.maxCalls, DefaultFanOut)
		}
		// 12s with a renewal every 5s/3 per fault.
		if s.renewals < 1000*6 {
			t.Errorf("%d renewals for 1000 faults held 12s, want at least 6 each", s.renewals)
		}
		for _, f := range final.Faults {
			if f.InjectedAt == nil || f.RevertedAt == nil || !f.Verified || f.RevertReason != "requested" || f.Error != "" {
				t.Fatalf("fault %s on %s: %+v", f.Name, f.Node, f)
			}
		}
	})
}

// TestRenewalsStartWithTheFirstFault: a fan-out that takes longer than a
// lease (100 agents, 2 at a time, 10 ms each: 500ms against a 150ms
// lease) keeps every lease, because each fault is renewed from its own
// inject on.
func TestRenewalsStartWithTheFirstFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		s.recoverAfter, s.injectDelay = 0, 10*time.Millisecond
		final, _ := fanOutRun(t, experiment(nil), s, 100, Options{Lease: 150 * time.Millisecond, FanOut: 2}, nil)
		if final.Verdict != api.VerdictPass {
			t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
		}
		if inPlace := final.Times.Injected.Sub(*final.Faults[0].InjectedAt); inPlace < 300*time.Millisecond {
			t.Fatalf("the fan-out took %s; the test needs it longer than the lease", inPlace)
		}
	})
}

// TestRenewalsNeverOverlap: an agent slower to renew (80ms) than the
// renewal period (50ms) never gets a second renewal of a fault while the
// first is in flight, and the leases still hold.
func TestRenewalsNeverOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		s.recoverAfter, s.renewDelay = 0, 80*time.Millisecond
		final, _ := fanOutRun(t, experiment(nil), s, 20, Options{Lease: 150 * time.Millisecond}, nil)
		if final.Verdict != api.VerdictPass {
			t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
		}
		if s.renewOverlap || s.renewals < 20*3 {
			t.Errorf("overlapping renewals %v, %d renewals (want none overlapping, at least 3 per fault)", s.renewOverlap, s.renewals)
		}
	})
}

// TestFanOutFailedInjectRevertsEverything: one agent of 100 fails its
// inject while others are in flight. No inject starts after the failure,
// everything that went in is reverted, and the record names the failed
// node's error and says of every other fault what became of it. The
// record named all 100 faults before any agent was asked.
func TestFanOutFailedInjectRevertsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const fanOut = 8
		s := newSystem()
		s.failInjectOn, s.injectDelay = "n37", 5*time.Millisecond
		final, saved := fanOutRun(t, experiment(nil), s, 100, Options{Lease: 150 * time.Millisecond, FanOut: fanOut}, nil)
		if final.Verdict != api.VerdictError || !strings.Contains(final.Reason, "inject: fault cut on node n37: ") ||
			!strings.Contains(final.Reason, "operation not permitted") {
			t.Fatalf("verdict %s (%s), want error naming node n37", final.Verdict, final.Reason)
		}
		// n37 is the 37th in line: the faults in flight with it (a
		// round of fanOut, or two when one round ends as it fails) may
		// go in, no later one.
		if s.injected == 0 || s.injected > 36+2*fanOut {
			t.Errorf("%d faults injected; want some, and none started after the failure (at most %d)", s.injected, 36+2*fanOut)
		}
		var injected, notAsked int
		for _, f := range final.Faults {
			switch {
			case f.Node == "n37":
				if !strings.Contains(f.Error, "operation not permitted") {
					t.Errorf("record of the failed node: %+v", f)
				}
			case f.InjectedAt != nil:
				injected++
				if f.RevertedAt == nil || !f.Verified {
					t.Errorf("fault on %s injected but not recorded as reverted: %+v", f.Node, f)
				}
			default:
				notAsked++
				if !strings.HasPrefix(f.Error, "not injected: inject: fault cut on node n37") {
					t.Errorf("fault on %s never injected, record says %q", f.Node, f.Error)
				}
			}
		}
		if len(final.Faults) != 100 || injected != s.injected || injected+notAsked != 99 {
			t.Errorf("%d fault records, %d injected (agents saw %d), %d never asked", len(final.Faults), injected, s.injected, notAsked)
		}
		for _, r := range saved {
			if len(r.Faults) == 0 {
				continue
			}
			// The first save naming faults names all of them, none
			// injected yet.
			for _, f := range r.Faults {
				if f.InjectedAt != nil || f.Error != "" {
					t.Fatalf("the first record naming faults already has results: %+v", f)
				}
			}
			if len(r.Faults) != 100 {
				t.Fatalf("the first record naming faults names %d, want all 100", len(r.Faults))
			}
			break
		}
	})
}

// TestAbortDuringFanOut: an abort (a halt) while 1,000 faults fan out
// stops starting injects, reverts every fault that went in and ends the
// run aborted; the faults never asked for say so.
func TestAbortDuringFanOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		s.injectDelay, s.revertDelay = 15*time.Millisecond, 14*time.Millisecond
		var aborted time.Time
		final, _ := fanOutRun(t, experiment(nil), s, 1000, Options{}, func(rn *Runner) {
			var once sync.Once
			s.onInject = func(n int) {
				if n >= 100 {
					once.Do(func() { aborted = time.Now(); rn.Abort("halt") })
				}
			}
		})
		if final.Verdict != api.VerdictAborted || !strings.Contains(final.Reason, "aborted by user during inject: halt") {
			t.Fatalf("verdict %s (%s), want aborted during inject", final.Verdict, final.Reason)
		}
		// At most the injects in flight at the abort (a round, or two
		// when one round ends as it comes) go in after it.
		if s.injected > 100+2*DefaultFanOut {
			t.Errorf("%d faults injected: injects went on starting after the abort at 100", s.injected)
		}
		notAsked := 0
		for _, f := range final.Faults {
			if f.InjectedAt != nil && (f.RevertedAt == nil || !f.Verified) {
				t.Errorf("fault on %s injected but not reverted", f.Node)
			}
			if strings.HasPrefix(f.Error, "not injected: aborted by user during inject: halt") {
				notAsked++
			}
		}
		if notAsked+s.injected != 1000 {
			t.Errorf("%d injected, %d recorded as never asked; want 1000 in all", s.injected, notAsked)
		}
		t.Logf("abort at 100 faults in place: %d injected, all reverted %s after the abort (virtual time)",
			s.injected, final.Times.Reverted.Sub(aborted))
	})
}
