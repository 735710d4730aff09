package calendar

import (
	"fmt"
	"strings"
	"time"
)

// Window is a freeze window: a span of the calendar in which no scheduled
// run starts. It either recurs (it opens each time a cron schedule fires
// and stays open for a duration) or is fixed (from a start to an end).
type Window struct {
	Name string
	// Origin says where the window is defined ("chaosd config" or
	// "experiment"), for messages.
	Origin string

	cron       *Cron
	dur        time.Duration
	start, end time.Time
}

// Recurring returns a window that opens whenever c fires and stays open
// for d.
func Recurring(name string, c *Cron, d time.Duration) *Window {
	return &Window{Name: name, cron: c, dur: d}
}

// Fixed returns a window open in [start, end).
func Fixed(name string, start, end time.Time) *Window {
	return &Window{Name: name, start: start, end: end}
}

// Contains reports whether t lies in the window and, if so, when the
// window (the occurrence holding t) closes.
func (w *Window) Contains(t time.Time) (bool, time.Time) {
	if w.cron == nil {
		if !t.Before(w.start) && t.Before(w.end) {
			return true, w.end
		}
		return false, time.Time{}
	}
	// The occurrence holding t opened in (t-d, t].
	open := w.cron.Next(t.Add(-w.dur))
	if open.IsZero() || open.After(t) {
		return false, time.Time{}
	}
	return true, open.Add(w.dur)
}

// String describes the window: its name and its span.
func (w *Window) String() string {
	if w.cron == nil {
		return fmt.Sprintf("%s (%s to %s)", w.Name, w.start.Format(time.RFC3339), w.end.Format(time.RFC3339))
	}
	return fmt.Sprintf("%s (%q for %s, %s)", w.Name, w.cron.String(), w.dur, w.cron.Location())
}

// Freeze is the window an instant is frozen by.
type Freeze struct {
	Window *Window
	Until  time.Time // when that window closes
}

// Frozen returns the first window of ws (in order) holding t, or nil.
func Frozen(ws []*Window, t time.Time) *Freeze {
	for _, w := range ws {
		if in, until := w.Contains(t); in {
			return &Freeze{Window: w, Until: until}
		}
	}
	return nil
}

// Layouts of a fixed window's start and end, besides RFC 3339 with an
// offset: a date (the whole day) or a local date and time in the
// window's zone.
var localLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"}

const dateLayout = "2006-01-02"

// ParseBound parses a fixed window's start or end in loc: a date
// ("2026-12-24": the day's first instant for a start; for an end the day
// is included, so the window closes at the next day's first instant), a
// local date-time ("2026-12-24T18:00") or an RFC 3339 time with an offset.
func ParseBound(s string, loc *time.Location, isEnd bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.ParseInLocation(dateLayout, s, loc); err == nil {
		if isEnd {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		}
		return t, nil
	}
	for _, l := range localLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date or a date-time (want 2026-12-24, 2026-12-24T18:00 in the window's time zone, or RFC 3339 such as 2026-12-24T18:00:00+01:00)", s)
}
