package runner

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
)

// dataStore is a stateful fake of the system's write path, tied to the
// fake system: while a fault is active writes answer 503 (not
// acknowledged, so no loss); when the first fault goes in, the writes
// acknowledged in the lossWindow before it are dropped, the way a
// write-behind buffer loses what it had not flushed.
type dataStore struct {
	s          *system
	lossWindow time.Duration
	ackNothing bool  // every write answers 500
	readErr    error // every read fails so
	readStatus int   // every read answers this (0: 200)

	mu      sync.Mutex
	kept    map[string]time.Time // marker → acknowledged at
	dropped map[string]time.Time
	didDrop bool
	writes  int
}

func newDataStore(s *system) *dataStore {
	return &dataStore{s: s, kept: map[string]time.Time{}, dropped: map[string]time.Time{}}
}

var markerRE = regexp.MustCompile(`chaosd-[a-z0-9-]+-w[0-9]+`)

func (d *dataStore) Do(ctx context.Context, req experiments.DataRequest) (int, []byte, error) {
	d.s.mu.Lock()
	active, from := len(d.s.active) > 0, d.s.impairedFrom
	d.s.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !from.IsZero() && !d.didDrop {
		d.didDrop = true
		for m, at := range d.kept {
			if at.After(from.Add(-d.lossWindow)) {
				d.dropped[m] = at
				delete(d.kept, m)
			}
		}
	}
	if req.Method == "GET" {
		switch {
		case d.readErr != nil:
			return 0, nil, d.readErr
		case d.readStatus != 0:
			return d.readStatus, nil, nil
		}
		var b strings.Builder
		b.WriteString(`{"items":[`)
		for m := range d.kept {
			fmt.Fprintf(&b, `{"description":"visit %s"},`, m)
		}
		b.WriteString(`]}`)
		return 200, []byte(b.String()), nil
	}
	d.writes++
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if active {
		return 503, nil, nil
	}
	if d.ackNothing {
		return 500, nil, nil
	}
	m := markerRE.FindString(req.Body)
	if m == "" {
		return 400, nil, nil
	}
	d.kept[m] = time.Now()
	return 201, nil, nil
}

// truthSpan is the span of the writes the store dropped.
func (d *dataStore) truthSpan() (time.Duration, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var first, last time.Time
	for _, at := range d.dropped {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return last.Sub(first), len(d.dropped)
}

func withDataLoss(rpo time.Duration) func(*experiments.Spec) {
	return func(sp *experiments.Spec) {
		sp.Recovery.RPO = experiments.Duration(rpo)
		sp.DataLoss = &experiments.DataLoss{
			Write:    experiments.DataRequest{Method: "POST", URL: "http://sut/visits", Body: `{"description":"visit {{.Marker}}"}`},
			Read:     experiments.DataRequest{Method: "GET", URL: "http://sut/visits"},
			Interval: experiments.Duration(20 * time.Millisecond),
			LeadIn:   experiments.Duration(310 * time.Millisecond), // the inject falls between two writes
			Timeout:  experiments.Duration(100 * time.Millisecond),
		}
	}
}

func runWithData(t *testing.T, ctx context.Context, e *experiments.Experiment, s *system, d *dataStore, dryRun bool, during func(*Runner)) api.Run {
	t.Helper()
	dp := deps(s, nodeInventory{}, nil)
	if d != nil {
		dp.Data = d
	}
	rec := api.Run{ID: "r-1", Experiment: e.Metadata.Name, Trigger: api.TriggerManual, CreatedAt: time.Now(), DryRun: dryRun}
	rn := New(e, rec, dp, zaptest.NewLogger(t), Options{Lease: 150 * time.Millisecond, AgentTimeout: time.Second})
	if during != nil {
		go during(rn)
	}
	final := rn.Run(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.active) != 0 {
		t.Fatalf("%d fault(s) left active after the run ended with %s", len(s.active), final.Verdict)
	}
	return final
}

func hasEvent(run api.Run, sub string) bool {
	for _, ev := range run.Events {
		if strings.Contains(ev.Message, sub) {
			return true
		}
	}
	return false
}

// TestDataLossMeasuresRPO checks the measured RPO against the fake
// store's own record of what it dropped, and the verdict against the
// target.
func TestDataLossMeasuresRPO(t *testing.T) {
	for _, tc := range []struct {
		name       string
		lossWindow time.Duration
		rpo        time.Duration
		verdict    api.Verdict
		reason     string
	}{
		{name: "loss over the RPO fails", lossWindow: 155 * time.Millisecond, rpo: 50 * time.Millisecond,
			verdict: api.VerdictFail, reason: "data lost: 8 of"},
		{name: "loss within the RPO passes", lossWindow: 155 * time.Millisecond, rpo: time.Second,
			verdict: api.VerdictPass, reason: "8 of"},
		{name: "nothing lost measures 0", rpo: 50 * time.Millisecond,
			verdict: api.VerdictPass, reason: "0 of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSystem()
				s.recoverAfter = 100 * time.Millisecond
				d := newDataStore(s)
				d.lossWindow = tc.lossWindow
				final := runWithData(t, context.Background(), experiment(withDataLoss(tc.rpo)), s, d, false, nil)
				if final.Verdict != tc.verdict || !strings.Contains(final.Reason, tc.reason) {
					t.Fatalf("verdict %s (%s), want %s containing %q", final.Verdict, final.Reason, tc.verdict, tc.reason)
				}
				dl := final.DataLoss
				if dl == nil || dl.MeasuredSeconds == nil {
					t.Fatalf("no measured data loss: %+v", dl)
				}
				truth, lost := d.truthSpan()
				measured := time.Duration(*dl.MeasuredSeconds * float64(time.Second))
				if measured != truth || dl.Lost != lost {
					t.Errorf("measured RPO %s with %d lost, the store dropped %d over %s", measured, dl.Lost, lost, truth)
				}
				if tc.lossWindow > 0 && (truth < tc.lossWindow-20*time.Millisecond || dl.FirstLost == nil || dl.LastLost == nil) {
					t.Errorf("the store dropped %s of writes, want about %s: %+v", truth, tc.lossWindow, dl)
				}
				// Writes go on through the fault (answered 503: no loss) and stop at the revert.
				if d.writes < 30 || dl.Writes != d.writes || dl.Acknowledged >= dl.Writes || dl.Acknowledged < 15 {
					t.Errorf("writes %d (store saw %d), acknowledged %d", dl.Writes, d.writes, dl.Acknowledged)
				}
				if dl.TargetSeconds != tc.rpo.Seconds() || dl.Error != "" {
					t.Errorf("target %v error %q", dl.TargetSeconds, dl.Error)
				}
				if !hasEvent(final, fmt.Sprintf("data-loss check: %d writes, %d acknowledged, %d lost, RPO", dl.Writes, dl.Acknowledged, dl.Lost)) {
					t.Errorf("no data-loss event: %+v", final.Events)
				}
				if final.Times.Injected.Sub(final.CreatedAt) < 310*time.Millisecond {
					t.Errorf("injected %s after the start, want after the 310ms lead-in", final.Times.Injected.Sub(final.CreatedAt))
				}
			})
		})
	}
}

// TestDataLossNeverPassesBlind: a check that cannot judge is never a pass.
func TestDataLossNeverPassesBlind(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(*system, *dataStore)
		noClient bool
		verdict  api.Verdict
		reason   string
		injected bool
		dlError  string
	}{
		{name: "read-back impossible is an error", setup: func(s *system, d *dataStore) { d.readErr = errors.New("connection refused") },
			verdict: api.VerdictError, reason: "data-loss check could not be judged: read back: GET http://sut/visits: connection refused (3 attempts)",
			injected: true, dlError: "connection refused"},
		{name: "read-back answering 500 is an error", setup: func(s *system, d *dataStore) { d.readStatus = 500 },
			verdict: api.VerdictError, reason: "HTTP 500", injected: true, dlError: "HTTP 500"},
		{name: "a failed recovery stays a fail when read-back is impossible", setup: func(s *system, d *dataStore) {
			s.recoverAfter = -1
			d.readErr = errors.New("connection refused")
		}, verdict: api.VerdictFail, reason: "not recovered", injected: true, dlError: "connection refused"},
		{name: "no write acknowledged before the inject injects nothing", setup: func(s *system, d *dataStore) { d.ackNothing = true },
			verdict: api.VerdictError, reason: "could measure nothing", dlError: "not read back"},
		{name: "a chaosd without a client refuses", noClient: true,
			verdict: api.VerdictError, reason: "no client"},
		{name: "a run that ends early is not read back", setup: func(s *system, d *dataStore) { s.goneOnRenew = true },
			verdict: api.VerdictError, reason: "fault ended early", injected: true, dlError: "not read back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSystem()
				s.recoverAfter = 0
				d := newDataStore(s)
				if tc.setup != nil {
					tc.setup(s, d)
				}
				if tc.noClient {
					d = nil
				}
				final := runWithData(t, context.Background(), experiment(withDataLoss(time.Minute)), s, d, false, nil)
				if final.Verdict != tc.verdict || !strings.Contains(final.Reason, tc.reason) {
					t.Fatalf("verdict %s (%s), want %s containing %q", final.Verdict, final.Reason, tc.verdict, tc.reason)
				}
				if got := final.Times.Injected != nil; got != tc.injected {
					t.Errorf("injected = %v, want %v", got, tc.injected)
				}
				if tc.dlError != "" && (final.DataLoss == nil || !strings.Contains(final.DataLoss.Error, tc.dlError) || final.DataLoss.MeasuredSeconds != nil) {
					t.Errorf("data loss record %+v, want error containing %q and nothing measured", final.DataLoss, tc.dlError)
				}
			})
		})
	}
}

func TestDataLossAbortDuringLeadIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		d := newDataStore(s)
		final := runWithData(t, context.Background(), experiment(withDataLoss(time.Minute)), s, d, false,
			func(r *Runner) { time.Sleep(100 * time.Millisecond); r.Abort("test") })
		if final.Verdict != api.VerdictAborted || final.Times.Injected != nil {
			t.Fatalf("verdict %s injected %v: %s", final.Verdict, final.Times.Injected, final.Reason)
		}
		if final.FinishedAt.Sub(final.CreatedAt) > 250*time.Millisecond {
			t.Errorf("the abort waited for the whole lead-in: %s", final.FinishedAt.Sub(final.CreatedAt))
		}
	})
}

func TestDataLossDryRunWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem()
		d := newDataStore(s)
		final := runWithData(t, context.Background(), experiment(withDataLoss(time.Minute)), s, d, true, nil)
		if final.Verdict != api.VerdictPass || d.writes != 0 || final.DataLoss != nil {
			t.Fatalf("dry run: verdict %s, %d writes, data loss %+v", final.Verdict, d.writes, final.DataLoss)
		}
	})
}
