package calendar

import (
	"strings"
	"testing"
	"time"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := LoadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustCron(t *testing.T, expr, tz string) *Cron {
	t.Helper()
	c, err := ParseCron(expr, zone(t, tz))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rfc(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format(time.RFC3339)
	}
	return out
}

// TestNextAcrossDST pins the fire times of schedules around both DST
// changes of 2026 in two zones, and of an ordinary day.
func TestNextAcrossDST(t *testing.T) {
	cases := []struct {
		name, expr, tz, from string
		want                 []string
	}{
		{"normal days", "30 2 * * *", "America/New_York", "2026-06-01T00:00:00Z",
			[]string{"2026-06-01T02:30:00-04:00", "2026-06-02T02:30:00-04:00", "2026-06-03T02:30:00-04:00"}},
		// 2026-03-08 02:00 EST → 03:00 EDT: 02:30 does not exist; it fires
		// once, at 03:00 EDT (robfig alone skips the day).
		{"spring forward New York", "30 2 * * *", "America/New_York", "2026-03-06T12:00:00Z",
			[]string{"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"spring forward Berlin", "30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		// Several fire times inside the gap still fire once.
		{"spring forward, every 15 minutes", "*/15 2 * * *", "Europe/Berlin", "2026-03-28T23:00:00Z",
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T02:15:00+02:00"}},
		// A time right after the gap is not doubled by the gap.
		{"spring forward, 03:00 itself", "0 3 * * *", "America/New_York", "2026-03-07T12:00:00Z",
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"}},
		// 2026-11-01 02:00 EDT → 01:00 EST: 01:30 happens twice; it fires
		// at the first only (robfig alone fires twice).
		{"fall back New York", "30 1 * * *", "America/New_York", "2026-10-30T12:00:00Z",
			[]string{"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"fall back Berlin", "30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z",
			[]string{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		// Every hour: both copies of the repeated hour are hours of
		// elapsed time, and fire.
		{"fall back, hourly", "30 * * * *", "America/New_York", "2026-11-01T04:00:00Z",
			[]string{"2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:30:00-05:00"}},
		{"zone without DST", "30 2 * * *", "UTC", "2026-03-28T00:00:00Z",
			[]string{"2026-03-28T02:30:00Z", "2026-03-29T02:30:00Z"}},
		{"half-hour DST (Lord Howe)", "15 2 * * *", "Australia/Lord_Howe", "2026-10-02T12:00:00Z",
			[]string{"2026-10-03T02:15:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCron(t, tc.expr, tc.tz)
			got := rfc(c.NextN(at(t, tc.from), len(tc.want)))
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("next fire times\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestNextStepsOncePerDay steps one trigger at a time as the scheduler
// does (from the last trigger), through both changes: each day of March
// 7..9 and October 31..November 2 fires exactly once.
func TestNextStepsOncePerDay(t *testing.T) {
	for _, tz := range []string{"America/New_York", "Europe/Berlin"} {
		c := mustCron(t, "30 2 * * *", tz)
		c1 := mustCron(t, "30 1 * * *", tz)
		for _, tc := range []struct {
			c     *Cron
			from  string
			until string
		}{{c, "2026-03-01T00:00:00Z", "2026-04-05T00:00:00Z"}, {c1, "2026-10-20T00:00:00Z", "2026-11-10T00:00:00Z"}, {c, "2026-10-20T00:00:00Z", "2026-11-10T00:00:00Z"}} {
			from, until := at(t, tc.from), at(t, tc.until)
			days := map[string]int{}
			for tt := tc.c.Next(from); tt.Before(until); tt = tc.c.Next(tt) {
				days[tt.In(tc.c.Location()).Format("2006-01-02")]++
			}
			for d := from.In(tc.c.Location()).AddDate(0, 0, 1); d.Before(until.Add(-24 * time.Hour)); d = d.AddDate(0, 0, 1) {
				if n := days[d.Format("2006-01-02")]; n != 1 {
					t.Errorf("%s %s: %s fired %d times, want 1", tz, tc.c, d.Format("2006-01-02"), n)
				}
			}
		}
	}
}

func TestParseCronErrors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{"", "required"},
		{"CRON_TZ=UTC 0 9 * * *", "timeZone field"},
		{"61 * * * *", "is not a cron schedule"},
	} {
		if _, err := ParseCron(tc.expr, time.UTC); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCron(%q) = %v, want %q", tc.expr, err, tc.want)
		}
	}
	if _, err := LoadZone("Local"); err == nil {
		t.Error("LoadZone(Local) accepted")
	}
	if _, err := LoadZone("Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "unknown time zone") {
		t.Errorf("LoadZone(Mars/Olympus) = %v", err)
	}
}

func TestWindows(t *testing.T) {
	berlin, ny := zone(t, "Europe/Berlin"), zone(t, "America/New_York")
	// Business hours in New York, weekdays 09:00 for 8h.
	peak := Recurring("peak-hours", mustCron(t, "0 9 * * 1-5", "America/New_York"), 8*time.Hour)
	start, err := ParseBound("2026-12-24", berlin, false)
	if err != nil {
		t.Fatal(err)
	}
	end, err := ParseBound("2026-12-26", berlin, true)
	if err != nil {
		t.Fatal(err)
	}
	holidays := Fixed("christmas", start, end)
	dtStart, _ := ParseBound("2026-11-26T18:00", ny, false)
	dtEnd, _ := ParseBound("2026-11-27T06:00", ny, true)
	release := Fixed("release", dtStart, dtEnd)
	ws := []*Window{peak, holidays, release}
	cases := []struct {
		at, want, until string
	}{
		{"2026-06-03T13:00:00Z", "peak-hours", "2026-06-03T21:00:00Z"}, // Wednesday 09:00 EDT
		{"2026-06-03T12:59:59Z", "", ""},
		{"2026-06-03T21:00:00Z", "", ""}, // the end is open
		{"2026-06-06T15:00:00Z", "", ""}, // Saturday
		// Across zones: the Berlin holiday starts at 23:00 UTC.
		{"2026-12-23T22:59:59Z", "", ""},
		{"2026-12-23T23:00:00Z", "christmas", "2026-12-26T23:00:00Z"},
		{"2026-12-26T22:59:59Z", "christmas", "2026-12-26T23:00:00Z"},
		{"2026-12-26T23:00:00Z", "", ""},
		{"2026-11-27T05:00:00Z", "release", "2026-11-27T11:00:00Z"},
		{"2026-11-27T11:00:00Z", "", ""},
	}
	for _, tc := range cases {
		f := Frozen(ws, at(t, tc.at))
		got, until := "", ""
		if f != nil {
			got, until = f.Window.Name, f.Until.UTC().Format(time.RFC3339)
		}
		if got != tc.want || until != tc.until {
			t.Errorf("at %s: frozen by %q until %q, want %q until %q", tc.at, got, until, tc.want, tc.until)
		}
	}
	if _, err := ParseBound("24.12.2026", berlin, false); err == nil || !strings.Contains(err.Error(), "not a date") {
		t.Errorf("ParseBound(24.12.2026) = %v", err)
	}
	rfcStart, err := ParseBound("2026-12-24T18:00:00+01:00", ny, false)
	if err != nil || !rfcStart.Equal(at(t, "2026-12-24T17:00:00Z")) {
		t.Errorf("RFC 3339 bound = %v, %v", rfcStart, err)
	}
}
