// Package calendar is the time arithmetic of chaosd's schedules: when a
// cron schedule fires in its time zone, across daylight-saving changes,
// and whether an instant falls in a freeze window. It is pure (no clock,
// no goroutine); experiments/scheduler drives it.
//
// # Cron and daylight saving time
//
// Cron expressions are parsed by robfig/cron/v3 (5 fields or a
// descriptor such as @daily). robfig's SpecSchedule.Next walks wall-clock
// hours in the zone, and across DST changes it does two things a game-day
// calendar cannot accept (checked with v3.0.1):
//
//   - spring forward: a time inside the skipped hour (02:30 on
//     2026-03-08 in America/New_York, 2026-03-29 in Europe/Berlin) never
//     matches, so that day has no run at all, silently;
//   - fall back: a time inside the repeated hour (01:30 on 2026-11-01 in
//     America/New_York) matches twice, once per offset, so it runs twice.
//
// [Cron.Next] keeps robfig's parser and its Next for every ordinary
// instant and applies the rule of Vixie cron on top:
//
//   - a fire time that falls into a spring-forward gap fires once, at the
//     first instant after the gap (03:00 local, the instant of the change);
//     several times inside one gap fire once;
//   - a fire time inside a repeated autumn hour fires at its first
//     occurrence only, unless the hour field is every hour ("*"): such a
//     schedule fires in both copies of the hour, since they are different
//     hours of elapsed time;
//   - every other fire time is robfig's.
package calendar

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Cron is a parsed cron schedule in a time zone.
type Cron struct {
	expr  string
	loc   *time.Location
	sched cron.Schedule
	// spec is set for field schedules (not @every): naive is the same
	// schedule read in UTC, the wall clock without offsets.
	spec, naive *cron.SpecSchedule
}

// LoadZone loads an IANA time zone; "" is UTC. "Local" is refused: it
// depends on the machine chaosd runs on.
func LoadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, fmt.Errorf(`"Local" depends on the machine chaosd runs on; name an IANA zone such as Europe/Berlin or UTC`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name such as Europe/Berlin or UTC)", name)
	}
	return loc, nil
}

// ParseCron parses a standard cron expression (5 fields or a descriptor)
// to be read in zone loc. The zone is not written in the expression
// (no TZ= or CRON_TZ= prefix).
func ParseCron(expr string, loc *time.Location) (*Cron, error) {
	e := strings.TrimSpace(expr)
	switch {
	case e == "":
		return nil, fmt.Errorf(`required, e.g. "0 9 * * 1-5" or "@daily"`)
	case strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ="):
		return nil, fmt.Errorf("write the time zone in the timeZone field, not in the cron expression")
	}
	s, err := cron.ParseStandard(e)
	if err != nil {
		return nil, fmt.Errorf(`%q is not a cron schedule: %v (want 5 fields "minute hour day-of-month month day-of-week" or a descriptor such as @daily)`, expr, err)
	}
	c := &Cron{expr: e, loc: loc, sched: s}
	if spec, ok := s.(*cron.SpecSchedule); ok {
		local, naive := *spec, *spec
		local.Location, naive.Location = loc, time.UTC
		c.spec, c.naive, c.sched = &local, &naive, &local
	}
	return c, nil
}

// String is the expression as written.
func (c *Cron) String() string { return c.expr }

// Location is the zone the expression is read in.
func (c *Cron) Location() *time.Location { return c.loc }

// everyHour reports whether the hour field matches every hour.
func (c *Cron) everyHour() bool { return c.spec.Hour&(1<<24-1) == 1<<24-1 }

// Next returns the first fire time strictly after t (in the schedule's
// zone), with the DST rules of the package doc; the zero time when there
// is none within robfig's search horizon.
func (c *Cron) Next(t time.Time) time.Time {
	t = t.In(c.loc)
	if c.spec == nil {
		return c.sched.Next(t)
	}
	for {
		cand := c.spec.Next(t)
		if gap := c.gapFire(t, cand); !gap.IsZero() {
			return gap
		}
		if cand.IsZero() {
			return cand
		}
		if !c.everyHour() && repeated(cand) {
			t = cand // the first copy of this wall time fired already
			continue
		}
		return cand
	}
}

// gapFire returns the first instant after a spring-forward gap that lies
// after t and no later than limit (zero: no limit within a year) when the
// schedule has a fire time inside that gap; else the zero time.
func (c *Cron) gapFire(t, limit time.Time) time.Time {
	horizon := limit
	if horizon.IsZero() {
		horizon = t.AddDate(1, 0, 0)
	}
	for _, end := t.ZoneBounds(); !end.IsZero() && !end.After(horizon); _, end = end.ZoneBounds() {
		_, before := end.Add(-time.Nanosecond).Zone()
		_, after := end.Zone()
		if after <= before {
			continue // fall back or a renamed zone: no wall time is skipped
		}
		// Wall times [gapStart, gapEnd) do not exist; read them in UTC.
		gapEnd := wall(end)
		gapStart := gapEnd.Add(-time.Duration(after-before) * time.Second)
		if n := c.naive.Next(gapStart.Add(-time.Second)); !n.IsZero() && n.Before(gapEnd) && end.After(t) {
			return end
		}
	}
	return time.Time{}
}

// wall is t's wall clock read as a UTC time (no offset).
func wall(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// repeated reports whether t's wall clock was already shown at an earlier
// instant (the second copy of an hour repeated when clocks go back).
func repeated(t time.Time) bool {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, now := t.Zone()
	_, before := start.Add(-time.Nanosecond).Zone()
	if before <= now {
		return false
	}
	earlier := t.Add(-time.Duration(before-now) * time.Second)
	return earlier.Before(start) && wall(earlier).Equal(wall(t))
}

// NextN returns the next n fire times after t.
func (c *Cron) NextN(t time.Time, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		t = c.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// Between returns the fire times in (from, to], oldest first, at most
// limit of them, and how many there are in all (counted up to max).
func (c *Cron) Between(from, to time.Time, limit, max int) ([]time.Time, int) {
	var out []time.Time
	n := 0
	for t := c.Next(from); !t.IsZero() && !t.After(to) && n < max; t = c.Next(t) {
		if len(out) < limit {
			out = append(out, t)
		}
		n++
	}
	return out, n
}
