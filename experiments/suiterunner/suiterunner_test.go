package suiterunner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeMembers is a stateful fake of chaosd's runs: each experiment ends
// with the verdict scripted for it; one marked blocking runs until it is
// aborted (or ctx ends), like a run observing its fault.
type fakeMembers struct {
	mu       sync.Mutex
	verdicts map[string]api.Verdict
	blocking map[string]bool
	startErr map[string]error
	started  []string // experiments, in start order
	aborts   map[string]string
	live     map[string]chan struct{} // run ID → closed when it ends
	running  chan string              // receives the ID of a blocking run once started
}

func newFakeMembers() *fakeMembers {
	return &fakeMembers{verdicts: map[string]api.Verdict{}, blocking: map[string]bool{}, startErr: map[string]error{},
		aborts: map[string]string{}, live: map[string]chan struct{}{}, running: make(chan string, 4)}
}

func (f *fakeMembers) Start(_ context.Context, i int, exp string) (api.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.startErr[exp]; err != nil {
		return api.Run{}, err
	}
	f.started = append(f.started, exp)
	id := fmt.Sprintf("r-%d-%s", i, exp)
	f.live[id] = make(chan struct{})
	if f.blocking[exp] {
		f.running <- id
	}
	return api.Run{ID: id, Experiment: exp, Phase: api.PhasePending, CreatedAt: time.Now()}, nil
}

func (f *fakeMembers) Wait(ctx context.Context, id string) (api.Run, error) {
	f.mu.Lock()
	exp := id[len("r-0-"):]
	block, done := f.blocking[exp], f.live[id]
	f.mu.Unlock()
	now := time.Now()
	if block {
		select {
		case <-done:
			f.mu.Lock()
			why := f.aborts[id]
			f.mu.Unlock()
			return api.Run{ID: id, Experiment: exp, Phase: api.PhaseDone, Verdict: api.VerdictAborted, Reason: why, FinishedAt: &now}, nil
		case <-ctx.Done():
			return api.Run{ID: id, Experiment: exp, Phase: api.PhaseDone, Verdict: api.VerdictError, Interrupted: true, FinishedAt: &now}, nil
		}
	}
	v := f.verdicts[exp]
	if v == "" {
		v = api.VerdictPass
	}
	return api.Run{ID: id, Experiment: exp, Phase: api.PhaseDone, Verdict: v, Reason: "scripted " + string(v), FinishedAt: &now}, nil
}

func (f *fakeMembers) Abort(id, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.live[id]; ok {
		if _, done := f.aborts[id]; !done {
			f.aborts[id] = why
			close(ch)
		}
	}
}

func (f *fakeMembers) startedList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.started)
}

// fakeClock records every pause; with hold set, a pause never ends by
// itself (and pausing receives the pause's length once it began).
type fakeClock struct {
	mu      sync.Mutex
	pauses  []time.Duration
	hold    bool
	pausing chan time.Duration
}

func (c *fakeClock) Now() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pauses = append(c.pauses, d)
	ch := make(chan time.Time, 1)
	if c.hold {
		c.pausing <- d
		return ch
	}
	ch <- c.Now().Add(d)
	return ch
}

// saves keeps every record saved, in order.
type saves struct {
	mu   sync.Mutex
	recs []api.SuiteRun
}

func (s *saves) save(r api.SuiteRun) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
	return nil
}

func (s *saves) last() api.SuiteRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs[len(s.recs)-1]
}

func newRec(exps ...string) api.SuiteRun {
	rec := api.SuiteRun{ID: "s-test", Suite: "game-day", Trigger: api.TriggerManual, CreatedAt: time.Now()}
	for _, e := range exps {
		rec.Entries = append(rec.Entries, api.SuiteEntryResult{Experiment: e})
	}
	return rec
}

var gaps = []time.Duration{0, 31 * time.Second, 45 * time.Second}

func skippedOf(r api.SuiteRun) []string {
	var out []string
	for _, e := range r.Entries {
		out = append(out, e.Skipped)
	}
	return out
}

func TestSuiteRunsInOrderWithPauses(t *testing.T) {
	m, clk, sv := newFakeMembers(), &fakeClock{}, &saves{}
	rn := New(newRec("latency", "exceptions", "partition"), gaps, Deps{Members: m, Save: sv.save, Clock: clk}, zaptest.NewLogger(t))
	final := rn.Run(context.Background(), true)

	if got := m.startedList(); !slices.Equal(got, []string{"latency", "exceptions", "partition"}) {
		t.Errorf("started %v, want the suite's order", got)
	}
	if !slices.Equal(clk.pauses, gaps[1:]) {
		t.Errorf("paused %v, want one pause before each later experiment: %v", clk.pauses, gaps[1:])
	}
	if final.Verdict != api.VerdictPass || final.Phase != api.SuiteDone || final.Current != -1 || final.FinishedAt == nil {
		t.Errorf("final = %s %s current %d: %s; want done, pass", final.Phase, final.Verdict, final.Current, final.Reason)
	}
	for i, e := range final.Entries {
		if e.RunID == "" || e.Verdict != api.VerdictPass || e.StartedAt == nil || e.FinishedAt == nil || e.Skipped != "" {
			t.Errorf("entry %d = %+v, want a passed run with its times", i, e)
		}
	}
	if e := final.Entries[1]; e.NotBefore == nil || !e.NotBefore.Equal(clk.Now().Add(31*time.Second)) {
		t.Errorf("entry 1 notBefore = %v, want the end of its pause", e.NotBefore)
	}
	if sv.last().Verdict != api.VerdictPass {
		t.Errorf("the last saved record is not the final one: %+v", sv.last())
	}
	// The record was saved while pausing, so a client sees the pause.
	pausing := false
	for _, r := range sv.recs {
		pausing = pausing || r.Phase == api.SuitePausing
	}
	if !pausing {
		t.Error("no saved record in phase pausing")
	}
}

func TestStopOnFailure(t *testing.T) {
	for _, stop := range []bool{true, false} {
		t.Run(fmt.Sprintf("stopOnFailure=%v", stop), func(t *testing.T) {
			m, sv := newFakeMembers(), &saves{}
			m.verdicts["exceptions"] = api.VerdictFail
			rn := New(newRec("latency", "exceptions", "partition"), gaps, Deps{Members: m, Save: sv.save, Clock: &fakeClock{}}, zaptest.NewLogger(t))
			final := rn.Run(context.Background(), stop)
			if final.Verdict != api.VerdictFail {
				t.Errorf("verdict %s (%s), want fail: the first verdict that is not pass", final.Verdict, final.Reason)
			}
			want := []string{"latency", "exceptions", "partition"}
			wantSkipped := []string{"", "", ""}
			if stop {
				want = want[:2]
				wantSkipped[2] = api.SkippedAfterFailure
			}
			if got := m.startedList(); !slices.Equal(got, want) {
				t.Errorf("started %v, want %v", got, want)
			}
			if got := skippedOf(final); !slices.Equal(got, wantSkipped) {
				t.Errorf("skipped %q, want %q", got, wantSkipped)
			}
			t.Logf("reason: %s", final.Reason)
		})
	}
}

// TestAbortStopsTheWholeSuite: aborting during an experiment aborts that
// run and starts no other, even without stopOnFailure; aborting during
// a pause starts nothing more.
func TestAbortStopsTheWholeSuite(t *testing.T) {
	t.Run("during an experiment", func(t *testing.T) {
		m, sv := newFakeMembers(), &saves{}
		m.blocking["exceptions"] = true
		rn := New(newRec("latency", "exceptions", "partition"), gaps, Deps{Members: m, Save: sv.save, Clock: &fakeClock{}}, zaptest.NewLogger(t))
		done := make(chan api.SuiteRun)
		go func() { done <- rn.Run(context.Background(), false) }()
		id := <-m.running
		rn.Abort("chaosctl abort")
		final := <-done
		if got := m.startedList(); !slices.Equal(got, []string{"latency", "exceptions"}) {
			t.Errorf("started %v; want nothing after the aborted experiment", got)
		}
		if m.aborts[id] == "" {
			t.Errorf("the running experiment %s was not aborted", id)
		}
		if final.Verdict != api.VerdictAborted || final.Entries[1].Verdict != api.VerdictAborted || final.Entries[2].Skipped != api.SkippedAborted {
			t.Errorf("final %s (%s), entries %+v; want aborted, the current run aborted, the rest skipped as aborted", final.Verdict, final.Reason, final.Entries)
		}
	})
	t.Run("during a pause", func(t *testing.T) {
		m, sv := newFakeMembers(), &saves{}
		clk := &fakeClock{hold: true, pausing: make(chan time.Duration, 1)}
		rn := New(newRec("latency", "exceptions"), gaps, Deps{Members: m, Save: sv.save, Clock: clk}, zaptest.NewLogger(t))
		done := make(chan api.SuiteRun)
		go func() { done <- rn.Run(context.Background(), true) }()
		<-clk.pausing
		if rec := rn.Record(); rec.Phase != api.SuitePausing || rec.Current != 1 {
			t.Errorf("during the pause: phase %s current %d, want pausing before entry 1", rec.Phase, rec.Current)
		}
		rn.Abort("halt")
		final := <-done
		if got := m.startedList(); !slices.Equal(got, []string{"latency"}) {
			t.Errorf("started %v, want only the first", got)
		}
		if final.Verdict != api.VerdictAborted || final.Entries[1].Skipped != api.SkippedAborted {
			t.Errorf("final %s, entry 1 %+v", final.Verdict, final.Entries[1])
		}
	})
}

func TestStartErrorEndsTheSuite(t *testing.T) {
	m, sv := newFakeMembers(), &saves{}
	m.startErr["exceptions"] = errors.New(`exceptions is inside freeze window "peak"`)
	rn := New(newRec("latency", "exceptions", "partition"), gaps, Deps{Members: m, Save: sv.save, Clock: &fakeClock{}}, zaptest.NewLogger(t))
	final := rn.Run(context.Background(), false)
	if final.Verdict != api.VerdictError {
		t.Errorf("verdict %s, want error: the suite could not run as written", final.Verdict)
	}
	if e := final.Entries[1]; e.RunID != "" || e.Skipped != `not started: exceptions is inside freeze window "peak"` {
		t.Errorf("entry 1 = %+v", e)
	}
	if got := m.startedList(); !slices.Equal(got, []string{"latency"}) {
		t.Errorf("started %v", got)
	}
}

func TestChaosdStoppingInterruptsTheSuite(t *testing.T) {
	m, sv := newFakeMembers(), &saves{}
	m.blocking["exceptions"] = true
	rn := New(newRec("latency", "exceptions", "partition"), gaps, Deps{Members: m, Save: sv.save, Clock: &fakeClock{}}, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan api.SuiteRun)
	go func() { done <- rn.Run(ctx, true) }()
	<-m.running
	cancel()
	final := <-done
	if !final.Interrupted || final.Verdict != api.VerdictError || final.Entries[2].Skipped != api.SkippedInterrupted {
		t.Errorf("final %s interrupted=%v entries %+v", final.Verdict, final.Interrupted, final.Entries)
	}
}
