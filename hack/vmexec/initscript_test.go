package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestInitScriptGolden(t *testing.T) {
	got := initScript(guestRun{
		Workdir:       "/work/main/agent",
		Argv:          []string{"/vmexec/bin/agent.test", "-test.run=TestX", "-test.v=true", "it's"},
		Env:           map[string]string{"CHAOSD_IN_VM": "1", "HOME": "/root", "PATH": "/bin:/sbin"},
		DumpKernelLog: true,
	})
	golden := filepath.Join("testdata", "init.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("initScript differs from %s (run with -update if intended):\n%s", golden, got)
	}
}

func TestInitScriptEssentials(t *testing.T) {
	s := initScript(guestRun{Workdir: "/w", Argv: []string{"/vmexec/bin/p.test"}, Env: map[string]string{"CHAOSD_IN_VM": "1"}})
	for _, want := range []string{
		"mount -t cgroup2 cgroup2 /sys/fs/cgroup",
		"mount -t devtmpfs devtmpfs /dev",
		"mount -t tmpfs tmpfs /tmp",
		"ip link set lo up",
		"done <" + guestModulesList,
		"cd '/w'",
		"echo '" + guestReadyMarker + "'",
		"env -i 'CHAOSD_IN_VM=1' '/vmexec/bin/p.test' </dev/null",
		`echo "EXIT=$rc" >/dev/ttyS1`,
		"poweroff -f",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q", want)
		}
	}
	if strings.Contains(s, "dmesg") {
		t.Error("kernel log dumped without DumpKernelLog")
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v: %s", err, out)
		}
	}
}

func TestShellQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, s := range []string{"", "plain", "it's", `a "b" $c \d`, "new\nline", "'''"} {
		out, err := exec.Command(sh, "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("shellQuote(%q) came back as %q", s, out)
		}
	}
}
