package cli

import (
	"bytes"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// ciEnv is what a CI job gives the snippets' shell steps in this test:
// chaosd (the fake, over TLS) and a PATH whose chaosctl is this test
// binary acting as chaosctl.
type ciEnv struct {
	dir     string // the job's working directory
	env     []string
	expName string
}

func newCIEnv(t *testing.T, exp string) ciEnv {
	t.Helper()
	for _, tool := range []string{"bash", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the CI snippets need %s, which this machine lacks (hack/deps.sh installs it)", tool)
		}
	}
	f := newFakeChaosd(t, testToken)
	srv := httptest.NewTLSServer(f.handler())
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	bin, work := t.TempDir(), t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "chaosctl")); err != nil {
		t.Fatal(err)
	}
	return ciEnv{dir: work, expName: exp, env: []string{
		"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + work, asMainEnv + "=1",
		"CHAOSD_CA_PEM=" + string(ca), "CHAOSCTL_ENDPOINT=" + srv.URL, "CHAOSCTL_TOKEN=" + testToken,
	}}
}

// sh runs script in bash -e (a CI step) in the job's directory and
// returns its exit code.
func (c ciEnv) sh(t *testing.T, script string, env ...string) int {
	t.Helper()
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir = c.dir
	cmd.Env = append(append([]string{}, c.env...), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Logf("step exited %d:\n%s\n%s", ee.ExitCode(), script, out.String())
		return ee.ExitCode()
	} else if err != nil {
		t.Fatalf("bash: %v", err)
	}
	return 0
}

// checkArtifacts: what the job publishes is there and says the verdict.
func (c ciEnv) checkArtifacts(t *testing.T, failures string) {
	t.Helper()
	junit, err := os.ReadFile(filepath.Join(c.dir, "chaos-junit.xml"))
	if err != nil || !bytes.Contains(junit, []byte("<testsuite ")) || !bytes.Contains(junit, []byte(failures)) {
		t.Errorf("chaos-junit.xml (%v): want a testsuite with %s:\n%s", err, failures, junit)
	}
	html, err := os.ReadFile(filepath.Join(c.dir, "chaos-report.html"))
	if err != nil || !bytes.HasPrefix(html, []byte("<!DOCTYPE html>")) {
		t.Errorf("chaos-report.html (%v): not the HTML report", err)
	}
}

func readSnippet(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", "ci", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestGitHubActionsSnippet runs the shell steps of
// examples/ci/github-actions.yml (all but the one that builds chaosctl
// from source) against chaosd: the job passes when the experiment
// passes, fails when the system fails it, and publishes the JUnit file,
// the Markdown summary and the HTML report either way.
func TestGitHubActionsSnippet(t *testing.T) {
	t.Parallel()
	var wf struct {
		Jobs map[string]struct {
			Env   map[string]string `json:"env"`
			Steps []struct {
				Name string `json:"name"`
				ID   string `json:"id"`
				If   string `json:"if"`
				Run  string `json:"run"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	readSnippet(t, "github-actions.yml", &wf)
	job, ok := wf.Jobs["partition-c1-c2"]
	if !ok || job.Env["EXPERIMENT"] != "partition-c1-c2" {
		t.Fatalf("github-actions.yml: no job partition-c1-c2 running that experiment: %+v", wf)
	}
	for _, tc := range []struct {
		exp      string
		code     int
		failures string
	}{{"exp-pass", ExitOK, `failures="0"`}, {"exp-fail", ExitFailed, `failures="1"`}} {
		t.Run(tc.exp, func(t *testing.T) {
			t.Parallel()
			c := newCIEnv(t, tc.exp)
			summary := filepath.Join(c.dir, "summary.md")
			var env []string
			for k, v := range job.Env {
				switch {
				case strings.Contains(v, "secrets.CHAOSD_CA"):
					v = envValue(c.env, "CHAOSD_CA_PEM")
				case strings.Contains(v, "${{"):
					continue // endpoint and token: the fake's, already set
				case k == "EXPERIMENT":
					v = tc.exp
				}
				env = append(env, k+"="+v)
			}
			env = append(env, "GITHUB_STEP_SUMMARY="+summary, "RUNNER_TEMP="+t.TempDir(), "GITHUB_PATH="+filepath.Join(c.dir, "path"))
			failed, ran := false, 0
			for _, st := range job.Steps {
				if st.Run == "" || strings.Contains(st.Run, "go build") {
					continue // actions, and building chaosctl: this test brings its own
				}
				if failed && st.If != "always()" {
					continue
				}
				code := c.sh(t, st.Run, env...)
				ran++
				if st.ID == "chaos-run" && code != tc.code {
					t.Errorf("step %q exited %d, want %d (chaosctl's exit code is the gate)", st.Name, code, tc.code)
				}
				if code != 0 {
					failed = true
				}
				if st.ID == "chaos-results" && code != 0 {
					t.Errorf("step %q failed (exit %d)", st.Name, code)
				}
			}
			if ran != 3 {
				t.Errorf("ran %d shell steps, want the CA, the run and the results", ran)
			}
			c.checkArtifacts(t, tc.failures)
			if md, err := os.ReadFile(summary); err != nil || !bytes.Contains(md, []byte("|")) {
				t.Errorf("step summary (%v): want the Markdown report:\n%s", err, md)
			}
		})
	}
}

// TestGitLabCISnippet runs the script of examples/ci/gitlab-ci.yml (in
// one shell, as the runner does) against chaosd: the job's exit code is
// the gate, and the JUnit report and HTML report are written either way.
func TestGitLabCISnippet(t *testing.T) {
	t.Parallel()
	var ci map[string]any
	readSnippet(t, "gitlab-ci.yml", &ci)
	job, _ := ci["partition-c1-c2"].(map[string]any)
	vars, _ := job["variables"].(map[string]any)
	if vars["EXPERIMENT"] != "partition-c1-c2" {
		t.Fatalf("gitlab-ci.yml: no job partition-c1-c2 running that experiment: %v", job)
	}
	arts, _ := job["artifacts"].(map[string]any)
	reports, _ := arts["reports"].(map[string]any)
	if arts["when"] != "always" || reports["junit"] != "chaos-junit.xml" {
		t.Errorf("artifacts %v: want the JUnit report published always", arts)
	}
	var lines []string
	for _, l := range job["script"].([]any) {
		lines = append(lines, l.(string))
	}
	for _, tc := range []struct {
		exp      string
		code     int
		failures string
	}{{"exp-pass", ExitOK, `failures="0"`}, {"exp-fail", ExitFailed, `failures="1"`}} {
		t.Run(tc.exp, func(t *testing.T) {
			t.Parallel()
			c := newCIEnv(t, tc.exp)
			ca := filepath.Join(t.TempDir(), "CHAOSD_CA")
			if err := os.WriteFile(ca, []byte(envValue(c.env, "CHAOSD_CA_PEM")), 0o600); err != nil {
				t.Fatal(err)
			}
			if code := c.sh(t, strings.Join(lines, "\n"), "EXPERIMENT="+tc.exp, "CHAOSD_CA="+ca); code != tc.code {
				t.Errorf("job exited %d, want %d", code, tc.code)
			}
			c.checkArtifacts(t, tc.failures)
		})
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// TestREADMEShowsTheCISnippets: the README's snippets are the tested
// files, byte for byte.
func TestREADMEShowsTheCISnippets(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"github-actions.yml", "gitlab-ci.yml"} {
		data, err := os.ReadFile(filepath.Join("..", "examples", "ci", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(readme, append([]byte("```yaml\n"), append(data, []byte("```\n")...)...)) {
			t.Errorf("README.md does not show examples/ci/%s as it is", name)
		}
	}
}
