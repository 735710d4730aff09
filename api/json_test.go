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
