package experiments

import (
	"github.com/chaosd/chaosd/agent/agentapi"

	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/chaosd/chaosd/probes"
)

func TestParseBlastRadius(t *testing.T) {
	tests := []struct {
		in      string
		want    BlastRadius
		wantErr string
	}{
		{in: "all", want: BlastRadius{Kind: BlastAll}},
		{in: "one", want: BlastRadius{Kind: BlastOne}},
		{in: "fixed:1", want: BlastRadius{Kind: BlastFixed, N: 1}},
		{in: "fixed:12", want: BlastRadius{Kind: BlastFixed, N: 12}},
		{in: "percent:100", want: BlastRadius{Kind: BlastPercent, Percent: 100}},
		{in: "percent:0.5", want: BlastRadius{Kind: BlastPercent, Percent: 0.5}},
		{in: "", wantErr: "unknown mode"},
		{in: "ALL", wantErr: "unknown mode"},
		{in: "one:1", wantErr: "takes no argument"},
		{in: "fixed", wantErr: "N >= 1"},
		{in: "fixed:0", wantErr: "N >= 1"},
		{in: "fixed:-1", wantErr: "N >= 1"},
		{in: "percent:0", wantErr: "0 < P <= 100"},
		{in: "percent:100.1", wantErr: "0 < P <= 100"},
		{in: "percent:NaN", wantErr: "0 < P <= 100"},
		{in: "percent:", wantErr: "0 < P <= 100"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBlastRadius(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"30s", 30 * time.Second, "30s"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"1d", 24 * time.Hour, "1d"},
		{"0", 0, "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDuration(tt.in)
			if err != nil || d.D() != tt.want {
				t.Fatalf("ParseDuration = %v, %v; want %v", d, err, tt.want)
			}
			if d.String() != tt.out {
				t.Errorf("String() = %q, want %q", d.String(), tt.out)
			}
		})
	}
	for _, bad := range []string{"", "30", "1.5s", "-1s", "10 s"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded, want an error", bad)
		}
	}
}

// TestMarshalJSONAndYAML checks typed values are written back in the form
// they are read in.
func TestMarshalJSONAndYAML(t *testing.T) {
	type wrap struct {
		D Duration    `json:"d" yaml:"d"`
		M BlastRadius `json:"m" yaml:"m"`
	}
	in := wrap{D: Duration(90 * time.Second), M: BlastRadius{Kind: BlastPercent, Percent: 12.5}}
	j, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(j), `{"d":"1m30s","m":"percent:12.5"}`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	var back wrap
	if err := json.Unmarshal(j, &back); err != nil || back != in {
		t.Errorf("JSON round trip = %+v, %v; want %+v", back, err, in)
	}
	if err := json.Unmarshal([]byte(`{"d":"x","m":"all"}`), &back); err == nil {
		t.Error("JSON: bad duration accepted")
	}
	if err := json.Unmarshal([]byte(`{"d":"1s","m":"fixed:0"}`), &back); err == nil {
		t.Error("JSON: bad mode accepted")
	}
	y, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(y), "d: 1m30s\nm: percent:12.5\n"; got != want {
		t.Errorf("YAML = %q, want %q", got, want)
	}
}

// TestRoundTrip writes a loaded experiment back as YAML and JSON and
// checks the result loads to the same value.
func TestRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob good files: %v (found %d)", err, len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			e, err := LoadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			y, err := yaml.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(y, "again.yaml")
			if err != nil {
				t.Fatalf("re-parse marshalled YAML:\n%v\n%s", err, y)
			}
			again.Source = e.Source
			if !reflect.DeepEqual(e, again) {
				t.Errorf("YAML round trip changed the experiment:\n%s", y)
			}
			j, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var fromJSON Experiment
			if err := json.Unmarshal(j, &fromJSON); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, &fromJSON) {
				t.Errorf("JSON round trip changed the experiment:\n%s", j)
			}
		})
	}
}

// TestYAMLMirrorsParams keeps the decoding shadow types in step with the
// parameter types they decode: same fields, names and YAML tags, and the
// same Go types except CIDRs ([]prefixValue for []netip.Prefix).
func TestYAMLMirrorsParams(t *testing.T) {
	tests := []struct {
		name         string
		params, shim reflect.Type
		fill         any // a value with every field set, decoded through the shim
	}{
		{"partition", reflect.TypeFor[PartitionParams](), reflect.TypeFor[partitionYAML](), &PartitionParams{
			CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Direction: DirectionEgress, Ports: []uint16{80},
		}},
		{"latency", reflect.TypeFor[LatencyParams](), reflect.TypeFor[latencyYAML](), &LatencyParams{
			CIDRs: []netip.Prefix{netip.MustParsePrefix("fd00::/8")}, Ports: []uint16{443},
			Delay: Duration(time.Second), Jitter: Duration(time.Millisecond), Correlation: 5, Loss: 1.5,
			Rate: 1_250_000, Interface: "eth0",
		}},
	}
	prefixes := reflect.TypeFor[[]netip.Prefix]()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.params, tt.shim
			if a.NumField() != b.NumField() {
				t.Fatalf("%s has %d fields, %s %d", a, a.NumField(), b, b.NumField())
			}
			for i := range a.NumField() {
				fa, fb := a.Field(i), b.Field(i)
				if fa.Name != fb.Name || fa.Tag.Get("yaml") != fb.Tag.Get("yaml") {
					t.Errorf("field %d: %s %q vs %s %q", i, fa.Name, fa.Tag.Get("yaml"), fb.Name, fb.Tag.Get("yaml"))
				}
				if fa.Type != fb.Type && fa.Type != prefixes {
					t.Errorf("field %s: %s vs %s", fa.Name, fa.Type, fb.Type)
				}
			}
			// Every field set survives YAML through the shim.
			y, err := yaml.Marshal(tt.fill)
			if err != nil {
				t.Fatal(err)
			}
			back := reflect.New(a)
			if err := yaml.Unmarshal(y, back.Interface()); err != nil {
				t.Fatalf("decode:\n%s\n%v", y, err)
			}
			if !reflect.DeepEqual(back.Interface(), tt.fill) {
				t.Errorf("round trip through the shim lost fields:\n%s\ngot %+v", y, back.Elem())
			}
		})
	}
}

func validExperiment() *Experiment {
	one := 1.0
	return &Experiment{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   Metadata{Name: "built-in-go"},
		Spec: Spec{
			Targets: []Target{{Name: "t", Cluster: "c1"}},
			Faults: []Fault{{Name: "f", Kind: agentapi.KindPartition, Target: "t",
				Partition: &PartitionParams{CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}}},
			Duration:    Duration(30 * time.Second),
			SteadyState: SteadyState{Probes: []probes.Probe{{Name: "p", Query: "up", Op: probes.OpEQ, Threshold: &one}}},
		},
	}
}

func TestValidateGoValues(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *Experiment)
		want   string // "" means valid
	}{
		{"valid", func(*Experiment) {}, ""},
		{"bad blast radius", func(e *Experiment) { e.Spec.Targets[0].Mode = BlastRadius{Kind: BlastFixed} },
			`spec.targets[0].mode: "fixed:0": fixed:N needs a whole number N >= 1, e.g. fixed:2`},
		{"host bits", func(e *Experiment) {
			e.Spec.Faults[0].Partition.CIDRs[0] = netip.MustParsePrefix("10.1.2.3/16")
		}, `spec.faults[0].partition.cidrs[0]: "10.1.2.3/16" has host bits set; did you mean 10.1.0.0/16?`},
		{"zero prefix", func(e *Experiment) { e.Spec.Faults[0].Partition.CIDRs[0] = netip.Prefix{} },
			"spec.faults[0].partition.cidrs[0]: must be a CIDR such as 10.1.0.0/16"},
		{"negative for", func(e *Experiment) {
			e.Spec.AbortWhen = []AbortProbe{{Probe: e.Spec.SteadyState.Probes[0], For: -1}}
		}, "spec.abortWhen[0].for: must be >= 0, not"},
		{"zero duration", func(e *Experiment) { e.Spec.Duration = 0 }, "spec.duration: must be > 0"},
		{"memory size only", func(e *Experiment) {
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindMemory, Target: "t", Memory: &MemoryParams{Size: 1 << 30}}
		}, ""},
		{"memory fraction only", func(e *Experiment) {
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindMemory, Target: "t", Memory: &MemoryParams{Fraction: 0.5}}
		}, ""},
		{"memory neither", func(e *Experiment) {
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindMemory, Target: "t", Memory: &MemoryParams{}}
		}, "spec.faults[0].memory: one of size or fraction is required"},
		{"memory negative ramp", func(e *Experiment) {
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindMemory, Target: "t", Memory: &MemoryParams{Size: 1, Ramp: -1}}
		}, "spec.faults[0].memory.ramp: must be >= 0"},
		{"latency without delay", func(e *Experiment) {
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindLatency, Target: "t", Latency: &LatencyParams{
				CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}}
		}, "spec.faults[0].latency.delay: required"},
		{"latency negative jitter", func(e *Experiment) {
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindLatency, Target: "t", Latency: &LatencyParams{
				CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Delay: Duration(time.Second), Jitter: -1}}
		}, "spec.faults[0].latency.jitter: must be >= 0"},
		{"exception level defaulted", func(e *Experiment) {
			e.Spec.Targets[0].Service = "visits"
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindException, Target: "t", Exception: &ExceptionParams{}}
		}, ""},
		{"exception without service", func(e *Experiment) {
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindException, Target: "t", Exception: &ExceptionParams{}}
		}, "spec.faults[0].target: kind exception needs a target with service (the Spring Boot service to attack)"},
		{"exception argument without value", func(e *Experiment) {
			e.Spec.Targets[0].Service = "visits"
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindException, Target: "t", Exception: &ExceptionParams{
				Exception: &SpringException{Type: "java.io.IOException", Arguments: []SpringExceptionArg{{Type: "java.lang.String"}}}}}
		}, "spec.faults[0].exception.exception.arguments[0].value: required"},
		{"app latency without range", func(e *Experiment) {
			e.Spec.Targets[0].Service = "visits"
			e.Spec.Faults[0] = Fault{Name: "f", Kind: agentapi.KindAppLatency, Target: "t", AppLatency: &AppLatencyParams{}}
		}, "spec.faults[0].appLatency.latencyRange: required"},
		{"partition and latency", func(e *Experiment) {
			e.Spec.Faults[0].Latency = &LatencyParams{}
		}, "spec.faults[0].latency: only allowed when kind is latency"},
		{"effects defaulted", func(e *Experiment) {
			e.Spec.Duration = Duration(time.Minute)
			e.Spec.Effects = &Effects{Probes: e.Spec.SteadyState.Probes}
		}, ""},
		{"effects default too long", func(e *Experiment) {
			e.Spec.Effects = &Effects{Probes: e.Spec.SteadyState.Probes}
		}, "spec.effects.within: must be less than spec.duration (30s), not 30s (the default)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validExperiment()
			e.Source = "go"
			tt.change(e)
			e.SetDefaults()
			err := e.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			if got := list[0].Error(); !strings.HasPrefix(got, "go: "+tt.want) {
				t.Errorf("got %q, want prefix %q", got, "go: "+tt.want)
			}
		})
	}
}

func TestSetDefaults(t *testing.T) {
	e := validExperiment()
	e.Spec.ProbeInterval = Duration(5 * time.Second)
	e.Spec.Schedule = &Schedule{Cron: "@hourly"}
	e.SetDefaults()
	r := e.Spec.Recovery
	if r.RTO != Duration(15*time.Minute) || r.HoldFor != Duration(15*time.Second) ||
		r.Timeout != Duration(15*time.Minute+15*time.Second) || len(r.Probes) != 1 {
		t.Errorf("recovery defaults = %+v", r)
	}
	if e.Spec.Faults[0].Partition.Direction != DirectionBoth || e.Spec.Targets[0].Mode.Kind != BlastAll ||
		e.Spec.Schedule.TimeZone != "UTC" {
		t.Errorf("defaults not applied: %+v", e.Spec)
	}

	e = validExperiment()
	e.Spec.Faults = append(e.Spec.Faults,
		Fault{Kind: agentapi.KindException, Exception: &ExceptionParams{}},
		Fault{Kind: agentapi.KindAppLatency, AppLatency: &AppLatencyParams{Level: 7}})
	e.Spec.Effects = &Effects{}
	e.SetDefaults()
	if got := e.Spec.Faults[1].Exception.Level; got != 1 {
		t.Errorf("exception level = %d, want 1", got)
	}
	if got := e.Spec.Faults[2].AppLatency.Level; got != 7 {
		t.Errorf("a set appLatency level = %d, want it kept (7)", got)
	}
	if got := e.Spec.Effects.Within; got != Duration(30*time.Second) {
		t.Errorf("effects.within = %s, want 30s", got)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		in   FieldError
		want string
	}{
		{"full", FieldError{File: "a.yaml", Line: 3, Col: 5, Path: "spec.x", Msg: "bad"}, "a.yaml:3:5: spec.x: bad"},
		{"no path", FieldError{File: "a.yaml", Line: 1, Col: 1, Msg: "syntax"}, "a.yaml:1:1: syntax"},
		{"no position", FieldError{File: "a.yaml", Msg: "read"}, "a.yaml: read"},
		{"only path", FieldError{Path: "kind", Msg: "required"}, "kind: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if (ErrorList{}).Err() != nil {
		t.Error("empty ErrorList.Err() must be nil")
	}
}
