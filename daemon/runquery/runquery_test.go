package runquery

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func runs() []api.Run {
	at := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
	return []api.Run{ // newest first
		{ID: "r-5", Experiment: "cut", Trigger: api.TriggerManual, Phase: api.PhaseObserving, CreatedAt: at(1), AdHoc: &api.AdHoc{}},
		{ID: "r-4", Experiment: "cut", Trigger: api.TriggerSchedule, Phase: api.PhaseDone, Verdict: api.VerdictFail, CreatedAt: at(2)},
		{ID: "r-3", Experiment: "lat", Trigger: api.TriggerSchedule, Phase: api.PhaseDone, Verdict: api.VerdictPass, CreatedAt: at(3)},
		{ID: "r-2", Experiment: "cut", Trigger: api.TriggerManual, Phase: api.PhaseDone, Verdict: api.VerdictPass, CreatedAt: at(30), DryRun: true},
		{ID: "r-1", Experiment: "cut", Trigger: api.TriggerManual, Phase: api.PhaseDone, Verdict: api.VerdictError, CreatedAt: at(50), Interrupted: true},
	}
}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		want        string
	}{
		{"everything", "", "r-5 r-4 r-3 r-2 r-1"},
		{"by experiment", "selector=experiment%3Dcut", "r-5 r-4 r-2 r-1"},
		{"experiment and verdict", "selector=experiment%3Dcut,verdict%3Dfail", "r-4"},
		{"set-based", "selector=verdict+in+(fail,error)", "r-4 r-1"},
		{"not equal matches running runs too", "selector=verdict!%3Dpass", "r-5 r-4 r-1"},
		{"trigger", "selector=trigger%3Dschedule", "r-4 r-3"},
		{"ad hoc only", "selector=adhoc%3Dtrue", "r-5"},
		{"dry runs and interrupted", "selector=dryRun%3Dtrue", "r-2"},
		{"interrupted", "selector=interrupted%3Dtrue", "r-1"},
		{"since", "since=24h", "r-5 r-4 r-3"},
		{"since in days", "since=2d", "r-5 r-4 r-3 r-2"},
		{"limit keeps the newest", "limit=2", "r-5 r-4"},
		{"limit after the selector", "selector=experiment%3Dcut&limit=3", "r-5 r-4 r-2"},
		{"nothing matches", "selector=experiment%3Dnone", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := FromValues(v)
			if err != nil {
				t.Fatalf("FromValues(%q): %v", tc.query, err)
			}
			var ids []string
			for _, r := range q.Apply(runs(), now) {
				ids = append(ids, r.ID)
			}
			if got := strings.Join(ids, " "); got != tc.want {
				t.Errorf("%q kept %q, want %q", tc.query, got, tc.want)
			}
			// The query survives the trip through its parameters.
			q2, err := FromValues(q.Values())
			if err != nil || q2.Values().Encode() != q.Values().Encode() {
				t.Errorf("round trip of %q: %v %q", tc.query, err, q2.Values().Encode())
			}
		})
	}
}

// TestBadQueries: hostile or mistyped parameters are refused naming the
// parameter, never ignored or clamped.
func TestBadQueries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v     url.Values
		param string
		want  string
	}{
		{"unknown key", url.Values{"selector": {"owner=bob"}}, "selector", `unknown key "owner": use experiment, verdict`},
		{"syntax", url.Values{"selector": {"experiment in (a"}}, "selector", "selector"},
		{"bad value", url.Values{"selector": {"verdict=a b"}}, "selector", ""},
		{"huge selector", url.Values{"selector": {"experiment=" + strings.Repeat("a", 5000)}}, "selector", "too long"},
		{"negative limit", url.Values{"limit": {"-1"}}, "limit", "at least 1"},
		{"zero limit", url.Values{"limit": {"0"}}, "limit", "at least 1"},
		{"limit overflow", url.Values{"limit": {"99999999999999999999999"}}, "limit", "not a whole number"},
		{"limit too high", url.Values{"limit": {"100001"}}, "limit", "too many"},
		{"limit not a number", url.Values{"limit": {"ten"}}, "limit", "not a whole number"},
		{"since overflow", url.Values{"since": {"9999999999999999y"}}, "since", "not a duration"},
		{"since too long", url.Values{"since": {"200y"}}, "since", "too long"},
		{"since zero", url.Values{"since": {"0s"}}, "since", "more than 0"},
		{"since negative", url.Values{"since": {"-1h"}}, "since", "not a duration"},
		{"since junk", url.Values{"since": {"yesterday"}}, "since", "not a duration"},
		{"unknown parameter", url.Values{"owner": {"bob"}}, "owner", "unknown parameter"},
		{"twice", url.Values{"limit": {"1", "2"}}, "limit", "given 2 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromValues(tc.v)
			qe, ok := err.(*Error)
			if !ok {
				t.Fatalf("FromValues(%v) = %v, want an *Error", tc.v, err)
			}
			if qe.Param != tc.param || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (param %q), want param %q containing %q", err, qe.Param, tc.param, tc.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error echoes %d bytes of input", len(err.Error()))
			}
		})
	}
}
