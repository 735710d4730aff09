package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chaosd/chaosd/api"
)

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(runAsChaosctl())
	}
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of clients whose server has closed
		// wind down on their own.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

const testToken = "s3cret"

// result is one chaosctl invocation.
type result struct {
	code           int
	stdout, stderr string
}

// invocation configures one run of chaosctl against buffers.
type invocation struct {
	env map[string]string
	tty bool
	ctx context.Context
}

func (in invocation) run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr})
	a.lookupEnv = func(k string) (string, bool) { v, ok := in.env[k]; return v, ok }
	a.isTerminal = func(io.Writer) bool { return in.tty }
	ctx := in.ctx
	if ctx == nil {
		ctx = t.Context()
	}
	code := a.run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// chaosctl runs chaosctl with the given args and no environment.
func chaosctl(t *testing.T, args ...string) result {
	t.Helper()
	return invocation{}.run(t, args...)
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	conn := []string{"--endpoint", ep, "--token", testToken}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + closed.Addr().String()
	closed.Close()

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // substring
	}{
		{"pass", []string{"run", "exp-pass", "--wait"}, ExitOK, ""},
		{"fail", []string{"run", "exp-fail", "--wait"}, ExitFailed, "FAIL — not recovered"},
		{"aborted", []string{"run", "exp-aborted", "--wait"}, ExitFailed, "ABORTED"},
		{"error", []string{"run", "exp-error", "--wait"}, ExitTool, "ERROR — agent"},
		{"interrupted run", []string{"run", "exp-interrupted", "--wait"}, ExitTool, "interrupted"},
		{"dry run passes", []string{"run", "exp-pass", "--wait", "--dry-run"}, ExitOK, "(dry run)"},
		{"no wait", []string{"run", "exp-fail"}, ExitOK, ""},
		{"unknown experiment", []string{"run", "nope"}, ExitUsage, `unknown experiment "nope"`},
		{"unknown run", []string{"describe", "run", "r-9999"}, ExitUsage, `unknown run "r-9999"`},
		{"bad flag", []string{"run", "exp-pass", "--frobnicate"}, ExitUsage, "unknown flag: --frobnicate"},
		{"missing arg", []string{"run"}, ExitUsage, "exactly one experiment NAME"},
		{"too many args", []string{"abort", "a", "b"}, ExitUsage, "exactly one run ID"},
		{"invalid output", []string{"get", "runs", "-o", "xml"}, ExitUsage, `invalid output format "xml": use text, json or yaml`},
		{"unknown verb", []string{"frob"}, ExitUsage, `unknown command "frob"`},
		{"unknown resource", []string{"get", "pods"}, ExitUsage, `unknown resource "pods"`},
		{"get without resource", []string{"get"}, ExitUsage, "get needs a resource"},
		{"poll too short", []string{"run", "exp-pass", "--poll", "1ms"}, ExitUsage, "--poll"},
		{"endpoint and socket", []string{"get", "runs", "--socket", "/x.sock"}, ExitUsage, "exclusive"},
		{"bad scheme", []string{"get", "runs", "--endpoint", "ftp://x"}, ExitUsage, "scheme"},
		{"get runs", []string{"get", "runs"}, ExitOK, ""},
		{"help", []string{"--help"}, ExitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Global flags first, so a case's own flags win.
			args := append(append([]string{}, conn...), tt.args...)
			if tt.args[0] == "run" && !slices.Contains(tt.args, "--poll") {
				args = append(args, "--poll", "100ms")
			}
			got := chaosctl(t, args...)
			if got.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, tt.wantCode, got.stdout, got.stderr)
			}
			if !strings.Contains(got.stderr, tt.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantStderr, got.stderr)
			}
			if got.code != ExitOK && strings.Count(got.stderr, "chaosctl: ") != 1 {
				t.Errorf("want the error printed once with the chaosctl: prefix:\n%s", got.stderr)
			}
		})
	}

	// Tool failures, each against its own server state.
	t.Run("unreachable", func(t *testing.T) {
		got := chaosctl(t, "get", "runs", "--endpoint", unreachable, "--token", "x")
		if got.code != ExitTool || !strings.Contains(got.stderr, "chaosd unreachable") {
			t.Errorf("code %d, stderr:\n%s", got.code, got.stderr)
		}
	})
	t.Run("unreachable socket", func(t *testing.T) {
		got := chaosctl(t, "run", "exp-pass", "--socket", filepath.Join(t.TempDir(), "none.sock"))
		if got.code != ExitTool || !strings.Contains(got.stderr, "chaosd unreachable") {
			t.Errorf("code %d, stderr:\n%s", got.code, got.stderr)
		}
	})
	t.Run("401 wrong token", func(t *testing.T) {
		got := chaosctl(t, "run", "exp-pass", "--endpoint", ep, "--token", "wrong")
		if got.code != ExitTool || !strings.Contains(got.stderr, "401") || !strings.Contains(got.stderr, "check the token") {
			t.Errorf("code %d, stderr:\n%s", got.code, got.stderr)
		}
	})
	for _, tc := range []struct {
		status, want int
	}{{400, ExitUsage}, {403, ExitTool}, {409, ExitTool}, {500, ExitTool}, {503, ExitTool}} {
		t.Run("status "+strconv.Itoa(tc.status), func(t *testing.T) {
			g := newFakeChaosd(t, testToken)
			g.status = tc.status
			got := chaosctl(t, "get", "experiments", "--endpoint", g.serveTCP(), "--token", testToken)
			if got.code != tc.want {
				t.Errorf("code %d, want %d; stderr:\n%s", got.code, tc.want, got.stderr)
			}
		})
	}
}

func TestRunWaitJSON(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	got := chaosctl(t, "run", "exp-pass", "--wait", "-o", "json", "--poll", "100ms",
		"--endpoint", f.serveTCP(), "--token", testToken)
	if got.code != ExitOK {
		t.Fatalf("code %d, stderr:\n%s", got.code, got.stderr)
	}
	// stdout holds exactly one JSON value: the run.
	dec := json.NewDecoder(strings.NewReader(got.stdout))
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, got.stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", got.stdout)
	}
	if doc["verdict"] != "pass" || doc["id"] != "r-0001" {
		t.Errorf("verdict/id = %v/%v", doc["verdict"], doc["id"])
	}
	times, _ := doc["times"].(map[string]any)
	for _, k := range []string{"started", "injected", "firstImpact", "reverted", "recovered"} {
		s, _ := times[k].(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("times.%s = %q: not RFC 3339: %v", k, times[k], err)
		}
	}
	rto, _ := doc["rto"].(map[string]any)
	if rto["measuredSeconds"] != 42.0 || rto["targetSeconds"] != 900.0 || rto["resolutionSeconds"] != 1.0 {
		t.Errorf("rto = %v", rto)
	}
	var run api.Run
	if err := json.Unmarshal([]byte(got.stdout), &run); err != nil || len(run.Events) == 0 {
		t.Errorf("stdout is not a full api.Run (err %v, events %d)", err, len(run.Events))
	}
}

func TestRunNoWaitPrintsID(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	got := chaosctl(t, "run", "exp-pass", "--endpoint", ep, "--token", testToken)
	if got.code != ExitOK || got.stdout != "r-0001\n" {
		t.Errorf("code %d stdout %q stderr %q", got.code, got.stdout, got.stderr)
	}
	got = chaosctl(t, "run", "exp-pass", "-o", "json", "--endpoint", ep, "--token", testToken)
	var run api.Run
	if err := json.Unmarshal([]byte(got.stdout), &run); err != nil || run.ID != "r-0002" {
		t.Errorf("stdout %q: %v", got.stdout, err)
	}
}

func TestProgressPlain(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	got := chaosctl(t, "run", "exp-fail", "--wait", "--poll", "100ms", "--endpoint", f.serveTCP(), "--token", testToken)
	if got.code != ExitFailed {
		t.Fatalf("code %d, stderr:\n%s", got.code, got.stderr)
	}
	if strings.Contains(got.stderr, "\x1b[") {
		t.Errorf("plain progress holds terminal escapes:\n%q", got.stderr)
	}
	want := []string{
		"run r-0001 of exp-fail started",
		"phase pending", "phase preflight", "phase steady-state",
		"probes gateway-success=0.998 ok\n",
		"phase injecting", "phase observing",
		"probes gateway-success=0.998 ok, gateway-to-visits-success=0.12 FAIL\n",
		"phase reverting", "phase recovering", "phase done  verdict FAIL",
	}
	last := -1
	for _, w := range want {
		i := strings.Index(got.stderr[last+1:], w)
		if i >= 0 {
			i += last + 1
		}
		if i < 0 {
			t.Errorf("progress lacks %q (after the previous line):\n%s", w, got.stderr)
			continue
		}
		last = i
	}
	// One line per phase change: observing is seen twice but printed once.
	if n := strings.Count(got.stderr, "phase observing"); n != 1 {
		t.Errorf("phase observing printed %d times:\n%s", n, got.stderr)
	}
	// The report is on stdout, not mixed with progress.
	if !strings.HasPrefix(got.stdout, "Experiment  exp-fail\n") || strings.Contains(got.stdout, "phase ") {
		t.Errorf("stdout is not just the report:\n%s", got.stdout)
	}
}

func TestProgressTTY(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	got := invocation{tty: true}.run(t, "run", "exp-pass", "--wait", "--poll", "100ms",
		"--endpoint", f.serveTCP(), "--token", testToken)
	if got.code != ExitOK {
		t.Fatalf("code %d, stderr:\n%s", got.code, got.stderr)
	}
	for _, w := range []string{"phase observing", "✗ gateway-to-visits-success  0.12 FAIL", "\x1b[3A\r\x1b[J"} {
		if !strings.Contains(got.stderr, w) {
			t.Errorf("tty progress lacks %q:\n%q", w, got.stderr)
		}
	}
}

func TestWaitToleratesTransientErrors(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	f.failGets = 2
	got := chaosctl(t, "run", "exp-pass", "--wait", "--poll", "100ms", "--endpoint", f.serveTCP(), "--token", testToken)
	if got.code != ExitOK || strings.Count(got.stderr, "warning: poll failed") != 2 {
		t.Errorf("code %d, stderr:\n%s", got.code, got.stderr)
	}
}

func TestCtrlCStopsWaitingWithoutAbort(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(500*time.Millisecond, cancel)
	got := invocation{ctx: ctx}.run(t, "run", "exp-forever", "--wait", "--poll", "100ms",
		"--endpoint", f.serveTCP(), "--token", testToken)
	if got.code != ExitTool {
		t.Errorf("code %d, want %d", got.code, ExitTool)
	}
	if !strings.Contains(got.stderr, "abort it:  chaosctl abort r-0001") {
		t.Errorf("stderr does not say how to abort:\n%s", got.stderr)
	}
	if got.stdout != "" {
		t.Errorf("stdout = %q, want nothing (no verdict)", got.stdout)
	}
	if a := f.abortCalls(); len(a) != 0 {
		t.Errorf("chaosctl aborted %v on Ctrl-C; it must only stop waiting", a)
	}
}

func TestAbort(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	conn := []string{"--endpoint", ep, "--token", testToken}
	if got := chaosctl(t, append([]string{"run", "exp-forever"}, conn...)...); got.code != ExitOK {
		t.Fatalf("start: %+v", got)
	}
	got := chaosctl(t, append([]string{"abort", "r-0001"}, conn...)...)
	if got.code != ExitOK || !strings.Contains(got.stdout, "run r-0001: abort requested") {
		t.Fatalf("abort: %+v", got)
	}
	got = chaosctl(t, append([]string{"describe", "run", "r-0001"}, conn...)...)
	if got.code != ExitOK || !strings.Contains(got.stdout, "Verdict     ABORTED — aborted by chaosctl abort") {
		t.Errorf("describe after abort: %+v", got)
	}
}

func TestHalt(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	conn := []string{"--endpoint", ep, "--token", testToken}
	if got := chaosctl(t, append([]string{"run", "exp-forever"}, conn...)...); got.code != ExitOK {
		t.Fatalf("start: %+v", got)
	}
	got := chaosctl(t, append([]string{"halt"}, conn...)...)
	if got.code != ExitOK || !strings.Contains(got.stdout, "aborted 1 run(s)") || !strings.Contains(got.stdout, "c1/c1-n1: 1 fault(s) reverted") {
		t.Fatalf("halt: %+v", got)
	}
	// An agent that could not be halted is the tool failing its job.
	got = chaosctl(t, append([]string{"halt", "--cluster", "c2", "-o", "json"}, conn...)...)
	if got.code != ExitTool || !strings.Contains(got.stdout, `"error": "agent unreachable"`) || !strings.Contains(got.stderr, "could not be halted") {
		t.Fatalf("halt with an unreachable agent: %+v", got)
	}
}

func TestGetAgents(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	got := chaosctl(t, "get", "agents", "--endpoint", ep, "--token", testToken)
	for _, want := range []string{"c1-n1", "ready", "latency", "UNREACHABLE", "c1/c1-n1 cannot run latency: netem qdisc not supported"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("get agents lacks %q:\n%s", want, got.stdout)
		}
	}
	if got.code != ExitOK {
		t.Errorf("exit %d", got.code)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	conn := []string{"--endpoint", ep, "--token", testToken}
	for _, name := range []string{"exp-pass", "exp-fail"} {
		if got := chaosctl(t, append([]string{"run", name, "--wait", "--poll", "100ms"}, conn...)...); got.code == ExitTool {
			t.Fatalf("run %s: %+v", name, got)
		}
	}
	got := chaosctl(t, append([]string{"get", "runs"}, conn...)...)
	lines := strings.Split(strings.TrimSpace(got.stdout), "\n")
	if got.code != ExitOK || len(lines) != 3 {
		t.Fatalf("get runs: %+v", got)
	}
	for i, want := range [][]string{
		{"ID", "EXPERIMENT", "TRIGGER", "PHASE", "VERDICT", "RTO", "AGE"},
		{"r-0002", "exp-fail", "manual", "done", "fail", "-"},
		{"r-0001", "exp-pass", "manual", "done", "pass", "42.0s"},
	} {
		if f := strings.Fields(lines[i]); len(f) < len(want) || strings.Join(f[:len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want fields %v", i, lines[i], want)
		}
	}

	got = chaosctl(t, append([]string{"get", "experiments"}, conn...)...)
	for _, w := range []string{"NAME", "SCHEDULE", "NEXT RUN", "SOURCE",
		"0 10 * * 2 (Europe/Berlin)", "2026-12-01T09:00:00Z", "/etc/chaosd/experiments/exp-fail.yaml"} {
		if !strings.Contains(got.stdout, w) {
			t.Errorf("get experiments lacks %q:\n%s", w, got.stdout)
		}
	}
	got = chaosctl(t, append([]string{"get", "runs", "-o", "json"}, conn...)...)
	var runs []api.Run
	if err := json.Unmarshal([]byte(got.stdout), &runs); err != nil || len(runs) != 2 {
		t.Errorf("get runs -o json: %v\n%s", err, got.stdout)
	}
}

func TestEndpointAndTokenResolution(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	sock := f.serveUnix()
	tokenFile := filepath.Join(filepath.Dir(sock), "token")
	otherToken := filepath.Join(t.TempDir(), "tok")
	for _, p := range []string{tokenFile, otherToken} {
		if err := os.WriteFile(p, []byte(testToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"socket flag, token file next to it", nil, []string{"--socket", sock}, ExitOK},
		{"socket env", map[string]string{envSocket: sock}, nil, ExitOK},
		{"endpoint env", map[string]string{envEndpoint: "unix://" + sock}, nil, ExitOK},
		{"endpoint flag beats env", map[string]string{envEndpoint: "unix:///nowhere.sock"}, []string{"--endpoint", "unix://" + sock}, ExitOK},
		{"token env beats default file", map[string]string{envSocket: sock, envToken: "wrong"}, nil, ExitTool},
		{"token flag beats env", map[string]string{envSocket: sock, envToken: "wrong"}, []string{"--token", testToken}, ExitOK},
		{"token file env", map[string]string{envEndpoint: "unix://" + sock, envTokenFile: otherToken}, nil, ExitOK},
		{"token file flag", nil, []string{"--socket", sock, "--token-file", otherToken}, ExitOK},
		{"missing token file", nil, []string{"--socket", sock, "--token-file", "/nonexistent/token"}, ExitUsage},
		{"token and token file", nil, []string{"--socket", sock, "--token", "a", "--token-file", otherToken}, ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := invocation{env: tt.env}.run(t, append([]string{"get", "experiments"}, tt.args...)...)
			if got.code != tt.want {
				t.Errorf("code %d, want %d; stderr:\n%s", got.code, tt.want, got.stderr)
			}
		})
	}

	t.Run("no token explains why", func(t *testing.T) {
		g := newFakeChaosd(t, testToken)
		got := chaosctl(t, "get", "runs", "--socket", g.serveUnix())
		if got.code != ExitTool || !strings.Contains(got.stderr, "no token sent") {
			t.Errorf("code %d, stderr:\n%s", got.code, got.stderr)
		}
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("../experiments/library/partition-c1-c2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodFile := write("good/partition.yaml", string(good))
	badFile := write("bad/broken.yaml", "apiVersion: chaosd.io/v1alpha1\nkind: Experiment\nmetadata:\n  name: broken\nspec:\n  duration: soon\n  bogusField: 1\n")
	emptyDir := filepath.Join(dir, "empty")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		want       int
		wantOut    []string
		wantErrOut []string
	}{
		{"good file", []string{"-f", goodFile}, ExitOK, []string{goodFile + ": valid"}, nil},
		{"good directory", []string{filepath.Dir(goodFile)}, ExitOK, []string{goodFile + ": valid"}, nil},
		{"bad file", []string{"-f", badFile}, ExitUsage, nil, []string{badFile + ":", "1 of 1 experiment file invalid"}},
		{"good and bad", []string{"-f", goodFile, "-f", badFile}, ExitUsage,
			[]string{goodFile + ": valid"}, []string{badFile + ":6:", "1 of 2 experiment files invalid"}},
		{"missing file", []string{"-f", filepath.Join(dir, "nope.yaml")}, ExitUsage, nil, []string{"nope.yaml"}},
		{"empty directory", []string{emptyDir}, ExitUsage, nil, []string{"holds no *.yaml"}},
		{"no file", nil, ExitUsage, nil, []string{"at least one file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chaosctl(t, append([]string{"validate"}, tt.args...)...)
			if got.code != tt.want {
				t.Errorf("code %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, tt.want, got.stdout, got.stderr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(got.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, got.stdout)
				}
			}
			for _, w := range tt.wantErrOut {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
				}
			}
			if strings.Contains(got.stdout, badFile+": valid") {
				t.Errorf("bad file reported valid:\n%s", got.stdout)
			}
		})
	}
}

func TestRunJUnitForCIGates(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	conn := []string{"--endpoint", ep, "--token", testToken}
	for _, tc := range []struct {
		exp      string
		code     int
		failures string
	}{
		{"exp-pass", ExitOK, `failures="0"`},
		{"exp-fail", ExitFailed, `failures="1"`},
	} {
		got := chaosctl(t, append([]string{"run", tc.exp, "--wait", "--poll", "100ms", "-o", "junit"}, conn...)...)
		if got.code != tc.code || !strings.HasPrefix(got.stdout, "<?xml") || !strings.Contains(got.stdout, "<testsuites>") ||
			!strings.Contains(got.stdout, tc.failures) {
			t.Errorf("%s -o junit: %+v", tc.exp, got)
		}
	}
	if got := chaosctl(t, append([]string{"run", "exp-pass", "-o", "junit"}, conn...)...); got.code != ExitUsage {
		t.Errorf("-o junit without --wait: exit %d, want usage", got.code)
	}
	if got := chaosctl(t, append([]string{"describe", "run", "r-0001", "-o", "junit"}, conn...)...); got.code != ExitOK || !strings.Contains(got.stdout, "<testsuite ") {
		t.Errorf("describe -o junit: %+v", got)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	conn := []string{"--endpoint", ep, "--token", testToken}
	if got := chaosctl(t, append([]string{"run", "exp-pass", "--wait", "--poll", "100ms"}, conn...)...); got.code != ExitOK {
		t.Fatalf("run: %+v", got)
	}
	// The curves chaosd gives for r-0001: the probe failing during the fault.
	tl := api.Timeline{RunID: "r-0001", Start: t0.Add(-30 * time.Second), End: t0.Add(100 * time.Second), StepSeconds: 1}
	s := api.ProbeSeries{Name: "gateway-success", Query: "sum(rate(ok[1m]))/sum(rate(all[1m]))", Condition: ">= 0.99",
		Op: ">=", Threshold: ptr(0.99), Phases: []api.Phase{api.PhaseSteadyState, api.PhaseRecovering}}
	for sec := -30; sec <= 100; sec++ {
		v := 1.0
		if sec >= 22 && sec < 64 {
			v = 0.2
		}
		s.Points = append(s.Points, api.Point{Time: t0.Add(time.Duration(sec) * time.Second), Value: v, OK: v >= 0.99})
	}
	tl.Series = []api.ProbeSeries{s}
	f.mu.Lock()
	f.timelines = map[string]api.Timeline{"r-0001": tl}
	f.mu.Unlock()

	t.Run("html", func(t *testing.T) {
		got := chaosctl(t, append([]string{"report", "r-0001", "-o", "html"}, conn...)...)
		if got.code != ExitOK || got.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", got.code, got.stderr)
		}
		for _, want := range []string{"<!DOCTYPE html>", `id="verdict">PASS<`, "42.0s", `data-probe="gateway-success"`,
			`<path class="curve fail"`, `<rect class="window"`, "Verdict criteria"} {
			if !strings.Contains(got.stdout, want) {
				t.Errorf("HTML report lacks %q", want)
			}
		}
	})
	t.Run("markdown is the default", func(t *testing.T) {
		got := chaosctl(t, append([]string{"report", "r-0001"}, conn...)...)
		if got.code != ExitOK || !strings.HasPrefix(got.stdout, "# exp-pass: PASS\n") ||
			!strings.Contains(got.stdout, "| gateway-success | `>= 0.99` |") || !strings.Contains(got.stdout, "## Verdict criteria") {
			t.Errorf("exit %d\n%s\n%s", got.code, got.stdout, got.stderr)
		}
	})
	t.Run("without Prometheus: from the record, saying why", func(t *testing.T) {
		if got := chaosctl(t, append([]string{"run", "exp-fail", "--wait", "--poll", "100ms"}, conn...)...); got.code != ExitFailed {
			t.Fatalf("run: %+v", got)
		}
		got := chaosctl(t, append([]string{"report", "r-0002", "-o", "html"}, conn...)...)
		if got.code != ExitOK || !strings.Contains(got.stdout, `id="verdict">FAIL<`) ||
			!strings.Contains(got.stdout, "probe curves unavailable: prometheus unreachable") ||
			!strings.Contains(got.stderr, "warning: probe curves unavailable") {
			t.Errorf("exit %d, stderr:\n%s", got.code, got.stderr)
		}
	})
	t.Run("chaosd without the timeline", func(t *testing.T) {
		f2 := newFakeChaosd(t, testToken)
		ep2 := f2.serveTCP()
		f2.timelineStatus = 404
		conn2 := []string{"--endpoint", ep2, "--token", testToken}
		if got := chaosctl(t, append([]string{"run", "exp-pass"}, conn2...)...); got.code != ExitOK {
			t.Fatalf("run: %+v", got)
		}
		got := chaosctl(t, append([]string{"report", "r-0001", "-o", "md"}, conn2...)...)
		if got.code != ExitOK || !strings.Contains(got.stdout, "_probe curves unavailable: chaosd could not give the run's timeline") ||
			!strings.Contains(got.stderr, "chaosctl: warning: probe curves unavailable") {
			t.Errorf("exit %d\n%s\n%s", got.code, got.stdout, got.stderr)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad format", []string{"report", "r-0001", "-o", "pdf"}, ExitUsage, `invalid output format "pdf": use html or md`},
		{"no ID", []string{"report"}, ExitUsage, "exactly one run ID"},
		{"unknown run", []string{"report", "r-9999"}, ExitUsage, `unknown run "r-9999"`},
		{"wrong token", []string{"report", "r-0001", "--token", "nope"}, ExitTool, "401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--endpoint", ep, "--token", testToken}, tc.args...)
			got := chaosctl(t, args...)
			if got.code != tc.code || !strings.Contains(got.stderr, tc.want) || got.stdout != "" {
				t.Errorf("exit %d (want %d), stdout %q, stderr:\n%s", got.code, tc.code, got.stdout, got.stderr)
			}
		})
	}
	t.Run("describe points to it", func(t *testing.T) {
		got := chaosctl(t, append([]string{"describe", "run", "r-0001"}, conn...)...)
		if got.code != ExitOK || !strings.HasSuffix(got.stdout, "\nReport      chaosctl report r-0001 -o html > r-0001.html\n") {
			t.Errorf("describe:\n%s", got.stdout)
		}
		if got := chaosctl(t, append([]string{"describe", "run", "r-0001", "-o", "json"}, conn...)...); strings.Contains(got.stdout, "chaosctl report") {
			t.Errorf("describe -o json must print the record only:\n%s", got.stdout)
		}
	})
}
