package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
)

// adHocExperiment is a valid experiment file that is not in the fake's
// library.
const adHocExperiment = `# my own experiment
apiVersion: chaosd.io/v1alpha1
kind: Experiment
metadata:
  name: %s
spec:
  targets:
    - name: c1-nodes
      cluster: c1
  faults:
    - name: cut
      kind: partition
      target: c1-nodes
      partition:
        cidrs: [10.1.0.0/16]
  duration: 30s
  steadyState:
    probes:
      - name: healthy
        query: min(up)
        op: "=="
        threshold: 1
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunAdHocFile: run -f sends the whole file, chaosd runs it, the
// record keeps it byte for byte and says it was ad hoc.
func TestRunAdHocFile(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	body := fmt.Sprintf(adHocExperiment, "my-cut")
	file := writeFile(t, "my-cut.yaml", body)

	got := chaosctl(t, append(conn, "run", "-f", file, "--wait", "--poll", "100ms")...)
	if got.code != ExitOK || !strings.Contains(got.stdout, "PASS") {
		t.Fatalf("run -f --wait: exit %d\nstdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr)
	}
	if len(f.adHoc) != 1 || f.adHoc[0].Spec != body || f.adHoc[0].File != file || f.adHoc[0].Experiment != "" {
		t.Fatalf("chaosd got %+v, want the file's text and name", f.adHoc)
	}
	got = chaosctl(t, append(conn, "describe", "run", "r-0001", "-o", "yaml")...)
	var run api.Run
	if err := yaml.UnmarshalStrict([]byte(got.stdout), &run); err != nil || got.code != ExitOK {
		t.Fatalf("describe run -o yaml: exit %d, %v\n%s", got.code, err, got.stdout)
	}
	if run.AdHoc == nil || run.AdHoc.Spec != body || run.Experiment != "my-cut" {
		t.Errorf("record %+v: want the ad hoc spec kept", run.AdHoc)
	}
	got = chaosctl(t, append(conn, "get", "runs")...)
	if !strings.Contains(got.stdout, "my-cut (ad hoc)") {
		t.Errorf("get runs does not say the run was ad hoc:\n%s", got.stdout)
	}
}

// TestRunAdHocInvalidFileNeverSent: a bad file gets exactly validate's
// errors and exit code, and chaosd never hears of it.
func TestRunAdHocInvalidFileNeverSent(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	bad := writeFile(t, "bad.yaml", strings.Replace(fmt.Sprintf(adHocExperiment, "my-cut"), "10.1.0.0/16", "10.1.0.5/16", 1)+"  frobnicate: 1\n")

	run := chaosctl(t, append(conn, "run", "-f", bad, "--wait")...)
	val := chaosctl(t, "validate", "-f", bad)
	if run.code != ExitUsage || val.code != ExitUsage {
		t.Fatalf("exit codes run %d, validate %d; want %d", run.code, val.code, ExitUsage)
	}
	if run.stderr != val.stderr || run.stdout != "" {
		t.Errorf("run -f stderr differs from validate's:\n--- run\n%s--- validate\n%s", run.stderr, val.stderr)
	}
	for _, want := range []string{bad + ":15:", "spec.faults[0].partition.cidrs[0]", "frobnicate"} {
		if !strings.Contains(run.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, run.stderr)
		}
	}
	if len(f.adHoc) != 0 || len(f.order) != 0 {
		t.Errorf("chaosd got a run of an invalid file: %+v", f.adHoc)
	}
}

// TestRunAdHocRefusals: chaosd's refusals keep today's exit codes: a
// name of the library is the spec's problem (2), a credential without
// scope adhoc is the tool's (3).
func TestRunAdHocRefusals(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	var st httpapi.StaticTokens
	st.Add("runner", httpapi.ScopeRun, "token file run")
	st.Add("adhoc", httpapi.ScopeAdHoc, "token file adhoc")
	f.auth = &st
	ep := f.serveTCP()
	for _, tc := range []struct {
		name, token, expName string
		code                 int
		want                 string
	}{
		{"library name", testToken, "exp-pass", ExitUsage, `metadata.name: "exp-pass" is an experiment of chaosd's library`},
		{"run scope", "runner", "mine", ExitTool, `needs scope "adhoc"; token file run may not (its scope is run)`},
		{"adhoc scope", "adhoc", "mine", ExitOK, ""},
		{"both name and file", testToken, "", ExitUsage, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "e.yaml", fmt.Sprintf(adHocExperiment, tc.expName))
			args := []string{"--endpoint", ep, "--token", tc.token, "run", "-f", file}
			if tc.expName == "" {
				args = append(args, "exp-pass")
			}
			got := chaosctl(t, args...)
			if got.code != tc.code || !strings.Contains(got.stderr, tc.want) {
				t.Errorf("exit %d (want %d), stderr:\n%s", got.code, tc.code, got.stderr)
			}
		})
	}
}

// TestGetRunsFilters: --selector, --since and --limit go to chaosd as
// query parameters and the CLI shows what it kept; bad values are
// refused before anything is sent.
func TestGetRunsFilters(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	now := time.Now()
	rec := func(id, exp string, v api.Verdict, trig api.Trigger, ago time.Duration) {
		f.addRecord(api.Run{ID: id, Experiment: exp, Verdict: v, Trigger: trig, Phase: api.PhaseDone, CreatedAt: now.Add(-ago)})
	}
	rec("r-old", "cut", api.VerdictFail, api.TriggerSchedule, 72*time.Hour)
	rec("r-a", "cut", api.VerdictPass, api.TriggerManual, 3*time.Hour)
	rec("r-b", "cut", api.VerdictFail, api.TriggerSchedule, 2*time.Hour)
	rec("r-c", "lat", api.VerdictFail, api.TriggerSchedule, time.Hour)

	ids := func(out string) []string {
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			got = append(got, strings.Fields(line)[0])
		}
		return got
	}
	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		query string
	}{
		{"selector", []string{"-l", "experiment=cut,verdict=fail"}, "r-b r-old", "selector=experiment%3Dcut%2Cverdict%3Dfail"},
		{"trigger and since", []string{"--selector", "trigger=schedule", "--since", "24h"}, "r-c r-b", "since=1d"},
		{"limit", []string{"--limit", "2"}, "r-c r-b", "limit=2"},
		{"all of them", []string{"-l", "experiment=cut", "--since", "1d", "--limit", "1"}, "r-b", "limit=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := chaosctl(t, append(append(conn, "get", "runs"), tc.args...)...)
			if got.code != ExitOK {
				t.Fatalf("exit %d: %s", got.code, got.stderr)
			}
			if g := strings.Join(ids(got.stdout), " "); g != tc.want {
				t.Errorf("rows %q, want %q:\n%s", g, tc.want, got.stdout)
			}
			qs := f.queries()
			if last := qs[len(qs)-1]; !strings.Contains(last, tc.query) {
				t.Errorf("query %q does not carry %q: the filter must be chaosd's", last, tc.query)
			}
		})
	}
	// -o yaml is the same list as -o json.
	y := chaosctl(t, append(conn, "get", "runs", "-l", "experiment=lat", "-o", "yaml")...)
	var runs []api.Run
	if err := yaml.UnmarshalStrict([]byte(y.stdout), &runs); err != nil || len(runs) != 1 || runs[0].ID != "r-c" {
		t.Errorf("-o yaml: %v %+v\n%s", err, runs, y.stdout)
	}

	before := len(f.queries())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-l", "owner=bob"}, `--selector: unknown key "owner"`},
		{[]string{"-l", "experiment in (a"}, "--selector:"},
		{[]string{"--limit", "-3"}, "--limit -3"},
		{[]string{"--since", "999999999999y"}, "--since:"},
		{[]string{"--since", "-1h"}, "--since:"},
	} {
		got := chaosctl(t, append(append(conn, "get", "runs"), tc.args...)...)
		if got.code != ExitUsage || !strings.Contains(got.stderr, tc.want) || got.stdout != "" {
			t.Errorf("%q: exit %d, stderr %q; want %d containing %q", tc.args, got.code, got.stderr, ExitUsage, tc.want)
		}
	}
	if n := len(f.queries()); n != before {
		t.Errorf("%d bad queries reached chaosd", n-before)
	}
}

// syncBuffer is a bytes.Buffer safe for a reader while a command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually waits for cond, failing after a generous bound (not a
// timing assertion: it only keeps a broken test from hanging).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGetRunsWatch: --watch prints the list, then one row per change of
// a run, and ends with exit 0 when its context ends (Ctrl-C).
func TestGetRunsWatch(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	if got := chaosctl(t, "--endpoint", ep, "--token", testToken, "run", "exp-pass"); got.code != ExitOK {
		t.Fatal(got.stderr)
	}
	var stdout, stderr syncBuffer
	a := newApp(IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr})
	a.lookupEnv = func(string) (string, bool) { return "", false }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int)
	go func() {
		done <- a.run(ctx, []string{"--endpoint", ep, "--token", testToken, "get", "runs", "-w", "--poll", "100ms"})
	}()
	eventually(t, "the first list", func() bool { return strings.Contains(stdout.String(), "pending") })
	// The run moves on (every GET of it advances the fake's script).
	for range 8 {
		if _, err := f.Run(context.Background(), "r-0001"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the verdict row", func() bool { return strings.Contains(stdout.String(), "done") })
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit %d after Ctrl-C, want 0; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	if n := strings.Count(out, "ID "); n != 1 {
		t.Errorf("%d headers, want 1 (changes are rows under the list):\n%s", n, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || !strings.Contains(lines[1], "pending") || !strings.Contains(lines[len(lines)-1], "done") {
		t.Errorf("want the list, then rows up to done:\n%s", out)
	}
	for i := 2; i < len(lines); i++ {
		if lines[i] == lines[i-1] {
			t.Errorf("row printed twice without a change: %q", lines[i])
		}
	}
}

// TestDescribeExperiment: the preview in text, JSON and YAML; an unknown
// experiment is exit 2.
func TestDescribeExperiment(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	got := chaosctl(t, append(conn, "describe", "experiment", "exp-pass")...)
	if got.code != ExitOK {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	for _, want := range []string{"Name:         exp-pass", "cut the TGW route", "0 10 * * 2 (Europe/Berlin)", "RTO target 15m0s",
		"gateway-success", ">= 0.99", "labels role=worker", "1 of 2 (random)", "c1-n1, c1-n2",
		"c1/c1-n1", "ready", "c1/c1-n2", "NOT READY", `{"cidrs":["10.1.0.0/16"]}`, "a run started now would stop at preflight", "agent: unreachable"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("describe experiment lacks %q:\n%s", want, got.stdout)
		}
	}
	y := chaosctl(t, append(conn, "describe", "experiment", "exp-pass", "-o", "yaml")...)
	var p api.ExperimentPreview
	if err := yaml.UnmarshalStrict([]byte(y.stdout), &p); err != nil || len(p.Faults) != 1 || len(p.Faults[0].On) != 2 {
		t.Errorf("-o yaml: %v %+v\n%s", err, p, y.stdout)
	}
	if got := chaosctl(t, append(conn, "describe", "experiment", "nope")...); got.code != ExitUsage || !strings.Contains(got.stderr, `unknown experiment "nope"`) {
		t.Errorf("unknown: exit %d %s", got.code, got.stderr)
	}
}

// TestOutputYAMLEverywhere: every verb with -o takes yaml, and it is
// the JSON document's content.
func TestOutputYAMLEverywhere(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	if got := chaosctl(t, append(conn, "run", "exp-pass", "-o", "yaml")...); got.code != ExitOK || !strings.Contains(got.stdout, "id: r-0001") {
		t.Fatalf("run -o yaml: %d %s %s", got.code, got.stdout, got.stderr)
	}
	for _, args := range [][]string{
		{"get", "runs"}, {"get", "experiments"}, {"get", "agents"}, {"describe", "run", "r-0001"},
		{"describe", "experiment", "exp-pass"}, {"abort", "r-0001"}, {"halt"}, {"version"},
	} {
		j := chaosctl(t, append(append(conn, args...), "-o", "json")...)
		y := chaosctl(t, append(append(conn, args...), "-o", "yaml")...)
		if y.code != j.code || y.stderr != j.stderr {
			t.Errorf("%q: -o yaml exit %d %q, -o json exit %d %q", args, y.code, y.stderr, j.code, j.stderr)
			continue
		}
		var fromJSON, fromYAML any
		if err := yaml.Unmarshal([]byte(j.stdout), &fromJSON); err != nil {
			t.Errorf("%q -o json: %v", args, err)
		}
		if err := yaml.Unmarshal([]byte(y.stdout), &fromYAML); err != nil {
			t.Errorf("%q -o yaml: %v", args, err)
		}
		if args[0] != "abort" && args[0] != "describe" && fmt.Sprint(fromJSON) != fmt.Sprint(fromYAML) {
			// abort and describe run advance the fake's run between the two calls.
			t.Errorf("%q: -o yaml and -o json differ:\n%s\n%s", args, y.stdout, j.stdout)
		}
	}
}

// TestVersion: client and server versions; chaosd unreachable still
// prints the client's on stdout, says why on stderr and exits 3;
// --client never asks chaosd.
func TestVersion(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	got := chaosctl(t, append(conn, "version")...)
	if got.code != ExitOK || !strings.HasPrefix(got.stdout, "Client: chaosctl dev") || !strings.Contains(got.stdout, "Server: chaosd v9.9.9-fake") || got.stderr != "" {
		t.Errorf("version: %+v", got)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + closed.Addr().String()
	closed.Close()
	got = chaosctl(t, "--endpoint", unreachable, "version")
	if got.code != ExitTool || !strings.HasPrefix(got.stdout, "Client: chaosctl") || strings.Contains(got.stdout, "Server") ||
		!strings.Contains(got.stderr, "chaosd's version: chaosd unreachable") {
		t.Errorf("unreachable: %+v", got)
	}
	got = chaosctl(t, "--endpoint", unreachable, "version", "--client")
	if got.code != ExitOK || !strings.HasPrefix(got.stdout, "Client: chaosctl") || got.stderr != "" {
		t.Errorf("--client: %+v", got)
	}
	got = chaosctl(t, append(conn, "version", "--token", "nope")...)
	if got.code != ExitTool || !strings.Contains(got.stderr, "401") || !strings.HasPrefix(got.stdout, "Client:") {
		t.Errorf("refused token: %+v", got)
	}
}

// TestCompletionFromChaosd: cobra's __complete (what every shell's
// script calls) offers chaosd's experiment names and run IDs, and
// nothing, quietly, when chaosd cannot be reached.
func TestCompletionFromChaosd(t *testing.T) {
	t.Parallel()
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	if got := chaosctl(t, "--endpoint", ep, "--token", testToken, "run", "exp-fail"); got.code != ExitOK {
		t.Fatal(got.stderr)
	}
	env := invocation{env: map[string]string{envEndpoint: ep, envToken: testToken}}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", ""}, []string{"exp-pass", "exp-fail"}},
		{[]string{"describe", "experiment", ""}, []string{"exp-pass", "exp-fail"}},
		{[]string{"describe", "run", ""}, []string{"r-0001\texp-fail"}},
		{[]string{"abort", ""}, []string{"r-0001"}},
		{[]string{"report", ""}, []string{"r-0001"}},
		{[]string{"get", "runs", "-o", ""}, []string{"text", "json", "yaml"}},
	} {
		got := env.run(t, append([]string{"__complete"}, tc.args...)...)
		for _, w := range tc.want {
			if got.code != ExitOK || !strings.Contains(got.stdout, w) {
				t.Errorf("complete %q: exit %d, no %q in\n%s", tc.args, got.code, w, got.stdout)
			}
		}
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + closed.Addr().String()
	closed.Close()
	got := invocation{env: map[string]string{envEndpoint: unreachable}}.run(t, "__complete", "describe", "experiment", "")
	if got.code != ExitOK || strings.TrimSpace(got.stdout) != ":4" || strings.Contains(got.stderr, "unreachable") {
		t.Errorf("unreachable chaosd: exit %d stdout %q stderr %q; want only the directive", got.code, got.stdout, got.stderr)
	}
}

// asMainEnv makes the test binary act as chaosctl (see TestMain), so the
// generated bash completion can call it.
const asMainEnv = "CHAOSCTL_TEST_AS_CHAOSCTL"

// TestBashCompletionScript: the script "chaosctl completion bash"
// writes, sourced in a real bash, completes experiment names that chaosd
// serves, through chaosctl's __complete.
func TestBashCompletionScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	script := chaosctl(t, "completion", "bash")
	if script.code != ExitOK || !strings.Contains(script.stdout, "__complete") {
		t.Fatalf("completion bash: %+v", script)
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "chaosctl")); err != nil {
		t.Fatal(err)
	}
	scriptFile := filepath.Join(dir, "chaosctl.bash")
	if err := os.WriteFile(scriptFile, []byte(script.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(line string) []string {
		t.Helper()
		// The script wants bash-completion's _get_comp_words_by_ref; when
		// that package is not installed, a minimal stand-in sets the
		// same variables from COMP_WORDS.
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", `
if [[ -r /usr/share/bash-completion/bash_completion ]]; then
  source /usr/share/bash-completion/bash_completion
else
  _get_comp_words_by_ref() {
    cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
    words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
  }
fi
source "$1"
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
__start_chaosctl chaosctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`, "bash", scriptFile, line)
		cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "HOME=" + dir, asMainEnv + "=1",
			envEndpoint + "=" + ep, envToken + "=" + testToken}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("bash: %v\n%s", err, errOut.String())
		}
		return strings.Fields(out.String())
	}
	got := complete("chaosctl describe experiment ")
	slices.Sort(got)
	if strings.Join(got, " ") != "exp-fail exp-pass" {
		t.Errorf("bash completes %q, want chaosd's experiments exp-fail exp-pass", got)
	}
	if got := complete("chaosctl describe experiment exp-f"); strings.Join(got, " ") != "exp-fail" {
		t.Errorf("bash completes exp-f to %q, want exp-fail", got)
	}
}

// runAsChaosctl is chaosctl's main for TestBashCompletionScript.
func runAsChaosctl() int {
	return Run(context.Background(), os.Args[1:], IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: io.Discard})
}
