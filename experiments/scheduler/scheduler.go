// Package scheduler fires the cron schedules of experiments: on time in
// their zone (experiments/calendar's DST rules), never while a freeze
// window holds or the schedule is paused, never overlapping a run of the
// same experiment, and with a stated policy for triggers missed while
// chaosd was down. Every trigger is handled exactly once: a run starts or
// a skip is recorded with its cause.
//
// The loop (Run) only waits on a Clock; one round (Tick) does the work
// for an instant, so tests drive it with any time they like. What a run
// is, where state and skips are kept, is the consumer's (Starter, Store).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/calendar"
)

// ErrOverlap is what a Starter returns (wrapped) when a run of the
// experiment is still going: the trigger is skipped with cause overlap.
var ErrOverlap = errors.New("a run of this experiment is still going")

// Clock is the scheduler's time source.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// RealClock is the system clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer's channel and Stop.
func (RealClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Store keeps each schedule's state across restarts (and leader
// changes). More than one writer may share it (Kubernetes: the leader's
// scheduler and a pause on any replica), so a write is a change to the
// stored state, not a replacement: the scheduler changes only the
// trigger it handled, SetPaused only the pause.
type Store interface {
	ScheduleState(experiment string) (api.ScheduleState, error)
	// UpdateScheduleState applies change to the stored state (zero when
	// none) atomically and returns the state written; change may be
	// called more than once (a writer that came first is read again).
	UpdateScheduleState(experiment string, change func(*api.ScheduleState)) (api.ScheduleState, error)
}

// Trigger is one firing handed to the Starter.
type Trigger struct {
	Experiment string
	At         time.Time // the fire time
	// Missed: the trigger was missed while chaosd was down and starts
	// now by policy runOnce.
	Missed bool
}

// Starter starts runs and records skips; an error from Start skips the
// trigger with that reason (wrap ErrOverlap for a run still going).
type Starter interface {
	Start(t Trigger) error
	Skipped(s api.SkipInfo)
}

// Entry is one scheduled experiment.
type Entry struct {
	Experiment string
	Cron       *calendar.Cron
	// Windows are the freeze windows that hold for it (chaosd's and the
	// experiment's), in the order they are reported.
	Windows          []*calendar.Window
	MissedRuns       experiments.MissedRunsPolicy
	StartingDeadline time.Duration
	// Key identifies the definition: an entry whose key changes is
	// re-read.
	Key string
}

// maxMissedListed bounds the skips recorded one by one for triggers
// missed while chaosd was down; the rest are summed up in one more.
const maxMissedListed = 50

// maxMissedCounted bounds how many missed triggers are counted.
const maxMissedCounted = 1_000_000

// maxWait bounds one wait of the loop, so a wall clock that jumps (a
// suspended machine, a corrected clock) is noticed.
const maxWait = time.Minute

// Scheduler fires the schedules of its entries.
type Scheduler struct {
	clock   Clock
	store   Store
	starter Starter
	lg      *zap.Logger

	mu      sync.Mutex
	entries map[string]*entry
	wake    chan struct{}
}

type entry struct {
	Entry
	loaded bool
	state  api.ScheduleState
	next   time.Time // next fire time to handle (zero: none, or not loaded)
}

// New returns a scheduler without entries. A nil logger logs nothing.
func New(clock Clock, store Store, starter Starter, lg *zap.Logger) *Scheduler {
	if lg == nil {
		lg = zap.NewNop()
	}
	if clock == nil {
		clock = RealClock{}
	}
	return &Scheduler{clock: clock, store: store, starter: starter, lg: lg,
		entries: map[string]*entry{}, wake: make(chan struct{}, 1)}
}

// Set replaces the entries. Entries new or changed are read from the
// store at the next Tick (missed triggers included); the others keep
// their place.
func (s *Scheduler) Set(entries []Entry) {
	s.mu.Lock()
	want := map[string]bool{}
	for _, e := range entries {
		want[e.Experiment] = true
		if old, ok := s.entries[e.Experiment]; ok && old.Key == e.Key {
			old.Entry = e
			continue
		}
		s.entries[e.Experiment] = &entry{Entry: e}
	}
	for name := range s.entries {
		if !want[name] {
			delete(s.entries, name)
		}
	}
	s.mu.Unlock()
	s.poke()
}

// Reset forgets what was loaded, so the next Tick reads every entry's
// state again and handles the triggers missed meanwhile (a new leader).
func (s *Scheduler) Reset() {
	s.mu.Lock()
	for _, e := range s.entries {
		e.loaded, e.next = false, time.Time{}
	}
	s.mu.Unlock()
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run fires schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		now := s.clock.Now()
		next := s.Tick(now)
		wait := maxWait
		if !next.IsZero() && next.Sub(now) < wait {
			wait = next.Sub(now)
		}
		c, stop := s.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-c:
		case <-s.wake:
			stop()
		}
	}
}

// Tick handles every trigger due at now (loading entries first seen,
// with their missed triggers) and returns the next fire time of all
// entries (zero: none).
func (s *Scheduler) Tick(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.entries))
	for n := range s.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var soonest time.Time
	for _, n := range names {
		e := s.entries[n]
		if !e.loaded {
			s.load(e, now)
		}
		for !e.next.IsZero() && !e.next.After(now) {
			s.handle(e, e.next, now, false)
			e.next = e.Cron.Next(e.next)
		}
		if !e.next.IsZero() && (soonest.IsZero() || e.next.Before(soonest)) {
			soonest = e.next
		}
	}
	return soonest
}

// load reads an entry's state and settles the triggers missed since the
// last one handled.
func (s *Scheduler) load(e *entry, now time.Time) {
	st, err := s.store.ScheduleState(e.Experiment)
	if err != nil {
		// Without its state the entry counts from now: nothing is run
		// twice; what was missed is logged. The stored state is not
		// overwritten with now (the next trigger handled moves it on).
		s.lg.Error("read schedule state; missed triggers are not settled", zap.String("experiment", e.Experiment), zap.Error(err))
		e.state, e.loaded = api.ScheduleState{HandledUntil: now}, true
		e.next = e.Cron.Next(now)
		return
	}
	e.state, e.loaded = st, true
	e.next = e.Cron.Next(now)
	if st.HandledUntil.IsZero() {
		// Never scheduled before: nothing was missed.
		e.state.HandledUntil = now
		s.save(e)
		return
	}
	if !st.HandledUntil.Before(now) {
		return
	}
	missed, total := e.Cron.Between(st.HandledUntil, now, maxMissedListed, maxMissedCounted)
	if total == 0 {
		return
	}
	latest := missed[len(missed)-1]
	if total > len(missed) {
		latest = lastBetween(e.Cron, st.HandledUntil, now)
	}
	runOnce := e.MissedRuns == experiments.MissedRunsRunOnce
	within := runOnce && now.Sub(latest) <= e.StartingDeadline
	why := "missed while chaosd was down (missedRuns: skip)"
	switch {
	case within:
		why = fmt.Sprintf("missed while chaosd was down; missedRuns: runOnce started only the latest (%s)", latest.Format(time.RFC3339))
	case runOnce:
		why = fmt.Sprintf("missed while chaosd was down; the latest (%s) is older than startingDeadline %s (missedRuns: runOnce)",
			latest.Format(time.RFC3339), experiments.Duration(e.StartingDeadline))
	}
	for _, at := range missed {
		if within && at.Equal(latest) {
			continue
		}
		s.skip(e, api.SkipInfo{Time: now, Experiment: e.Experiment, Trigger: at, Cause: api.SkipMissed, Reason: why})
	}
	if total > len(missed) {
		s.skip(e, api.SkipInfo{Time: now, Experiment: e.Experiment, Trigger: latest, Cause: api.SkipMissed,
			Reason: fmt.Sprintf("%s; %d more triggers missed up to this one, not listed one by one", why, total-len(missed))})
	}
	if within {
		s.handle(e, latest, now, true)
		return
	}
	e.state.HandledUntil, e.state.LastTrigger = latest, &latest
	s.save(e)
}

// lastBetween is the last fire time in (from, to].
func lastBetween(c *calendar.Cron, from, to time.Time) time.Time {
	var last time.Time
	for t := c.Next(from); !t.IsZero() && !t.After(to); t = c.Next(t) {
		last = t
	}
	return last
}

// handle handles one trigger at now: a skip (paused, frozen, or the
// Starter refused) or a run.
func (s *Scheduler) handle(e *entry, at, now time.Time, missed bool) {
	skip := api.SkipInfo{Time: now, Experiment: e.Experiment, Trigger: at}
	s.refreshPause(e)
	switch f := calendar.Frozen(e.Windows, now); {
	case e.state.Paused:
		skip.Cause, skip.Reason = api.SkipPaused, "the schedule is paused"
		if e.state.PausedAt != nil {
			skip.Reason += " (since " + e.state.PausedAt.Format(time.RFC3339) + ")"
		}
	case f != nil:
		skip.Cause, skip.Window = api.SkipFreeze, f.Window.Name
		skip.Reason = fmt.Sprintf("inside freeze window %q (%s) until %s", f.Window.Name, originOf(f.Window), f.Until.Format(time.RFC3339))
	default:
		err := s.starter.Start(Trigger{Experiment: e.Experiment, At: at, Missed: missed})
		if err == nil {
			break
		}
		skip.Cause, skip.Reason = api.SkipError, err.Error()
		if errors.Is(err, ErrOverlap) {
			skip.Cause = api.SkipOverlap
		}
	}
	if skip.Cause != "" {
		if missed {
			skip.Reason = "missed while chaosd was down, runOnce: " + skip.Reason
		}
		s.skip(e, skip)
	}
	e.state.HandledUntil, e.state.LastTrigger = at, &at
	s.save(e)
}

func originOf(w *calendar.Window) string {
	if w.Origin == "" {
		return "freeze window"
	}
	return w.Origin
}

func (s *Scheduler) skip(e *entry, k api.SkipInfo) {
	s.lg.Warn("scheduled trigger skipped", zap.String("experiment", e.Experiment), zap.Time("trigger", k.Trigger),
		zap.String("cause", k.Cause), zap.String("reason", k.Reason))
	s.starter.Skipped(k)
}

// refreshPause reads the pause from the store before a trigger is
// handled: another replica may have paused or resumed the schedule. When
// the store cannot be read, the pause last known holds.
func (s *Scheduler) refreshPause(e *entry) {
	st, err := s.store.ScheduleState(e.Experiment)
	if err != nil {
		s.lg.Warn("re-read schedule pause; the last one known holds", zap.String("experiment", e.Experiment),
			zap.Bool("paused", e.state.Paused), zap.Error(err))
		return
	}
	e.state.Paused, e.state.PausedAt = st.Paused, st.PausedAt
}

// save stores the trigger handled last (never moving it back: a replica
// that led before may still be finishing a round) and reads the pause
// back.
func (s *Scheduler) save(e *entry) {
	handled, last := e.state.HandledUntil, e.state.LastTrigger
	st, err := s.store.UpdateScheduleState(e.Experiment, func(st *api.ScheduleState) {
		if handled.After(st.HandledUntil) {
			st.HandledUntil, st.LastTrigger = handled, last
		}
	})
	if err != nil {
		s.lg.Error("save schedule state", zap.String("experiment", e.Experiment), zap.Error(err))
		return
	}
	e.state.Paused, e.state.PausedAt = st.Paused, st.PausedAt
}

// SetPaused pauses or resumes a schedule and keeps that in the store. It
// works whether or not the entry is being scheduled here (a replica that
// does not lead writes the shared state; the leader reads it before its
// next trigger).
func (s *Scheduler) SetPaused(experiment string, paused bool, now time.Time) (api.ScheduleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.store.UpdateScheduleState(experiment, func(st *api.ScheduleState) {
		if st.Paused != paused {
			st.Paused = paused
			st.PausedAt = nil
			if paused {
				st.PausedAt = &now
			}
		}
	})
	if err != nil {
		return st, err
	}
	if e, ok := s.entries[experiment]; ok && e.loaded {
		e.state.Paused, e.state.PausedAt = st.Paused, st.PausedAt
	}
	s.poke()
	return st, nil
}

// Fire is a coming trigger and the window that freezes it, if any.
type Fire struct {
	At     time.Time
	Frozen *calendar.Window
}

// Upcoming returns the next n fire times after now of an entry's
// definition (whether or not it is scheduled here), each with the freeze
// window it falls in.
func Upcoming(e Entry, now time.Time, n int) []Fire {
	var out []Fire
	for _, at := range e.Cron.NextN(now, n) {
		f := Fire{At: at}
		if fr := calendar.Frozen(e.Windows, at); fr != nil {
			f.Frozen = fr.Window
		}
		out = append(out, f)
	}
	return out
}
