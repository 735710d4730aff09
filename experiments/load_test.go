package experiments

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files testdata/*.bad.yaml.err")

// TestLoadGood loads every testdata/*.good.yaml.
func TestLoadGood(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob good files: %v (found %d)", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			e, err := LoadFile(f)
			if err != nil {
				t.Fatalf("LoadFile(%s):\n%v", f, err)
			}
			if e.Source != f {
				t.Errorf("Source = %q, want %q", e.Source, f)
			}
			if err := e.Validate(); err != nil {
				t.Errorf("a loaded experiment must validate again:\n%v", err)
			}
		})
	}
}

// TestLoadBad loads every testdata/*.bad.yaml and compares the whole error
// text with testdata/NAME.bad.yaml.err. Run with -update to rewrite them.
func TestLoadBad(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob bad files: %v (found %d)", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			e, err := LoadFile(f)
			if err == nil {
				t.Fatalf("LoadFile(%s) = %+v, want an error", f, e)
			}
			if e != nil {
				t.Errorf("LoadFile returned an experiment with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty ErrorList: %v", err, err)
			}
			for _, fe := range list {
				if fe.File != f || fe.Line < 1 || fe.Col < 1 {
					t.Errorf("entry without file or position: %#v", fe)
				}
			}
			got := err.Error() + "\n"
			golden := f + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run go test -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s (run with -update after checking)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestErrorsSortedByPosition checks the order of a multi-error file.
func TestErrorsSortedByPosition(t *testing.T) {
	_, err := LoadFile("testdata/unknown-field.bad.yaml")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want ErrorList, got %v", err)
	}
	if len(list) < 5 {
		t.Fatalf("want every unknown field reported, got %d:\n%v", len(list), err)
	}
	for i := 1; i < len(list); i++ {
		a, b := list[i-1], list[i]
		if a.Line > b.Line || (a.Line == b.Line && a.Col > b.Col) {
			t.Errorf("not sorted: %v before %v", a, b)
		}
	}
}

func TestDefaults(t *testing.T) {
	e, err := LoadFile("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := e.Spec
	tests := []struct {
		name      string
		got, want any
	}{
		{"probeInterval", s.ProbeInterval, Duration(2 * time.Second)},
		{"target mode", s.Targets[0].Mode, BlastRadius{Kind: BlastAll}},
		{"partition direction", s.Faults[0].Partition.Direction, DirectionBoth},
		{"rto", s.Recovery.RTO, Duration(15 * time.Minute)},
		{"holdFor", s.Recovery.HoldFor, Duration(6 * time.Second)},
		{"timeout", s.Recovery.Timeout, Duration(15*time.Minute + 6*time.Second)},
		{"recovery probe count", len(s.Recovery.Probes), 1},
		{"recovery probe name", s.Recovery.Probes[0].Name, "up"},
		{"schedule", s.Schedule, (*Schedule)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if s.Recovery.Probes[0].Threshold == s.SteadyState.Probes[0].Threshold {
		t.Error("recovery probes share threshold pointers with steady state; want a deep copy")
	}

	sched, err := LoadFile("testdata/schedule.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := sched.Spec.Schedule.TimeZone; got != "UTC" {
		t.Errorf("schedule.timeZone default = %q, want UTC", got)
	}
	if got, want := sched.Spec.Recovery.HoldFor, Duration(15*time.Second); got != want {
		t.Errorf("holdFor = %v, want 3 x probeInterval = %v", got, want)
	}
	if got, want := sched.Spec.Recovery.Timeout, Duration(time.Minute+15*time.Second); got != want {
		t.Errorf("timeout = %v, want rto + holdFor = %v", got, want)
	}
}

func TestFullGoodValues(t *testing.T) {
	e, err := LoadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := e.Spec
	tests := []struct {
		name      string
		got, want any
	}{
		{"fixed mode", s.Targets[0].Mode, BlastRadius{Kind: BlastFixed, N: 2}},
		{"percent mode", s.Targets[1].Mode, BlastRadius{Kind: BlastPercent, Percent: 12.5}},
		{"one mode", s.Targets[2].Mode, BlastRadius{Kind: BlastOne}},
		{"v6 cidr", s.Faults[1].Partition.CIDRs[0].String(), "fd00::/8"},
		{"ports", len(s.Faults[0].Partition.Ports), 3},
		{"duration", s.Duration.D(), 90 * time.Minute},
		{"abort for 0s", s.AbortWhen[0].For, Duration(0)},
		{"negative threshold", *s.AbortWhen[1].Threshold, -1500.0},
		{"explicit holdFor kept", s.Recovery.HoldFor, Duration(time.Second)},
		{"explicit recovery probes kept", len(s.Recovery.Probes), 1},
		{"explicit recovery probe op", string(s.Recovery.Probes[0].Op), ">"},
		{"time zone", s.Schedule.TimeZone, "Europe/Berlin"},
		{"label with dots", e.Metadata.Labels["app.kubernetes.io/name"], "petclinic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestNewFaultValues checks the decoded and defaulted values of the
// latency, memory, exception, app-latency and effects examples.
func TestNewFaultValues(t *testing.T) {
	load := func(name string) *Experiment {
		t.Helper()
		e, err := LoadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	lat, mem, exc, app, eff := load("latency.good.yaml"), load("memory.good.yaml"),
		load("exception.good.yaml"), load("app-latency.good.yaml"), load("effects.good.yaml")
	l0, l1 := lat.Spec.Faults[0].Latency, lat.Spec.Faults[1].Latency
	x := exc.Spec.Faults[0].Exception
	tests := []struct {
		name      string
		got, want any
	}{
		{"latency cidr v6", l0.CIDRs[1].String(), "fd00:2::/32"},
		{"latency ports", len(l0.Ports), 2},
		{"latency delay", l0.Delay, Duration(200 * time.Millisecond)},
		{"latency jitter", l0.Jitter, Duration(50 * time.Millisecond)},
		{"latency correlation", l0.Correlation, 25.0},
		{"latency loss", l0.Loss, 2.5},
		{"latency rate 10mbit", l0.Rate, ByteRate(1_250_000)},
		{"latency interface", l0.Interface, "eth0"},
		{"latency rate in bytes", l1.Rate, ByteRate(1_500_000)},
		{"latency loss 100", l1.Loss, 100.0},
		{"latency target service", lat.Spec.Targets[1].Service, "api-gateway"},
		{"memory fraction", mem.Spec.Faults[0].Memory.Fraction, 0.9},
		{"memory ramp", mem.Spec.Faults[0].Memory.Ramp, Duration(30 * time.Second)},
		{"memory size", mem.Spec.Faults[1].Memory.Size, ByteSize(1536 << 20)},
		{"exception level", x.Level, 10},
		{"exception deterministic", x.Deterministic, true},
		{"exception type", x.Exception.Type, "org.springframework.dao.DataAccessResourceFailureException"},
		{"exception argument", x.Exception.Arguments[0], SpringExceptionArg{Type: "java.lang.String", Value: "chaos: database gone"}},
		{"exception watchers", strings.Join(x.Watchers, ","), "repository,restController"},
		{"exception level default", exc.Spec.Faults[1].Exception.Level, DefaultLevel},
		{"exception default has no exception", exc.Spec.Faults[1].Exception.Exception, (*SpringException)(nil)},
		{"app-latency level default", app.Spec.Faults[0].AppLatency.Level, 1},
		{"app-latency range", app.Spec.Faults[0].AppLatency.Range, LatencyRange{Start: Duration(time.Second), End: Duration(3 * time.Second)}},
		{"app-latency set level", eff.Spec.Faults[0].AppLatency.Level, 2},
		{"effects within", eff.Spec.Effects.Within, Duration(45 * time.Second)},
		{"effects probes", len(eff.Spec.Effects.Probes), 2},
		{"must hold during fault", eff.Spec.SteadyState.MustHoldDuringFault, true},
		{"no effects", app.Spec.Effects, (*Effects)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestLoadDirDuplicateNames(t *testing.T) {
	_, err := LoadDir("testdata/dupdir")
	want := `testdata/dupdir/b.yml:4:9: metadata.name: duplicate experiment name "same-name": also defined at testdata/dupdir/a.yaml:4:9`
	if err == nil || err.Error() != want {
		t.Fatalf("LoadDir error:\n got: %v\nwant: %s", err, want)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"minimal.good.yaml", "schedule.good.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, strings.Replace(name, ".good.yaml", ".yml", 1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	exps, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range exps {
		names = append(names, e.Metadata.Name)
	}
	if got, want := strings.Join(names, ","), "minimal,weekday-game-day"; got != want {
		t.Errorf("names = %s, want %s", got, want)
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadDir(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadFS(t *testing.T) {
	good, err := os.ReadFile("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr string
		want    int
	}{
		{"one good", fstest.MapFS{"lib/a.yaml": {Data: good}}, "", 1},
		{"ignores other files", fstest.MapFS{"lib/a.yaml": {Data: good}, "lib/notes.md": {Data: []byte("x")}}, "", 1},
		{"empty dir", fstest.MapFS{"lib/.keep": {}}, "", 0},
		{"bad file named by dir", fstest.MapFS{"lib/a.yaml": {Data: good}, "lib/b.yaml": {Data: []byte("kind: [\n")}}, "lib/b.yaml:", 0},
		{"duplicate", fstest.MapFS{"lib/a.yaml": {Data: good}, "lib/b.yaml": {Data: good}},
			`lib/b.yaml:5:9: metadata.name: duplicate experiment name "minimal": also defined at lib/a.yaml:5:9`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exps, err := LoadFS(tt.fsys, "lib")
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(exps) != tt.want {
				t.Errorf("got %d experiments, want %d", len(exps), tt.want)
			}
		})
	}
}

func TestValidateFiles(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
		want  []string // substrings, one per expected line, in order
	}{
		{"all good", []string{"testdata/minimal.good.yaml", "testdata/full.good.yaml"}, nil},
		{"none", nil, nil},
		{"bad and missing", []string{"testdata/bad-cron.bad.yaml", "testdata/nope.yaml", "testdata/minimal.good.yaml"}, []string{
			`testdata/bad-cron.bad.yaml:13:11: spec.schedule.cron: "61 * * * *" is not a cron schedule`,
			"testdata/nope.yaml: read experiment: open testdata/nope.yaml: no such file or directory",
		}},
		{"same file twice", []string{"testdata/minimal.good.yaml", "testdata/minimal.good.yaml"}, []string{
			`testdata/minimal.good.yaml:5:9: metadata.name: duplicate experiment name "minimal"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateFiles(tt.paths)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("ValidateFiles: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ValidateFiles = nil, want errors")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d lines, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
	if err := ValidateFiles([]string{"testdata/nope.yaml"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ValidateFiles(missing) = %v, want it to wrap fs.ErrNotExist", err)
	}
}

// TestExampleMessage pins the message format given in the design.
func TestExampleMessage(t *testing.T) {
	src := strings.Join([]string{
		"apiVersion: chaosd.io/v1alpha1",
		"kind: Experiment",
		"metadata: {name: x}",
		"spec:",
		"  targets: [{name: t, cluster: c1}]",
		"  duration: 30s",
		"  steadyState: {probes: [{name: p, query: up, op: '==', threshold: 1}]}",
		"  faults:",
		"    - name: f",
		"      kind: partition",
		"      target: t",
		"      partition:",
		"        cidrs:",
		"          - 10.1.0.0/16",
		"          - 10.1.0.5/16",
	}, "\n")
	_, err := Parse([]byte(src), "experiments/library/x.yaml")
	want := `experiments/library/x.yaml:15:13: spec.faults[0].partition.cidrs[1]: "10.1.0.5/16" has host bits set; did you mean 10.1.0.0/16?`
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}
