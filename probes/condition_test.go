package probes

import (
	"math"
	"strings"
	"testing"
)

func TestHolds(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	tests := []struct {
		name string
		p    Probe
		v    float64
		want bool
	}{
		{"lt below", Probe{Op: OpLT, Threshold: f(1)}, 0.5, true},
		{"lt equal", Probe{Op: OpLT, Threshold: f(1)}, 1, false},
		{"le equal", Probe{Op: OpLE, Threshold: f(1)}, 1, true},
		{"le above", Probe{Op: OpLE, Threshold: f(1)}, 1.1, false},
		{"gt above", Probe{Op: OpGT, Threshold: f(1)}, 2, true},
		{"gt equal", Probe{Op: OpGT, Threshold: f(1)}, 1, false},
		{"ge equal", Probe{Op: OpGE, Threshold: f(0.99)}, 0.99, true},
		{"ge below", Probe{Op: OpGE, Threshold: f(0.99)}, 0.98, false},
		{"eq", Probe{Op: OpEQ, Threshold: f(3)}, 3, true},
		{"eq differs", Probe{Op: OpEQ, Threshold: f(3)}, 3.0001, false},
		{"ne differs", Probe{Op: OpNE, Threshold: f(0)}, 1, true},
		{"ne equal", Probe{Op: OpNE, Threshold: f(0)}, 0, false},
		{"between inside", Probe{Op: OpBetween, Min: f(0.1), Max: f(0.5)}, 0.3, true},
		{"between min inclusive", Probe{Op: OpBetween, Min: f(0.1), Max: f(0.5)}, 0.1, true},
		{"between max inclusive", Probe{Op: OpBetween, Min: f(0.1), Max: f(0.5)}, 0.5, true},
		{"between below", Probe{Op: OpBetween, Min: f(0.1), Max: f(0.5)}, 0.09, false},
		{"between above", Probe{Op: OpBetween, Min: f(0.1), Max: f(0.5)}, 0.51, false},
		{"nan never holds lt", Probe{Op: OpLT, Threshold: f(1)}, nan, false},
		{"nan never holds ne", Probe{Op: OpNE, Threshold: f(1)}, nan, false},
		{"nan never holds between", Probe{Op: OpBetween, Min: f(math.Inf(-1)), Max: f(inf)}, nan, false},
		{"inf compares gt", Probe{Op: OpGT, Threshold: f(1e300)}, inf, true},
		{"inf compares lt", Probe{Op: OpLT, Threshold: f(1e300)}, inf, false},
		{"-inf compares lt", Probe{Op: OpLT, Threshold: f(0)}, math.Inf(-1), true},
		{"missing threshold", Probe{Op: OpGT}, 1, false},
		{"missing max", Probe{Op: OpBetween, Min: f(0)}, 1, false},
		{"unknown op", Probe{Op: "~", Threshold: f(1)}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Holds(tt.v); got != tt.want {
				t.Errorf("Holds(%v) for %q = %v, want %v", tt.v, tt.p.Condition(), got, tt.want)
			}
		})
	}
}

func TestCondition(t *testing.T) {
	tests := []struct {
		name string
		p    Probe
		want string
	}{
		{"ge", Probe{Op: OpGE, Threshold: f(0.99)}, ">= 0.99"},
		{"lt integer", Probe{Op: OpLT, Threshold: f(500)}, "< 500"},
		{"ne zero", Probe{Op: OpNE, Threshold: f(0)}, "!= 0"},
		{"eq large", Probe{Op: OpEQ, Threshold: f(1e21)}, "== 1e+21"},
		{"between", Probe{Op: OpBetween, Min: f(0.1), Max: f(0.5)}, "between 0.1 and 0.5"},
		{"inf", Probe{Op: OpLT, Threshold: f(math.Inf(1))}, "< +Inf"},
		{"missing", Probe{Op: OpGT}, "> ?"},
		{"between missing", Probe{Op: OpBetween, Max: f(1)}, "between ? and 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Condition(); got != tt.want {
				t.Errorf("Condition() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Probe
		wantErr string // substring; "" = valid
	}{
		{"ok ge", Probe{Query: "up", Op: OpGE, Threshold: f(1)}, ""},
		{"ok between all", Probe{Query: "up", Op: OpBetween, Min: f(0), Max: f(1), Match: MatchAll, OnEmpty: OnEmptyPass}, ""},
		{"ok between point", Probe{Query: "up", Op: OpBetween, Min: f(1), Max: f(1)}, ""},
		{"no query", Probe{Op: OpGE, Threshold: f(1)}, "query: must not be empty"},
		{"no op", Probe{Query: "up", Threshold: f(1)}, "op: required"},
		{"bad op", Probe{Query: "up", Op: "=<", Threshold: f(1)}, `op: unknown "=<"`},
		{"no threshold", Probe{Query: "up", Op: OpLT}, "threshold: required"},
		{"nan threshold", Probe{Query: "up", Op: OpLT, Threshold: f(math.NaN())}, "NaN"},
		{"min with lt", Probe{Query: "up", Op: OpLT, Threshold: f(1), Min: f(0)}, "only for op between"},
		{"between no max", Probe{Query: "up", Op: OpBetween, Min: f(0)}, "both required"},
		{"between reversed", Probe{Query: "up", Op: OpBetween, Min: f(2), Max: f(1)}, "min 2 is greater than max 1"},
		{"between threshold", Probe{Query: "up", Op: OpBetween, Min: f(0), Max: f(1), Threshold: f(1)}, "not used by op between"},
		{"bad match", Probe{Query: "up", Op: OpGE, Threshold: f(1), Match: "some"}, `match: unknown "some"`},
		{"bad onEmpty", Probe{Query: "up", Op: OpGE, Threshold: f(1), OnEmpty: "skip"}, `onEmpty: unknown "skip"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
