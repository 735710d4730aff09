package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestIntegrationVM builds vmexec and runs testdata/guest through
// `go test -exec` in the VM: a passing run (netem and prio on a veth pair
// in a fresh netns, cgroup v2, testdata/ carried over), a failing run that
// must exit non-zero, and a dynamically linked binary that must be refused.
// The first run on a machine also fetches the kernel and builds the cached
// base initramfs.
func TestIntegrationVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs; skipped with -short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 missing: install " + qemuPackage)
	}
	if err := checkStatic("/bin/busybox"); err != nil {
		t.Skip("static /bin/busybox missing: install " + busyboxPackage)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the guest tests with")
	}
	vmexec := filepath.Join(t.TempDir(), "vmexec")
	if out, err := exec.Command(goBin, "build", "-o", vmexec, ".").CombinedOutput(); err != nil {
		t.Fatalf("build vmexec: %v\n%s", err, out)
	}
	// A dynamically linked host executable to copy in (CHAOSD_VM_FILES).
	extra := ""
	if err := checkStatic("/bin/sh"); err != nil && strings.Contains(err.Error(), "dynamically linked") {
		extra = "/bin/sh"
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	hostRelease := unix.ByteSliceToString(u.Release[:])

	goTest := func(t *testing.T, cgo string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(goBin, append([]string{"test", "-count=1", "-exec", vmexec, "./testdata/guest"}, args...)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "CHAOSD_TEST_HOST_RELEASE="+hostRelease)
		if extra != "" {
			// the host's dynamically linked /bin/sh, out of busybox's way
			cmd.Env = append(cmd.Env, "CHAOSD_VM_FILES="+extra+"=/opt/host/sh", "CHAOSD_TEST_EXTRA_EXE=/opt/host/sh")
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("go test %s (CGO_ENABLED=%s) took %s, err=%v\n%s", strings.Join(args, " "), cgo, time.Since(start).Round(100*time.Millisecond), err, out)
		return string(out), err
	}

	t.Run("pass", func(t *testing.T) {
		out, err := goTest(t, "0", "-v")
		if err != nil {
			t.Fatalf("guest tests failed: %v", err)
		}
		for _, want := range []string{
			"--- PASS: TestRunsInVM",
			"--- PASS: TestTestdataAndWorkdir",
			"--- PASS: TestCgroup2Memory",
			"--- PASS: TestNetemAndPrioOnVethInFreshNetns",
			"--- SKIP: TestFailOnPurpose",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if extra != "" && !strings.Contains(out, "--- PASS: TestExtraDynamicExecutable") {
			t.Errorf("output lacks %q: the host's %s did not run in the guest", "--- PASS: TestExtraDynamicExecutable", extra)
		}
		if !strings.Contains(out, "vmexec: guest booted to /init in ") {
			t.Errorf("output lacks vmexec's boot time and host CPU line")
		}
	})
	t.Run("failure reaches the host", func(t *testing.T) {
		out, err := goTest(t, "0", "-v", "-run", "TestFailOnPurpose", "-args", "-guest.fail")
		if err == nil {
			t.Fatal("a failing guest test made go test exit 0")
		}
		if !strings.Contains(out, "--- FAIL: TestFailOnPurpose") {
			t.Errorf("output lacks the failure")
		}
	})
	t.Run("dynamic binary refused", func(t *testing.T) {
		if _, err := exec.LookPath("gcc"); err != nil {
			t.Skip("no gcc: cannot build a dynamically linked test binary")
		}
		out, err := goTest(t, "1", "-run", "TestRunsInVM")
		if err == nil {
			t.Fatal("a dynamically linked test binary ran")
		}
		if !strings.Contains(out, "CGO_ENABLED=0") {
			t.Errorf("the refusal does not tell to set CGO_ENABLED=0")
		}
	})
}
