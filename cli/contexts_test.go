package cli

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeContexts writes a chaosctl config with contexts c1 and c2 (c1
// current) and returns the environment pointing at it.
func writeContexts(t *testing.T, c1, c1Token, c2, c2Token string) (map[string]string, string) {
	t.Helper()
	dir := t.TempDir()
	tok2 := filepath.Join(dir, "c2-token")
	if err := os.WriteFile(tok2, []byte(c2Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config")
	cfg := "current-context: c1\ncontexts:\n" +
		"  - name: c1\n    endpoint: " + c1 + "\n    token: " + c1Token + "\n" +
		"  - name: c2\n    endpoint: " + c2 + "\n    tokenFile: " + tok2 + "\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{envConfig: path}, path
}

func TestContexts(t *testing.T) {
	t.Parallel()
	f1, f2 := newFakeChaosd(t, "tok-one"), newFakeChaosd(t, "tok-two")
	ep1, ep2 := f1.serveTCP(), f2.serveTCP()
	env, path := writeContexts(t, ep1, "tok-one", ep2, "tok-two")
	in := invocation{env: env}

	got := in.run(t, "config", "get-contexts")
	if got.code != ExitOK || !strings.Contains(got.stdout, "*") || !regexpLine(got.stdout, `^\*\s+c1\s+`+ep1) || !regexpLine(got.stdout, `^\s+c2\s+`+ep2) {
		t.Fatalf("get-contexts: %+v", got)
	}
	// The current context's endpoint and token, then --context's.
	for _, args := range [][]string{{"get", "runs"}, {"--context", "c2", "get", "runs"}} {
		if got := in.run(t, args...); got.code != ExitOK {
			t.Fatalf("%v: %+v", args, got)
		}
	}
	if got := in.run(t, "--context", "c9", "get", "runs"); got.code != ExitUsage || !strings.Contains(got.stderr, `no context "c9"`) {
		t.Fatalf("unknown context: %+v", got)
	}
	// The environment beats the current context, --context beats the
	// environment: CHAOSCTL_ENDPOINT to c2 with c1's token is a 401.
	envC2 := map[string]string{envConfig: path, envEndpoint: ep2, envToken: "tok-two"}
	if got := (invocation{env: envC2}).run(t, "get", "runs"); got.code != ExitOK {
		t.Fatalf("env over current context: %+v", got)
	}
	if got := (invocation{env: envC2}).run(t, "--context", "c1", "get", "runs"); got.code != ExitOK {
		t.Fatalf("--context over env: %+v", got)
	}
	if got := in.run(t, "config", "use-context", "c2"); got.code != ExitOK || !strings.Contains(got.stdout, `Switched to context "c2"`) {
		t.Fatalf("use-context: %+v", got)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "current-context: c2") {
		t.Fatalf("config after use-context:\n%s", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, want 0600", fi.Mode())
	}
	if got := in.run(t, "config", "use-context", "nope"); got.code != ExitUsage {
		t.Fatalf("use-context of an unknown context: %+v", got)
	}
}

// TestHaltAllContexts halts both contexts in parallel and reports each;
// one unreachable chaosd makes it exit 3 while the other is still halted.
func TestHaltAllContexts(t *testing.T) {
	t.Parallel()
	f1 := newFakeChaosd(t, "tok-one")
	ep1 := f1.serveTCP()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + closed.Addr().String()
	closed.Close()

	env, _ := writeContexts(t, ep1, "tok-one", dead, "tok-two")
	got := invocation{env: env}.run(t, "halt", "--all-contexts")
	if got.code != ExitTool || !strings.Contains(got.stdout, "context c1 ("+ep1+"): aborted") ||
		!strings.Contains(got.stdout, "context c2 ("+dead+"): NOT HALTED") || !strings.Contains(got.stderr, "contexts c2") {
		t.Fatalf("halt --all-contexts with c2 down: %+v", got)
	}
	if !strings.Contains(got.stdout, "fault(s) reverted") {
		t.Fatalf("c1's agents not reported: %+v", got)
	}

	f2 := newFakeChaosd(t, "tok-two")
	env, _ = writeContexts(t, ep1, "tok-one", f2.serveTCP(), "tok-two")
	got = invocation{env: env}.run(t, "halt", "--all-contexts", "-o", "json")
	if got.code != ExitOK || !strings.Contains(got.stdout, `"c1"`) || !strings.Contains(got.stdout, `"c2"`) {
		t.Fatalf("halt --all-contexts with both up: %+v", got)
	}
}

// regexpLine reports whether some line of s matches pattern.
func regexpLine(s, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}
