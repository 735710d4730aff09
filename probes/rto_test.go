package probes

import (
	"testing"
	"time"
)

// t0 is an arbitrary base; rounds are given as seconds after it.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func sec(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

type round struct {
	at int // seconds after t0
	ok bool
}

func TestRecoveryTracker(t *testing.T) {
	tests := []struct {
		name      string
		holdFor   time.Duration
		rounds    []round
		wantOK    bool
		wantStart int
	}{
		{"no rounds", 3 * time.Second, nil, false, 0},
		{"hold zero: first passing round", 0, []round{{0, false}, {1, true}}, true, 1},
		{"streak too short", 3 * time.Second, []round{{0, true}, {1, true}, {2, true}}, false, 0},
		{"streak exactly holdFor, start reported", 3 * time.Second, []round{{0, false}, {1, true}, {2, true}, {3, true}, {4, true}}, true, 1},
		{"failure resets streak", 3 * time.Second, []round{{0, true}, {1, true}, {2, false}, {3, true}, {4, true}, {5, true}, {6, true}}, true, 3},
		{"failure at the last round", 2 * time.Second, []round{{0, true}, {1, true}, {2, false}}, false, 0},
		{"latched after recovery", 1 * time.Second, []round{{0, true}, {1, true}, {2, false}, {3, true}, {4, true}}, true, 0},
		{"sparse rounds measure time not count", 10 * time.Second, []round{{0, true}, {10, true}}, true, 0},
		{"out of order ignored", 2 * time.Second, []round{{5, true}, {3, false}, {7, true}}, true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RecoveryTracker{HoldFor: tt.holdFor}
			for _, rd := range tt.rounds {
				r.Observe(sec(rd.at), rd.ok)
			}
			got, ok := r.Recovered()
			if ok != tt.wantOK {
				t.Fatalf("Recovered() ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && !got.Equal(sec(tt.wantStart)) {
				t.Fatalf("Recovered() = t0+%s, want t0+%ds", got.Sub(t0), tt.wantStart)
			}
			if !ok && !got.IsZero() {
				t.Fatalf("Recovered() time = %v with ok false, want zero", got)
			}
		})
	}
}

func TestMeasuredRTO(t *testing.T) {
	impact := sec(100)
	tests := []struct {
		name      string
		impact    *time.Time
		recovered time.Time
		want      time.Duration
	}{
		{"no impact", nil, sec(500), 0},
		{"normal", &impact, sec(400), 300 * time.Second},
		{"same instant", &impact, sec(100), 0},
		{"recovered before impact clamps to 0", &impact, sec(50), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MeasuredRTO(tt.impact, tt.recovered); got != tt.want {
				t.Fatalf("MeasuredRTO = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAbortTracker(t *testing.T) {
	tests := []struct {
		name      string
		for_      time.Duration
		rounds    []round // ok = firing
		want      []bool  // Observe result per round
		wantFired int     // -1 = never
	}{
		{"for 0 fires at first firing round", 0, []round{{0, false}, {1, true}}, []bool{false, true}, 1},
		{"for 2s needs a 2s streak", 2 * time.Second, []round{{0, true}, {1, true}, {2, true}, {3, true}}, []bool{false, false, true, true}, 2},
		{"quiet round resets", 2 * time.Second, []round{{0, true}, {1, true}, {2, false}, {3, true}, {4, true}, {5, true}}, []bool{false, false, false, false, false, true}, 5},
		{"stops firing after fire, FiredAt kept", 0, []round{{0, true}, {1, false}, {2, true}}, []bool{true, false, true}, 0},
		{"never", time.Second, []round{{0, false}, {1, true}, {2, false}}, []bool{false, false, false}, -1},
		{"out of order ignored", 0, []round{{5, false}, {4, true}}, []bool{false, false}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := AbortTracker{For: tt.for_}
			for i, rd := range tt.rounds {
				if got := a.Observe(sec(rd.at), rd.ok); got != tt.want[i] {
					t.Fatalf("round %d (t0+%ds firing=%v): Observe = %v, want %v", i, rd.at, rd.ok, got, tt.want[i])
				}
			}
			at, fired := a.FiredAt()
			if fired != (tt.wantFired >= 0) || (fired && !at.Equal(sec(tt.wantFired))) {
				t.Fatalf("FiredAt() = t0+%s, %v; want t0+%ds", at.Sub(t0), fired, tt.wantFired)
			}
		})
	}
}
