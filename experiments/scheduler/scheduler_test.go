package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/calendar"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is a stateful fake of the state store.
type memStore struct {
	mu     sync.Mutex
	states map[string]api.ScheduleState
}

func (m *memStore) ScheduleState(name string) (api.ScheduleState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[name], nil
}

func (m *memStore) UpdateScheduleState(name string, change func(*api.ScheduleState)) (api.ScheduleState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.states == nil {
		m.states = map[string]api.ScheduleState{}
	}
	s := m.states[name]
	change(&s)
	m.states[name] = s
	return s, nil
}

// fakeRuns starts runs that last until finish is called: a trigger while
// one is going overlaps.
type fakeRuns struct {
	mu       sync.Mutex
	started  []Trigger
	skipped  []api.SkipInfo
	going    map[string]bool
	started1 chan struct{} // receives on every start, when set
}

func (f *fakeRuns) Start(t Trigger) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.going[t.Experiment] {
		return fmt.Errorf("%w (run r-1)", ErrOverlap)
	}
	if f.going == nil {
		f.going = map[string]bool{}
	}
	f.going[t.Experiment] = true
	f.started = append(f.started, t)
	if f.started1 != nil {
		f.started1 <- struct{}{}
	}
	return nil
}

func (f *fakeRuns) finish(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.going, name)
}

func (f *fakeRuns) Skipped(s api.SkipInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skipped = append(f.skipped, s)
}

func (f *fakeRuns) starts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, t := range f.started {
		s := t.At.UTC().Format(time.RFC3339)
		if t.Missed {
			s += " (missed)"
		}
		out = append(out, s)
	}
	return out
}

func (f *fakeRuns) skips() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, k := range f.skipped {
		s := k.Trigger.UTC().Format(time.RFC3339) + " " + k.Cause
		if k.Window != "" {
			s += ":" + k.Window
		}
		out = append(out, s)
	}
	return out
}

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mkEntry(t *testing.T, name, expr, tz string, windows ...*calendar.Window) Entry {
	t.Helper()
	loc, err := calendar.LoadZone(tz)
	if err != nil {
		t.Fatal(err)
	}
	c, err := calendar.ParseCron(expr, loc)
	if err != nil {
		t.Fatal(err)
	}
	return Entry{Experiment: name, Cron: c, Windows: windows, MissedRuns: experiments.MissedRunsSkip, Key: expr + tz}
}

// runDays ticks every minute from from to until and finishes each run a
// minute after it starts.
func runDays(s *Scheduler, f *fakeRuns, from, until time.Time) {
	for now := from; !now.After(until); now = now.Add(time.Minute) {
		s.Tick(now)
		for _, name := range []string{"a", "b"} {
			f.finish(name)
		}
	}
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestDSTFiresOncePerDay runs a 02:30 schedule minute by minute through
// the spring and autumn changes of New York and Berlin, and an ordinary
// day: exactly one run each day, the skipped hour's at the first instant
// after the gap, none twice.
func TestDSTFiresOncePerDay(t *testing.T) {
	cases := []struct {
		name, tz, expr, from, until string
		want                        []string
	}{
		{"normal day", "America/New_York", "30 2 * * *", "2026-06-10T00:00:00Z", "2026-06-12T00:00:00Z",
			[]string{"2026-06-10T06:30:00Z", "2026-06-11T06:30:00Z"}},
		{"spring forward New York", "America/New_York", "30 2 * * *", "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z",
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"fall back New York", "America/New_York", "30 1 * * *", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z",
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"spring forward Berlin", "Europe/Berlin", "30 2 * * *", "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"fall back Berlin", "Europe/Berlin", "30 2 * * *", "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, f := &memStore{}, &fakeRuns{}
			s := New(nil, st, f, nil)
			s.Set([]Entry{mkEntry(t, "a", tc.expr, tc.tz)})
			runDays(s, f, ts(t, tc.from), ts(t, tc.until))
			eq(t, "runs", f.starts(), tc.want)
			eq(t, "skips", f.skips(), nil)
		})
	}
}

func TestOverlapIsSkippedAndRecorded(t *testing.T) {
	st, f := &memStore{}, &fakeRuns{}
	s := New(nil, st, f, nil)
	s.Set([]Entry{mkEntry(t, "a", "*/10 * * * *", "UTC")})
	for now := ts(t, "2026-06-01T00:00:00Z"); !now.After(ts(t, "2026-06-01T00:30:00Z")); now = now.Add(time.Minute) {
		s.Tick(now) // runs never finish
	}
	eq(t, "runs", f.starts(), []string{"2026-06-01T00:10:00Z"})
	eq(t, "skips", f.skips(), []string{"2026-06-01T00:20:00Z overlap", "2026-06-01T00:30:00Z overlap"})
	if !strings.Contains(f.skipped[0].Reason, "still going") {
		t.Errorf("reason %q", f.skipped[0].Reason)
	}
}

func TestFreezeWindows(t *testing.T) {
	ny, _ := calendar.LoadZone("America/New_York")
	berlin, _ := calendar.LoadZone("Europe/Berlin")
	peakCron, _ := calendar.ParseCron("0 9 * * 1-5", ny)
	peak := calendar.Recurring("peak-hours", peakCron, 8*time.Hour)
	peak.Origin = "chaosd config"
	start, _ := calendar.ParseBound("2026-12-24", berlin, false)
	end, _ := calendar.ParseBound("2026-12-26", berlin, true)
	xmas := calendar.Fixed("christmas", start, end)

	// Hourly at :00 UTC on one weekday, and over the Berlin holidays.
	st, f := &memStore{}, &fakeRuns{}
	s := New(nil, st, f, nil)
	s.Set([]Entry{mkEntry(t, "a", "0 * * * *", "UTC", peak, xmas)})
	runDays(s, f, ts(t, "2026-06-03T11:30:00Z"), ts(t, "2026-06-03T22:00:00Z")) // a Wednesday
	eq(t, "runs on Wednesday", f.starts(), []string{"2026-06-03T12:00:00Z", "2026-06-03T21:00:00Z", "2026-06-03T22:00:00Z"})
	var frozen []string
	for h := 13; h <= 20; h++ {
		frozen = append(frozen, fmt.Sprintf("2026-06-03T%02d:00:00Z freeze:peak-hours", h))
	}
	eq(t, "skips on Wednesday", f.skips(), frozen)
	if r := f.skipped[0].Reason; !strings.Contains(r, `inside freeze window "peak-hours" (chaosd config) until 2026-06-03T17:00:00-04:00`) {
		t.Errorf("reason %q", r)
	}

	st, f = &memStore{}, &fakeRuns{}
	s = New(nil, st, f, nil)
	s.Set([]Entry{mkEntry(t, "a", "0 22,23 * * *", "UTC", peak, xmas)})
	runDays(s, f, ts(t, "2026-12-23T21:00:00Z"), ts(t, "2026-12-27T00:00:00Z"))
	eq(t, "runs over christmas", f.starts(), []string{"2026-12-23T22:00:00Z", "2026-12-26T23:00:00Z"})
	eq(t, "skips over christmas", f.skips(), []string{
		"2026-12-23T23:00:00Z freeze:christmas", "2026-12-24T22:00:00Z freeze:christmas", "2026-12-24T23:00:00Z freeze:christmas",
		"2026-12-25T22:00:00Z freeze:christmas", "2026-12-25T23:00:00Z freeze:christmas", "2026-12-26T22:00:00Z freeze:christmas",
	})

	fires := Upcoming(mkEntry(t, "a", "0 22,23 * * *", "UTC", peak, xmas), ts(t, "2026-12-23T21:00:00Z"), 3)
	var got []string
	for _, fi := range fires {
		s := fi.At.UTC().Format(time.RFC3339)
		if fi.Frozen != nil {
			s += " frozen by " + fi.Frozen.Name
		}
		got = append(got, s)
	}
	eq(t, "upcoming", got, []string{"2026-12-23T22:00:00Z", "2026-12-23T23:00:00Z frozen by christmas", "2026-12-24T22:00:00Z frozen by christmas"})
}

// restart is a chaosd start at now with the state left in st.
func restart(t *testing.T, st *memStore, e Entry, now time.Time) *fakeRuns {
	t.Helper()
	f := &fakeRuns{}
	s := New(nil, st, f, nil)
	s.Set([]Entry{e})
	s.Tick(now)
	return f
}

func TestMissedRuns(t *testing.T) {
	daily := func(policy experiments.MissedRunsPolicy, deadline time.Duration) Entry {
		e := mkEntry(t, "a", "0 9 * * *", "UTC")
		e.MissedRuns, e.StartingDeadline = policy, deadline
		return e
	}
	t.Run("first start misses nothing", func(t *testing.T) {
		st := &memStore{}
		f := restart(t, st, daily(experiments.MissedRunsSkip, 0), ts(t, "2026-06-01T12:00:00Z"))
		eq(t, "runs", f.starts(), nil)
		eq(t, "skips", f.skips(), nil)
		if got := st.states["a"].HandledUntil; !got.Equal(ts(t, "2026-06-01T12:00:00Z")) {
			t.Errorf("handledUntil %v", got)
		}
	})
	down := func() *memStore {
		return &memStore{states: map[string]api.ScheduleState{"a": {HandledUntil: ts(t, "2026-06-01T09:00:00Z")}}}
	}
	t.Run("skip", func(t *testing.T) {
		st := down()
		f := restart(t, st, daily(experiments.MissedRunsSkip, 0), ts(t, "2026-06-03T09:30:00Z"))
		eq(t, "runs", f.starts(), nil)
		eq(t, "skips", f.skips(), []string{"2026-06-02T09:00:00Z missed", "2026-06-03T09:00:00Z missed"})
		if r := f.skipped[0].Reason; r != "missed while chaosd was down (missedRuns: skip)" {
			t.Errorf("reason %q", r)
		}
		if got := st.states["a"].HandledUntil; !got.Equal(ts(t, "2026-06-03T09:00:00Z")) {
			t.Errorf("handledUntil %v", got)
		}
		// A second start does not record them again.
		f = restart(t, st, daily(experiments.MissedRunsSkip, 0), ts(t, "2026-06-03T10:00:00Z"))
		eq(t, "skips after a second restart", f.skips(), nil)
	})
	t.Run("runOnce within the deadline", func(t *testing.T) {
		f := restart(t, down(), daily(experiments.MissedRunsRunOnce, time.Hour), ts(t, "2026-06-03T09:30:00Z"))
		eq(t, "runs", f.starts(), []string{"2026-06-03T09:00:00Z (missed)"})
		eq(t, "skips", f.skips(), []string{"2026-06-02T09:00:00Z missed"})
		if r := f.skipped[0].Reason; !strings.Contains(r, "runOnce started only the latest (2026-06-03T09:00:00Z)") {
			t.Errorf("reason %q", r)
		}
	})
	t.Run("runOnce past the deadline", func(t *testing.T) {
		f := restart(t, down(), daily(experiments.MissedRunsRunOnce, time.Hour), ts(t, "2026-06-03T10:00:01Z"))
		eq(t, "runs", f.starts(), nil)
		eq(t, "skips", f.skips(), []string{"2026-06-02T09:00:00Z missed", "2026-06-03T09:00:00Z missed"})
		if r := f.skipped[1].Reason; !strings.Contains(r, "older than startingDeadline 1h") {
			t.Errorf("reason %q", r)
		}
	})
	t.Run("runOnce inside a freeze", func(t *testing.T) {
		e := daily(experiments.MissedRunsRunOnce, time.Hour)
		e.Windows = []*calendar.Window{calendar.Fixed("maintenance", ts(t, "2026-06-03T09:15:00Z"), ts(t, "2026-06-03T12:00:00Z"))}
		f := restart(t, down(), e, ts(t, "2026-06-03T09:30:00Z"))
		eq(t, "runs", f.starts(), nil)
		eq(t, "skips", f.skips(), []string{"2026-06-02T09:00:00Z missed", "2026-06-03T09:00:00Z freeze:maintenance"})
	})
	t.Run("long outage is summed up", func(t *testing.T) {
		e := mkEntry(t, "a", "* * * * *", "UTC")
		f := restart(t, down(), e, ts(t, "2026-06-01T11:00:00Z"))
		if n := len(f.skipped); n != maxMissedListed+1 {
			t.Fatalf("%d skips recorded, want %d", n, maxMissedListed+1)
		}
		if r := f.skipped[maxMissedListed].Reason; !strings.Contains(r, "70 more triggers missed") {
			t.Errorf("summary %q", r)
		}
	})
}

func TestPauseResumePersisted(t *testing.T) {
	st, f := &memStore{}, &fakeRuns{}
	s := New(nil, st, f, nil)
	e := mkEntry(t, "a", "0 * * * *", "UTC")
	s.Set([]Entry{e})
	s.Tick(ts(t, "2026-06-01T00:30:00Z"))
	if _, err := s.SetPaused("a", true, ts(t, "2026-06-01T00:31:00Z")); err != nil {
		t.Fatal(err)
	}
	s.Tick(ts(t, "2026-06-01T01:00:00Z"))

	// A restarted chaosd reads the pause back.
	f2 := &fakeRuns{}
	s2 := New(nil, st, f2, nil)
	s2.Set([]Entry{e})
	s2.Tick(ts(t, "2026-06-01T01:30:00Z"))
	s2.Tick(ts(t, "2026-06-01T02:00:00Z"))
	eq(t, "runs while paused", append(f.starts(), f2.starts()...), nil)
	eq(t, "skips while paused", append(f.skips(), f2.skips()...), []string{"2026-06-01T01:00:00Z paused", "2026-06-01T02:00:00Z paused"})
	if r := f2.skipped[0].Reason; r != "the schedule is paused (since 2026-06-01T00:31:00Z)" {
		t.Errorf("reason %q", r)
	}
	if _, err := s2.SetPaused("a", false, ts(t, "2026-06-01T02:10:00Z")); err != nil {
		t.Fatal(err)
	}
	s2.Tick(ts(t, "2026-06-01T03:00:00Z"))
	eq(t, "runs after resume", f2.starts(), []string{"2026-06-01T03:00:00Z"})
	if st.states["a"].Paused {
		t.Error("resume not stored")
	}
}

// TestPauseByAnotherReplica pauses a schedule through a scheduler that
// does not run it (another chaosd replica sharing the store): the one
// that runs it reads the pause before its next trigger, and its own
// writes of the triggers it handles keep the pause.
func TestPauseByAnotherReplica(t *testing.T) {
	st := &memStore{}
	e := mkEntry(t, "a", "0 * * * *", "UTC")
	lf := &fakeRuns{}
	leader := New(nil, st, lf, nil)
	leader.Set([]Entry{e})
	other := New(nil, st, &fakeRuns{}, nil)
	other.Set([]Entry{e})

	leader.Tick(ts(t, "2026-06-01T00:30:00Z"))
	leader.Tick(ts(t, "2026-06-01T01:00:00Z"))
	lf.finish("a")
	if _, err := other.SetPaused("a", true, ts(t, "2026-06-01T01:10:00Z")); err != nil {
		t.Fatal(err)
	}
	leader.Tick(ts(t, "2026-06-01T02:00:00Z"))
	eq(t, "runs", lf.starts(), []string{"2026-06-01T01:00:00Z"})
	eq(t, "skips", lf.skips(), []string{"2026-06-01T02:00:00Z paused"})
	if got := st.states["a"]; !got.Paused || !got.HandledUntil.Equal(ts(t, "2026-06-01T02:00:00Z")) {
		t.Errorf("stored state %+v: want paused, handled until 02:00", got)
	}
	if _, err := other.SetPaused("a", false, ts(t, "2026-06-01T02:10:00Z")); err != nil {
		t.Fatal(err)
	}
	leader.Tick(ts(t, "2026-06-01T03:00:00Z"))
	eq(t, "runs after the resume", lf.starts(), []string{"2026-06-01T01:00:00Z", "2026-06-01T03:00:00Z"})
}

// fakeClock is a clock the test moves; timers fire when it passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	armed  chan struct{}
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), c: ch})
	c.mu.Unlock()
	c.armed <- struct{}{}
	return ch, func() bool { return true }
}

// advance moves the clock to t and fires the timers due.
func (c *fakeClock) advance(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(t) {
			tm.c <- t
			continue
		}
		kept = append(kept, tm)
	}
	c.timers = kept
}

// TestRunWaitsOnTheClock drives the loop with a fake clock: it sleeps
// until the fire time, in steps of at most a minute, and fires once.
func TestRunWaitsOnTheClock(t *testing.T) {
	clock := &fakeClock{now: ts(t, "2026-03-08T06:58:30Z"), armed: make(chan struct{})}
	f := &fakeRuns{started1: make(chan struct{}, 1)}
	s := New(clock, &memStore{}, f, nil)
	s.Set([]Entry{mkEntry(t, "a", "30 2 * * *", "America/New_York")}) // fires at 03:00 EDT = 07:00Z that day
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	<-clock.armed
	clock.advance(ts(t, "2026-03-08T06:59:30Z"))
	<-clock.armed
	if got := f.starts(); len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	clock.advance(ts(t, "2026-03-08T07:00:00Z"))
	<-f.started1
	<-clock.armed
	cancel()
	<-done
	eq(t, "runs", f.starts(), []string{"2026-03-08T07:00:00Z"})
}
