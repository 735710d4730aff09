package probes

import "time"

// RecoveryTracker decides when a system has recovered after a fault was
// reverted: the recovery probes must hold in every round for HoldFor. Feed
// it one Observe per evaluation round, in time order. The zero value with
// HoldFor 0 counts the first passing round as recovery.
//
// The recovery time is the START of the passing streak, not the moment the
// streak became long enough: the system was healthy from then on, and the
// hold only confirms it. Its resolution is the spacing of the rounds fed.
type RecoveryTracker struct {
	// HoldFor is how long the probes must hold without a failing round.
	HoldFor time.Duration

	start, last time.Time
	streak      bool // start is the first round of a passing streak
	recovered   bool
}

// Observe records one evaluation round at t; ok means every recovery probe
// held in that round. A failing round resets the streak. Once recovered,
// the tracker stays recovered and ignores further rounds; rounds earlier
// than the previous one are ignored too.
func (r *RecoveryTracker) Observe(t time.Time, ok bool) {
	r.ObserveSince(t, t, ok)
}

// ObserveSince is Observe for a round whose probes, when they hold, vouch
// for the time since `since` (<= t), not only for t: a rate over a window
// that held at t says every request in the window succeeded. When such a
// round starts a streak, the streak (and the recovery) starts at since.
func (r *RecoveryTracker) ObserveSince(t, since time.Time, ok bool) {
	if r.recovered || (!r.last.IsZero() && t.Before(r.last)) {
		return
	}
	r.last = t
	if !ok {
		r.streak = false
		return
	}
	if !r.streak {
		r.streak, r.start = true, t
		if since.Before(t) {
			r.start = since
		}
	}
	if t.Sub(r.start) >= r.HoldFor {
		r.recovered = true
	}
}

// Recovered returns the first round of the streak that held for HoldFor,
// and true, once there is one.
func (r *RecoveryTracker) Recovered() (time.Time, bool) {
	if !r.recovered {
		return time.Time{}, false
	}
	return r.start, true
}

// MeasuredRTO is the recovery time actually measured: recovered minus the
// first impact (the first failing SLO probe during the fault). It is 0 when
// there was no impact, and never negative (a recovery stamped before the
// impact, e.g. by a clock step, counts as 0).
func MeasuredRTO(firstImpact *time.Time, recovered time.Time) time.Duration {
	if firstImpact == nil {
		return 0
	}
	return max(recovered.Sub(*firstImpact), 0)
}

// AbortTracker applies an abort probe's "for": the abort fires once the
// condition has been firing in every round for For (For 0 fires at the
// first firing round), like a Prometheus alert's for clause. Feed it one
// Observe per evaluation round, in time order.
type AbortTracker struct {
	// For is how long the condition must fire without a quiet round.
	For time.Duration

	since   time.Time
	firing  bool // since is the first round of a firing streak
	last    time.Time
	fired   bool
	firedAt time.Time
}

// Observe records one round at t and reports whether the abort fires now:
// firing has lasted at least For. A quiet round resets the streak, so
// Observe returns to false; FiredAt remembers the first time it fired.
// Rounds earlier than the previous one are ignored (and return false).
func (a *AbortTracker) Observe(t time.Time, firing bool) bool {
	if !a.last.IsZero() && t.Before(a.last) {
		return false
	}
	a.last = t
	if !firing {
		a.firing = false
		return false
	}
	if !a.firing {
		a.firing, a.since = true, t
	}
	if t.Sub(a.since) < a.For {
		return false
	}
	if !a.fired {
		a.fired, a.firedAt = true, t
	}
	return true
}

// FiredAt returns the round at which the abort first fired, and true, once
// it has.
func (a *AbortTracker) FiredAt() (time.Time, bool) {
	return a.firedAt, a.fired
}
