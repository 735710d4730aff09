package experiments

import (
	"fmt"
	"strings"
	"time"

	"github.com/chaosd/chaosd/experiments/calendar"
)

// MissedRunsPolicy is spec.schedule.missedRuns.
type MissedRunsPolicy string

// Missed-run policies.
const (
	// MissedRunsSkip records triggers missed while chaosd was down as
	// skipped (the default).
	MissedRunsSkip MissedRunsPolicy = "skip"
	// MissedRunsRunOnce runs the latest missed trigger once, if it is no
	// older than the schedule's startingDeadline.
	MissedRunsRunOnce MissedRunsPolicy = "runOnce"
)

// FreezeWindow is a named span of the calendar in which no scheduled run
// starts (deploy freezes, peak business hours, holidays), in chaosd's
// configuration (freezeWindows) or an experiment's
// (spec.schedule.freezeWindows). It is either recurring, Cron plus
// Duration (it opens whenever Cron fires), or fixed, Start plus End.
type FreezeWindow struct {
	Name string `yaml:"name" json:"name"`
	// Cron opens a recurring window (5 fields or a descriptor, read in
	// TimeZone with the DST rules of schedules); Duration is how long it
	// stays open.
	Cron     string   `yaml:"cron,omitempty" json:"cron,omitempty"`
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	// Start and End bound a fixed window: dates ("2026-12-24"; the end
	// date is included) or date-times ("2026-12-24T18:00", in TimeZone;
	// the end is excluded), or RFC 3339 times with an offset.
	Start string `yaml:"start,omitempty" json:"start,omitempty"`
	End   string `yaml:"end,omitempty" json:"end,omitempty"`
	// TimeZone is an IANA zone (default: the schedule's time zone in an
	// experiment, UTC in chaosd's configuration).
	TimeZone string `yaml:"timeZone,omitempty" json:"timeZone,omitempty"`
}

// FieldProblem is one problem of a value, at a field path relative to it.
type FieldProblem struct {
	Field string // e.g. "cron"
	Msg   string
}

// Check returns every problem of the window; fields are relative to it
// (name, cron, duration, start, end, timeZone).
func (w FreezeWindow) Check() []FieldProblem {
	_, probs := w.compile("")
	return probs
}

// Compile returns the window to evaluate, or an error naming the first
// problem's field. origin says where it was defined (for messages).
func (w FreezeWindow) Compile(origin string) (*calendar.Window, error) {
	cw, probs := w.compile(origin)
	if len(probs) > 0 {
		return nil, fmt.Errorf("freeze window %q: %s: %s", w.Name, probs[0].Field, probs[0].Msg)
	}
	return cw, nil
}

func (w FreezeWindow) compile(origin string) (*calendar.Window, []FieldProblem) {
	var probs []FieldProblem
	add := func(field, format string, args ...any) {
		probs = append(probs, FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(w.Name) == "" {
		add("name", "required: the name skipped triggers and refused runs are recorded with")
	}
	loc, err := calendar.LoadZone(w.TimeZone)
	if err != nil {
		add("timeZone", "%v", err)
	}
	recurring, fixed := w.Cron != "" || w.Duration != 0, w.Start != "" || w.End != ""
	switch {
	case recurring && fixed:
		add("cron", "a window is either recurring (cron and duration) or fixed (start and end), not both")
		return nil, probs
	case !recurring && !fixed:
		add("cron", "required: either cron and duration (a recurring window) or start and end (a fixed one)")
		return nil, probs
	}
	valid := loc != nil
	if !valid {
		loc = time.UTC // still check the other fields
	}
	var out *calendar.Window
	if recurring {
		c, err := calendar.ParseCron(w.Cron, loc)
		if err != nil {
			add("cron", "%v", err)
		}
		if w.Duration <= 0 {
			add("duration", "required with cron: how long the window stays open, e.g. 8h")
		}
		if len(probs) == 0 && valid {
			out = calendar.Recurring(w.Name, c, w.Duration.D())
		}
	} else {
		start, err := bound(w.Start, loc, false)
		if err != nil {
			add("start", "%v", err)
		}
		end, err2 := bound(w.End, loc, true)
		if err2 != nil {
			add("end", "%v", err2)
		}
		if err == nil && err2 == nil && !end.After(start) {
			add("end", "must be after start (%s)", w.Start)
		}
		if len(probs) == 0 && valid {
			out = calendar.Fixed(w.Name, start, end)
		}
	}
	if out != nil {
		out.Origin = origin
	}
	return out, probs
}

func bound(s string, loc *time.Location, isEnd bool) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		if isEnd {
			return time.Time{}, fmt.Errorf("required with start")
		}
		return time.Time{}, fmt.Errorf("required with end")
	}
	return calendar.ParseBound(s, loc, isEnd)
}

// Windows compiles the experiment's freeze windows (validated at load).
func (s *Schedule) Windows() ([]*calendar.Window, error) { return s.WindowsOf("experiment") }

// WindowsOf compiles the freeze windows of the schedule of origin
// ("experiment", "suite"; messages name it).
func (s *Schedule) WindowsOf(origin string) ([]*calendar.Window, error) {
	var out []*calendar.Window
	for _, w := range s.FreezeWindows {
		cw, err := w.Compile(origin)
		if err != nil {
			return nil, err
		}
		out = append(out, cw)
	}
	return out, nil
}

// Calendar parses the schedule's cron in its time zone (validated at load).
func (s *Schedule) Calendar() (*calendar.Cron, error) {
	loc, err := calendar.LoadZone(s.TimeZone)
	if err != nil {
		return nil, err
	}
	return calendar.ParseCron(s.Cron, loc)
}
