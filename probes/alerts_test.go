package probes

import (
	"testing"
	"time"
)

func TestTimeline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pts := func(states ...string) []AlertPoint {
		out := make([]AlertPoint, len(states))
		for i, s := range states {
			out[i] = AlertPoint{Time: t0.Add(time.Duration(i) * time.Second), State: s}
		}
		return out
	}
	at := func(i int) *time.Time { v := t0.Add(time.Duration(i) * time.Second); return &v }
	for _, tc := range []struct {
		name                     string
		pts                      []AlertPoint
		pending, fired, resolved *time.Time
	}{
		{"never", pts("", "", ""), nil, nil, nil},
		{"pending only", pts("", AlertPending, AlertPending), at(1), nil, nil},
		{"pending, fires, resolves", pts("", AlertPending, AlertFiring, AlertFiring, ""), at(1), at(2), at(4)},
		{"fires at once (no for)", pts(AlertFiring, ""), at(0), at(0), at(1)},
		{"fires twice: the first firing counts", pts(AlertFiring, "", AlertFiring), at(0), at(0), at(1)},
	} {
		tl := Timeline(tc.pts)
		eq := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
		if !eq(tl.Pending, tc.pending) || !eq(tl.Fired, tc.fired) || !eq(tl.Resolved, tc.resolved) {
			t.Errorf("%s: got %+v", tc.name, tl)
		}
	}
}
