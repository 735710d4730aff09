package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompletionScripts: chaosctl writes a completion script for bash,
// zsh and fish that asks chaosctl itself (its hidden __complete command,
// which fetches names from chaosd), and the shell, where this machine has
// it, parses it.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		got := chaosctl(t, "completion", shell)
		if got.code != ExitOK || !strings.Contains(got.stdout, "__complete") || !strings.Contains(got.stdout, "chaosctl") {
			t.Errorf("completion %s: exit %d, script of %d bytes without chaosctl __complete", shell, got.code, len(got.stdout))
			continue
		}
		path, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("%s is not installed here: its script's syntax is not checked", shell)
			continue
		}
		f := filepath.Join(t.TempDir(), "chaosctl."+shell)
		if err := os.WriteFile(f, []byte(got.stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s -n: the completion script does not parse: %v\n%s", shell, err, out)
		}
	}
}

// TestFishCompletion: the fish script, loaded in a real fish, completes
// experiment names that chaosd serves (with their descriptions), through
// chaosctl's __complete.
func TestFishCompletion(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("fish is not installed here (hack/deps.sh installs it)")
	}
	f := newFakeChaosd(t, testToken)
	ep := f.serveTCP()
	script := chaosctl(t, "completion", "fish")
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "chaosctl")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "chaosctl.fish")
	if err := os.WriteFile(file, []byte(script.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C "chaosctl describe experiment exp-"`, file)
	cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "HOME=" + dir, asMainEnv + "=1",
		envEndpoint + "=" + ep, envToken + "=" + testToken}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fish: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, _, _ := strings.Cut(line, "\t")
		names = append(names, name)
	}
	slices.Sort(names)
	if strings.Join(names, " ") != "exp-fail exp-pass" {
		t.Errorf("fish completes %q, want chaosd's experiments starting with exp-", names)
	}
}
