package experiments

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestParseByteRate(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteRate
		out     string // String(); "" means in
		wantErr string
	}{
		{in: "10mbit", want: 1_250_000},
		{in: "10Mbit", want: 1_250_000, out: "10mbit"},
		{in: "512kbit", want: 64_000, out: "64kbps"},
		{in: "1gbit", want: 125_000_000},
		{in: "1tbit", want: 125_000_000_000},
		{in: "8bit", want: 1},
		{in: "1bps", want: 1, out: "8bit"},
		{in: "100kbps", want: 100_000, out: "800kbit"},
		{in: "1.5mbit", want: 187_500},
		{in: "1.5MBPS", want: 1_500_000, out: "12mbit"},
		{in: "2gbps", want: 2_000_000_000},
		{in: "1250kbps", want: 1_250_000, out: "10mbit"},
		{in: "0.001kbps", want: 1, out: "8bit"},
		{in: "3bps", want: 3, out: "3bps"},
		{in: "12.5kbps", want: 12_500, out: "100kbit"},
		{in: ".5kbps", want: 500, out: "4kbit"},
		{in: "0", want: 0, out: "0bit"},
		{in: "0mbit", want: 0, out: "0bit"},
		{in: "", wantErr: "is not a rate"},
		{in: "mbit", wantErr: "is not a rate"},
		{in: "10", wantErr: "needs a unit"},
		{in: "10mbits", wantErr: `unknown unit "mbits"`},
		{in: "10 mbit", wantErr: `unknown unit " mbit"`},
		{in: "10kibit", wantErr: "unknown unit"},
		{in: "-1mbit", wantErr: "cannot be negative"},
		{in: "1e3bit", wantErr: "unknown unit"},
		{in: "1bit", wantErr: "whole number of bytes"},
		{in: "99999999999tbit", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteRate(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %d, %v; want %d", got, err, tt.want)
			}
			out := tt.out
			if out == "" {
				out = tt.in
			}
			if got.String() != out {
				t.Errorf("String() = %q, want %q", got.String(), out)
			}
			if back, err := ParseByteRate(got.String()); err != nil || back != got {
				t.Errorf("ParseByteRate(String()) = %d, %v; want %d", back, err, got)
			}
		})
	}
	if got := ByteRate(1_250_000).BitsPerSecond(); got != 10_000_000 {
		t.Errorf("BitsPerSecond = %d", got)
	}
	if max := ByteRate(^uint64(0)); mustRate(t, max.String()) != max {
		t.Errorf("largest rate does not round-trip: %s", max)
	}
}

func mustRate(t *testing.T, s string) ByteRate {
	t.Helper()
	r, err := ParseByteRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		out     string // String(); "" means in
		wantErr string
	}{
		{in: "256Mi", want: 256 << 20},
		{in: "1Gi", want: 1 << 30},
		{in: "64Ki", want: 64 << 10},
		{in: "2Ti", want: 2 << 40},
		{in: "512M", want: 512_000_000},
		{in: "1G", want: 1_000_000_000},
		{in: "3T", want: 3_000_000_000_000},
		{in: "1k", want: 1000},
		{in: "1K", want: 1000, out: "1k"},
		{in: "1000", want: 1000, out: "1k"},
		{in: "1024", want: 1024, out: "1Ki"},
		{in: "1536Mi", want: 1536 << 20},
		{in: "1024Mi", want: 1 << 30, out: "1Gi"},
		{in: "2048000", want: 2_048_000, out: "2048k"},
		{in: "2000Ki", want: 2_048_000, out: "2048k"},
		{in: "4Ki", want: 4096},
		{in: "4000Ki", want: 4_096_000, out: "4096k"},
		{in: "1001", want: 1001},
		{in: "0", want: 0},
		{in: "0Gi", want: 0, out: "0"},
		{in: "", wantErr: "is not a size"},
		{in: "Gi", wantErr: "is not a size"},
		{in: "512MB", wantErr: `unknown suffix "MB" (want Ki, Mi, Gi, Ti (powers of 1024), k, M, G, T (powers of 1000), or none for bytes)`},
		{in: "1gi", wantErr: `unknown suffix "gi"`},
		{in: "1m", wantErr: `unknown suffix "m"`},
		{in: "1Pi", wantErr: `unknown suffix "Pi"`},
		{in: "-1Gi", wantErr: "cannot be negative"},
		{in: "1.5Gi", wantErr: "not a whole number; write 1536Mi"},
		{in: "0.1", wantErr: "not a whole number; write the size with a smaller suffix"},
		{in: "99999999Ti", wantErr: "too large"},
		{in: "99999999999999999999", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %d, %v; want %d", got, err, tt.want)
			}
			out := tt.out
			if out == "" {
				out = tt.in
			}
			if got.String() != out {
				t.Errorf("String() = %q, want %q", got.String(), out)
			}
			if back, err := ParseByteSize(got.String()); err != nil || back != got {
				t.Errorf("ParseByteSize(String()) = %d, %v; want %d", back, err, got)
			}
		})
	}
}

// TestQuantityJSONAndYAML checks rates and sizes are written as strings in
// the form they are read in, and read back to the same value.
func TestQuantityJSONAndYAML(t *testing.T) {
	type wrap struct {
		R ByteRate `json:"r" yaml:"r"`
		S ByteSize `json:"s" yaml:"s"`
	}
	tests := []struct {
		name       string
		in         wrap
		json, yaml string
	}{
		{"suffixes", wrap{R: 1_250_000, S: 256 << 20}, `{"r":"10mbit","s":"256Mi"}`, "r: 10mbit\ns: 256Mi\n"},
		{"decimal", wrap{R: 187_500, S: 512_000_000}, `{"r":"1.5mbit","s":"512M"}`, "r: 1.5mbit\ns: 512M\n"},
		{"plain bytes", wrap{R: 3, S: 1001}, `{"r":"3bps","s":"1001"}`, "r: 3bps\ns: \"1001\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(j) != tt.json {
				t.Errorf("JSON = %s, want %s", j, tt.json)
			}
			var back wrap
			if err := json.Unmarshal(j, &back); err != nil || back != tt.in {
				t.Errorf("JSON round trip = %+v, %v; want %+v", back, err, tt.in)
			}
			y, err := yaml.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(y) != tt.yaml {
				t.Errorf("YAML = %q, want %q", y, tt.yaml)
			}
			back = wrap{}
			if err := yaml.UnmarshalWithOptions(y, &back, yaml.DisallowUnknownField()); err != nil || back != tt.in {
				t.Errorf("YAML round trip = %+v, %v; want %+v", back, err, tt.in)
			}
		})
	}
	var w wrap
	if err := json.Unmarshal([]byte(`{"r":"10mbits","s":"1Gi"}`), &w); err == nil || !strings.Contains(err.Error(), "parse rate") {
		t.Errorf("JSON: bad rate: err = %v", err)
	}
	if err := json.Unmarshal([]byte(`{"r":"10mbit","s":"1GB"}`), &w); err == nil || !strings.Contains(err.Error(), "parse size") {
		t.Errorf("JSON: bad size: err = %v", err)
	}
	if err := yaml.Unmarshal([]byte("r: 10mbit\ns: 1000\n"), &w); err != nil || w.S != 1000 {
		t.Errorf("YAML: a plain integer size = %d, %v; want 1000", w.S, err)
	}
}
