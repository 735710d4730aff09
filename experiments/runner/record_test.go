package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
)

// disk is a stateful fake of a run store: what it holds is the last
// record saved, and it counts durable writes and the bytes the file
// store would write for them.
type disk struct {
	mu     sync.Mutex
	last   api.Run
	writes int
	bytes  int
	failAt int // the write number from which saves fail (0: never)
}

var errDiskFull = errors.New("write runs/r-1.json: no space left on device")

func (d *disk) save(r api.Run) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failAt > 0 && d.writes+1 >= d.failAt {
		return errDiskFull
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	d.writes++
	d.bytes += len(b)
	d.last = r
	return nil
}

func (d *disk) onDisk() api.Run {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last.DeepCopy()
}

// TestRecordWritesDoNotGrowWithFaults: a run of 200 faults makes no more
// durable writes of its record than a run of 10, and writes no more
// bytes per fault (the record is written whole every save: before,
// three saves per fault made that N²). The last record on disk is the
// one the run returns.
func TestRecordWritesDoNotGrowWithFaults(t *testing.T) {
	got := map[int]*disk{}
	for _, n := range []int{10, 200} {
		synctest.Test(t, func(t *testing.T) {
			s := newSystem()
			s.recoverAfter = 0
			d := &disk{}
			rec := api.Run{ID: "r-1", Experiment: "t", CreatedAt: time.Now()}
			rn := New(experiment(nil), rec, Deps{Prober: s, Inventory: manyNodes(n), Agents: fleet{s}, Save: d.save},
				zaptest.NewLogger(t), Options{Lease: 150 * time.Millisecond, AgentTimeout: time.Second, SaveInterval: 250 * time.Millisecond})
			final := rn.Run(context.Background())
			if final.Verdict != api.VerdictPass || len(final.Faults) != n {
				t.Fatalf("%d faults: verdict %s (%s), %d fault records", n, final.Verdict, final.Reason, len(final.Faults))
			}
			if onDisk := d.onDisk(); !reflect.DeepEqual(onDisk, final) {
				t.Errorf("%d faults: the record on disk is not the final one:\n%+v\n%+v", n, onDisk, final)
			}
			got[n] = d
		})
	}
	const most = 25
	for n, d := range got {
		t.Logf("%d faults: %d durable writes, %d KiB", n, d.writes, d.bytes>>10)
		if d.writes > most {
			t.Errorf("%d faults: %d durable writes of the record, want at most %d whatever the number of faults", n, d.writes, most)
		}
	}
	if perFault10, perFault200 := got[10].bytes/10, got[200].bytes/200; perFault200 > perFault10 {
		t.Errorf("bytes written per fault grow with the faults: %d at 10, %d at 200", perFault10, perFault200)
	}
}

// TestRecordBytesPerSecondDoNotGrowWithFaults: while a long run
// observes (a probe round every 50 ms changes the record), a record of
// 1,000 faults is saved ten times less often than one of 10, so the bytes
// written per second of the run stay about the same.
func TestRecordBytesPerSecondDoNotGrowWithFaults(t *testing.T) {
	got := map[int]*disk{}
	for _, n := range []int{10, 1000} {
		synctest.Test(t, func(t *testing.T) {
			s := newSystem()
			s.recoverAfter = 0
			d := &disk{}
			e := experiment(func(sp *experiments.Spec) {
				sp.Duration, sp.Recovery.RTO = experiments.Duration(20*time.Second), experiments.Duration(time.Minute)
			})
			rn := New(e, api.Run{ID: "r-1", Experiment: "t", CreatedAt: time.Now()},
				Deps{Prober: s, Inventory: manyNodes(n), Agents: fleet{s}, Save: d.save},
				zaptest.NewLogger(t), Options{Lease: 150 * time.Millisecond, AgentTimeout: time.Second, SaveInterval: 250 * time.Millisecond})
			if final := rn.Run(context.Background()); final.Verdict != api.VerdictPass {
				t.Fatalf("%d faults: verdict %s (%s)", n, final.Verdict, final.Reason)
			}
			got[n] = d
		})
	}
	for n, d := range got {
		t.Logf("%d faults: %d saves, %d KiB", n, d.writes, d.bytes>>10)
	}
	// 20 s of rounds: ~80 saves of the small record, ~8 of the large one
	// (plus the durable ones both make).
	if small, large := got[10].writes, got[1000].writes; large*4 > small {
		t.Errorf("a record of 1,000 faults was saved %d times, one of 10 faults %d times: want it saved far less often", large, small)
	}
	if perFault := got[1000].bytes / 1000; perFault > 40<<10 {
		t.Errorf("%d bytes written per fault of a 20 s run of 1,000 faults: the record is rewritten too often", perFault)
	}
}

// recordingAgent is a fakeAgent that checks, at every call, what is on
// disk already, and hands out an undo document like a Chaos Monkey
// fault's.
type recordingAgent struct {
	fakeAgent
	d       *disk
	planned int
	mu      *sync.Mutex
	wrong   *[]string
}

func (a recordingAgent) Inject(ctx context.Context, f agentapi.Fault) (agentapi.FaultStatus, error) {
	rec := a.d.onDisk()
	a.mu.Lock()
	if len(rec.Faults) != a.planned {
		*a.wrong = append(*a.wrong, fmt.Sprintf("inject %s: %d of %d planned faults on disk", f.ID, len(rec.Faults), a.planned))
	}
	for _, fr := range rec.Faults {
		if fr.InjectedAt != nil && fr.Undo == nil {
			*a.wrong = append(*a.wrong, fmt.Sprintf("inject %s: the undo document of %s on %s is not on disk", f.ID, fr.AgentFaultID, fr.Node))
		}
	}
	a.mu.Unlock()
	st, err := a.fakeAgent.Inject(ctx, f)
	st.Undo = json.RawMessage(`{"url":"http://` + a.node + `:8080","enabled":false}`)
	return st, err
}

func (a recordingAgent) Revert(ctx context.Context, id string) (agentapi.FaultStatus, error) {
	if rec := a.d.onDisk(); rec.Phase != api.PhaseReverting {
		a.mu.Lock()
		*a.wrong = append(*a.wrong, fmt.Sprintf("revert %s while the record on disk says %s", id, rec.Phase))
		a.mu.Unlock()
	}
	return a.fakeAgent.Revert(ctx, id)
}

type recordingFleet struct{ a recordingAgent }

func (f recordingFleet) Agent(_, node string) (Agent, error) {
	a := f.a
	a.node = node
	return a, nil
}

// TestRecoveryNeedsAreOnDiskFirst: what a restarted chaosd needs to
// revert is on disk before it can be needed, with a save interval far
// longer than the run: every planned fault before any agent is asked,
// each undo document before the next agent is asked, "reverting" before
// the first revert.
func TestRecoveryNeedsAreOnDiskFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		s.recoverAfter = 0
		d := &disk{}
		var mu sync.Mutex
		var wrong []string
		ag := recordingAgent{fakeAgent: fakeAgent{s: s}, d: d, planned: 5, mu: &mu, wrong: &wrong}
		rn := New(experiment(nil), api.Run{ID: "r-1", Experiment: "t"}, Deps{Prober: s, Inventory: manyNodes(5), Agents: recordingFleet{ag}, Save: d.save},
			zaptest.NewLogger(t), Options{Lease: 150 * time.Millisecond, SaveInterval: time.Hour})
		final := rn.Run(context.Background())
		if final.Verdict != api.VerdictPass {
			t.Fatalf("verdict %s: %s", final.Verdict, final.Reason)
		}
		for _, w := range wrong {
			t.Error(w)
		}
		if s.injected != 5 {
			t.Errorf("%d faults injected, want 5", s.injected)
		}
	})
}

// TestSaveFailureBeforeInjectInjectsNothing: when the record naming the
// planned faults cannot be saved, no agent is asked for anything and the
// run ends in error saying so.
func TestSaveFailureBeforeInjectInjectsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		// Count the saves up to the inject phase, then fail the next one
		// (the planned faults).
		d := &disk{}
		d.failAt = writesUntilPhase(t, s, api.PhaseInjecting) + 1
		rn := New(experiment(nil), api.Run{ID: "r-1", Experiment: "t"}, Deps{Prober: s, Inventory: manyNodes(3), Agents: fleet{s}, Save: d.save},
			zaptest.NewLogger(t), Options{SaveInterval: time.Hour, Lease: 150 * time.Millisecond})
		final := rn.Run(context.Background())
		if s.injected != 0 {
			t.Errorf("%d faults injected although their record could not be saved", s.injected)
		}
		if final.Verdict != api.VerdictError || !strings.Contains(final.Reason, "no space left on device") {
			t.Errorf("verdict %s (%s), want error naming the store's failure", final.Verdict, final.Reason)
		}
	})
}

// writesUntilPhase runs the experiment once with a store that counts
// and returns how many durable writes were made up to and including the
// first record in phase.
func writesUntilPhase(t *testing.T, s *system, phase api.Phase) int {
	t.Helper()
	n, seen := 0, false
	save := func(r api.Run) error {
		if !seen {
			n++
			seen = r.Phase == phase
		}
		return nil
	}
	New(experiment(nil), api.Run{ID: "r-count", Experiment: "t"}, Deps{Prober: s, Inventory: manyNodes(3), Agents: fleet{newSystem()}, Save: save},
		nil, Options{SaveInterval: time.Hour, Lease: 150 * time.Millisecond}).Run(context.Background())
	if !seen {
		t.Fatalf("no record in phase %s", phase)
	}
	return n
}

// TestConcurrentDurableUpdatesShareSaves: steps waiting for their change
// to be on disk at once (a parallel fan-out's injects) each return only
// once a save holding their change is on disk, and they share saves.
func TestConcurrentDurableUpdatesShareSaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &disk{}
		slowSave := func(r api.Run) error {
			time.Sleep(time.Millisecond) // an fsync
			return d.save(r)
		}
		rn := New(experiment(nil), api.Run{ID: "r-1", Experiment: "t"}, Deps{Save: slowSave}, nil, Options{SaveInterval: time.Hour})
		rn.w.start(rn)
		const n = 200
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				id := fmt.Sprintf("f%d", i)
				if err := rn.updateDurable(func(rec *api.Run) { rec.Faults = append(rec.Faults, api.FaultRecord{AgentFaultID: id}) }); err != nil {
					t.Errorf("%s: %v", id, err)
					return
				}
				found := false
				for _, f := range d.onDisk().Faults {
					found = found || f.AgentFaultID == id
				}
				if !found {
					t.Errorf("%s: updateDurable returned before its change was on disk", id)
				}
			})
		}
		wg.Wait()
		if err := rn.w.stopAndFlush(rn); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d durable updates, %d saves", n, d.writes)
		if d.writes >= n {
			t.Errorf("%d saves for %d concurrent durable updates: none shared", d.writes, n)
		}
	})
}
