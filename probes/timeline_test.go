package probes

import (
	"testing"
	"time"
)

func TestGridPlacesChanges(t *testing.T) {
	t0 := time.Unix(1000, 0)
	grid := func(oks ...bool) Grid {
		var g Grid
		for i, ok := range oks {
			at := t0.Add(time.Duration(i) * 250 * time.Millisecond)
			g = append(g, []Result{{Probe: "a", Time: at, OK: true}, {Probe: "b", Time: at, OK: ok}})
		}
		return g
	}
	tests := []struct {
		name              string
		g                 Grid
		firstFail, streak int // step index, -1 for none
	}{
		{"empty", nil, -1, -1},
		{"all hold", grid(true, true, true), -1, 0},
		{"fails from step 2", grid(true, true, false, false), 2, -1},
		{"heals at step 1", grid(false, true, true), 0, 1},
		{"flaps: streak is the last run", grid(true, false, true, true), 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, ok := tt.g.FirstFailure()
			if want := tt.firstFail; (want < 0) == ok || (ok && !at.Equal(tt.g[want][0].Time)) {
				t.Errorf("FirstFailure = %v, %v; want step %d", at, ok, want)
			}
			at, ok = tt.g.StreakStart()
			if want := tt.streak; (want < 0) == ok || (ok && !at.Equal(tt.g[want][0].Time)) {
				t.Errorf("StreakStart = %v, %v; want step %d", at, ok, want)
			}
		})
	}
}
