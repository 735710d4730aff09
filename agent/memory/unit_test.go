package memory

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/agent/agentapi"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    *agentapi.Memory
		err  string // substring; "" = valid
	}{
		{"size", &agentapi.Memory{SizeBytes: 1 << 20}, ""},
		{"fraction one", &agentapi.Memory{Fraction: 1, RampSeconds: 30}, ""},
		{"nested cgroup", &agentapi.Memory{Cgroup: "kubepods/pod1/c1", Fraction: 0.5}, ""},
		{"nil", nil, "memory: parameters missing"},
		{"neither", &agentapi.Memory{}, "memory: exactly one of sizeBytes and fraction"},
		{"both", &agentapi.Memory{SizeBytes: 1, Fraction: 0.5}, "memory: exactly one of sizeBytes and fraction"},
		{"fraction above one", &agentapi.Memory{Fraction: 1.01}, "memory.fraction: must be within (0, 1]"},
		{"fraction negative", &agentapi.Memory{Fraction: -0.1}, "memory.fraction: must be within (0, 1]"},
		{"fraction NaN", &agentapi.Memory{Fraction: math.NaN()}, "memory.fraction: must be within (0, 1]"},
		{"ramp negative", &agentapi.Memory{SizeBytes: 1, RampSeconds: -1}, "memory.rampSeconds: must be >= 0"},
		{"ramp infinite", &agentapi.Memory{SizeBytes: 1, RampSeconds: math.Inf(1)}, "memory.rampSeconds: must be >= 0"},
		{"absolute cgroup", &agentapi.Memory{SizeBytes: 1, Cgroup: "/kubepods"}, "memory.cgroup: must be relative"},
		{"dotdot", &agentapi.Memory{SizeBytes: 1, Cgroup: "a/../../etc"}, `memory.cgroup: must not contain ".."`},
		{"dotdot alone", &agentapi.Memory{SizeBytes: 1, Cgroup: ".."}, `memory.cgroup: must not contain ".."`},
		{"unclean", &agentapi.Memory{SizeBytes: 1, Cgroup: "a//b/"}, "memory.cgroup: must be a clean path"},
		{"dot", &agentapi.Memory{SizeBytes: 1, Cgroup: "./a"}, "memory.cgroup: must be a clean path"},
		{"newline", &agentapi.Memory{SizeBytes: 1, Cgroup: "a\nb"}, "memory.cgroup: invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.m)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestTargetBytes(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name            string
		m               agentapi.Memory
		limit, memTotal uint64
		want            uint64
		err             string
	}{
		{"size", agentapi.Memory{SizeBytes: 128 * mib}, 512 * mib, 1 << 34, 128 * mib, ""},
		{"size rounded down to pages", agentapi.Memory{SizeBytes: 10000}, 0, 1 << 34, 8192, ""},
		{"size below a page", agentapi.Memory{SizeBytes: 100}, 0, 1 << 34, 0, "memory.sizeBytes: must be at least one page"},
		{"size above the limit is allowed (OOM)", agentapi.Memory{SizeBytes: 1024 * mib}, 512 * mib, 1 << 34, 1024 * mib, ""},
		{"size above node memory", agentapi.Memory{SizeBytes: 1 << 35}, 0, 1 << 34, 0, "memory.sizeBytes: 34359738368 exceeds node memory"},
		{"fraction", agentapi.Memory{Fraction: 0.25}, 512 * mib, 1 << 34, 128 * mib, ""},
		{"fraction rounded", agentapi.Memory{Fraction: 1.0 / 3}, 3 * 4096 * 10, 1 << 34, 4096 * 10, ""},
		{"fraction below a page", agentapi.Memory{Fraction: 0.001}, 4096, 1 << 34, 0, "memory.fraction: 0.001 of 4096 bytes is less than one page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := targetBytes(&tc.m, tc.limit, tc.memTotal, 4096)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("targetBytes = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version int
		in      string
		want    uint64
		ok      bool
		err     bool
	}{
		{"v2 max", 2, "max\n", 0, false, false},
		{"v2 value", 2, "536870912\n", 512 << 20, true, false},
		{"v1 unlimited", 1, "9223372036854771712\n", 0, false, false},
		{"v1 value", 1, "536870912\n", 512 << 20, true, false},
		{"v1 max is not a v1 word", 1, "max", 0, false, true},
		{"garbage", 2, "lots", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseLimit(tc.version, tc.in)
			if (err != nil) != tc.err || got != tc.want || ok != tc.ok {
				t.Fatalf("parseLimit(%d, %q) = %d, %v, %v", tc.version, tc.in, got, ok, err)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tail := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21 22\n"
	for _, tc := range []struct {
		name, comm string
	}{
		{"plain", "(sleep)"},
		{"spaces and parens", "(a) b (c) d)"},
		{"only parens", "())))"},
		{"looks like fields", "(x) R 1 2 3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := parseStat([]byte("4242 " + tc.comm + tail))
			if err != nil || ps.StartTime != 987654 || ps.State != 'S' {
				t.Fatalf("parseStat = %+v, %v; want state S, start 987654", ps, err)
			}
		})
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S 1 2", "12 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 notanumber"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
	// The real thing: our own start time is stable.
	a, err1 := readStat("/proc", os.Getpid())
	b, err2 := readStat("/proc", os.Getpid())
	if err1 != nil || err2 != nil || a.StartTime == 0 || a.StartTime != b.StartTime {
		t.Fatalf("own stat: %+v %v, %+v %v", a, err1, b, err2)
	}
	if _, err := readStat("/proc", 1<<30); err != errGone {
		t.Fatalf("readStat of a missing PID = %v, want errGone", err)
	}
}

func TestParseMarker(t *testing.T) {
	cl := func(args ...string) []byte { return []byte(strings.Join(args, "\x00") + "\x00") }
	m, ok := parseMarker(cl("/usr/bin/chaosd", "agent-stressor", markerArg, ownerFlag+"node-1", faultIDFlag+"run1.mem", "--size=4096"))
	if !ok || m.Owner != "node-1" || m.FaultID != "run1.mem" {
		t.Fatalf("parseMarker = %+v, %v", m, ok)
	}
	for _, args := range [][]string{
		{"sleep", "60"},
		{"chaosd", faultIDFlag + "x"},         // no stressor marker
		{"chaosd", markerArg},                 // no fault ID
		{"grep", markerArg + "x", "--chaosd"}, // lookalike
	} {
		if _, ok := parseMarker(cl(args...)); ok {
			t.Errorf("parseMarker(%q) matched", args)
		}
	}
}

func TestParseMemTotalAndKeyed(t *testing.T) {
	n, err := parseMemTotal([]byte("MemFree: 1 kB\nMemTotal:       24683648 kB\n"))
	if err != nil || n != 24683648*1024 {
		t.Fatalf("parseMemTotal = %d, %v", n, err)
	}
	if _, err := parseMemTotal([]byte("MemFree: 1 kB\n")); err == nil {
		t.Fatal("parseMemTotal without MemTotal succeeded")
	}
	if v, ok := parseKeyed([]byte("low 0\nhigh 3\nmax 7\noom 2\noom_kill 1\n"), "oom_kill"); !ok || v != 1 {
		t.Fatalf("oom_kill = %d, %v", v, ok)
	}
	if v, ok := parseKeyed([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n"), "oom_kill"); !ok || v != 4 {
		t.Fatalf("v1 oom_kill = %d, %v", v, ok)
	}
}

// fakeTree writes files (path → content) under a temp dir.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetectAndLimitsOnFakeTrees(t *testing.T) {
	const mib = 1 << 20
	t.Run("v2", func(t *testing.T) {
		root := fakeTree(t, map[string]string{
			"cgroup.controllers":               "cpu memory pids",
			"cgroup.subtree_control":           "memory",
			"cgroup.procs":                     "",
			"pods/memory.max":                  "1073741824",
			"pods/cgroup.subtree_control":      "memory",
			"pods/p1/memory.max":               "max",
			"pods/p1/cgroup.subtree_control":   "",
			"pods/p1/c/memory.max":             "2147483648",
			"pods/p1/c/cgroup.subtree_control": "",
			"nomem/cgroup.subtree_control":     "",
		})
		cg, err := detectCgroup(root)
		if err != nil || cg.Version != 2 {
			t.Fatalf("detect = %+v, %v", cg, err)
		}
		for rel, want := range map[string]uint64{"pods/p1/c": 1024 * mib, "pods/p1": 1024 * mib, "pods": 1024 * mib, "": 4096 * mib} {
			got, src, err := cg.effectiveLimit(rel, 4096*mib)
			if err != nil || got != want {
				t.Errorf("effectiveLimit(%q) = %d (%s), %v; want %d", rel, got, src, err, want)
			}
		}
		if err := cg.checkTarget("pods/p1/c"); err != nil {
			t.Errorf("leaf: %v", err)
		}
		for rel, want := range map[string]string{
			"pods":    "no-internal-processes rule",
			"nomem":   "has no memory controller",
			"missing": `memory.cgroup: "missing" does not exist`,
		} {
			if err := cg.checkTarget(rel); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("checkTarget(%q) = %v, want %q", rel, err, want)
			}
		}
	})
	t.Run("v2 without memory delegated", func(t *testing.T) {
		root := fakeTree(t, map[string]string{"cgroup.controllers": "memory", "cgroup.subtree_control": "cpu", "cgroup.procs": ""})
		cg, _ := detectCgroup(root)
		if err := cg.probe(); err == nil || !strings.Contains(err.Error(), "add +memory to cgroup.subtree_control") {
			t.Fatalf("probe = %v", err)
		}
	})
	t.Run("v1", func(t *testing.T) {
		root := fakeTree(t, map[string]string{
			"memory.limit_in_bytes":     "9223372036854771712",
			"cgroup.procs":              "",
			"a/memory.limit_in_bytes":   "9223372036854771712",
			"a/b/memory.limit_in_bytes": "536870912",
			"a/b/memory.usage_in_bytes": "1234",
			"a/b/memory.oom_control":    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		})
		cg, err := detectCgroup(root)
		if err != nil || cg.Version != 1 {
			t.Fatalf("detect = %+v, %v", cg, err)
		}
		if got, _, _ := cg.effectiveLimit("a", 4096*mib); got != 4096*mib {
			t.Errorf("unlimited v1 cgroup: limit %d, want MemTotal", got)
		}
		if got, src, _ := cg.effectiveLimit("a/b", 4096*mib); got != 512*mib || src != "cgroup a/b" {
			t.Errorf("limit %d from %s", got, src)
		}
		if got, src, _ := cg.effectiveLimit("a/b", 256*mib); got != 256*mib || src != "node" {
			t.Errorf("limit above MemTotal: %d from %s, want MemTotal", got, src)
		}
		if u, err := cg.Usage("a/b"); err != nil || u != 1234 {
			t.Errorf("usage %d, %v", u, err)
		}
		if n, ok := cg.oomKills("a/b"); !ok || n != 2 {
			t.Errorf("oomKills %d %v", n, ok)
		}
	})
	t.Run("neither", func(t *testing.T) {
		if _, err := detectCgroup(t.TempDir()); err == nil || !strings.Contains(err.Error(), "neither a cgroup v2 root") {
			t.Fatalf("detect = %v", err)
		}
	})
}

func TestPrepareRefusesWithoutCgroups(t *testing.T) {
	d, err := New(Config{CgroupRoot: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Probe(context.Background()); err == nil {
		t.Fatal("Probe succeeded without a cgroup hierarchy")
	}
	if _, err := d.Prepare(context.Background(), ptr(agentapi.Fault{ID: "f", Kind: "memory", Memory: &agentapi.Memory{SizeBytes: 1 << 20}})); err == nil {
		t.Fatal("Prepare succeeded without a cgroup hierarchy")
	}
	if _, err := d.Prepare(context.Background(), ptr(agentapi.Fault{ID: "f", Kind: "memory", Memory: &agentapi.Memory{Fraction: 2}})); err == nil || !strings.HasPrefix(err.Error(), "memory.fraction") {
		t.Fatalf("validation error first: %v", err)
	}
	if d.Kind() != agentapi.KindMemory {
		t.Fatal(d.Kind())
	}
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
