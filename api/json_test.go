package api

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestResultJSONNonFinite(t *testing.T) {
	tests := []struct {
		name     string
		v        float64
		wantJSON string
	}{
		{"finite", 0.25, `"value":0.25`},
		{"large finite as encoding/json", 1e6, `"value":1000000`},
		{"nan", math.NaN(), `"value":"NaN"`},
		{"+inf", math.Inf(1), `"value":"+Inf"`},
		{"-inf", math.Inf(-1), `"value":"-Inf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ProbeResult{
				Probe: "p", Time: time.Unix(100, 0).UTC(), Value: tt.v, Error: "e",
				Series: []SeriesValue{{Labels: `{a="b"}`, Value: tt.v}},
			}
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if got := strings.Count(string(b), tt.wantJSON); got != 2 {
				t.Fatalf("Marshal = %s, want %s twice (result and series)", b, tt.wantJSON)
			}
			var out ProbeResult
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
			if !same(out.Value, tt.v) || len(out.Series) != 1 || !same(out.Series[0].Value, tt.v) ||
				out.Probe != "p" || out.Error != "e" || !out.Time.Equal(in.Time) || out.Series[0].Labels != `{a="b"}` {
				t.Fatalf("round trip: got %+v, want %+v", out, in)
			}
		})
	}
}

func TestResultJSONNullIsNaN(t *testing.T) {
	var r ProbeResult
	if err := json.Unmarshal([]byte(`{"probe":"p","value":null}`), &r); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(r.Value) {
		t.Fatalf("Value = %v, want NaN", r.Value)
	}
}

func TestPointJSONNonFinite(t *testing.T) {
	in := Timeline{RunID: "r-1", Series: []ProbeSeries{{Name: "p", Phases: []Phase{PhaseAbort}, Points: []Point{
		{Time: time.Unix(100, 0).UTC(), Value: 0.5, OK: true},
		{Time: time.Unix(101, 0).UTC(), Value: math.NaN()},
		{Time: time.Unix(102, 0).UTC(), Value: math.Inf(1)},
	}}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	for _, want := range []string{`"v":0.5`, `"v":"NaN"`, `"v":"+Inf"`, `"ok":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Marshal = %s, want %s in it", b, want)
		}
	}
	var out Timeline
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	ps := out.Series[0].Points
	if len(ps) != 3 || ps[0].Value != 0.5 || !ps[0].OK || !math.IsNaN(ps[1].Value) || !math.IsInf(ps[2].Value, 1) ||
		!ps[1].Time.Equal(in.Series[0].Points[1].Time) || !out.Series[0].Abort() {
		t.Fatalf("round trip: got %+v", out)
	}
}
