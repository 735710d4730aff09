// Package chromiumtest loads pages in a real headless Chromium for tests:
// the DOM after parsing and layout (--dump-dom) and a screenshot. Any
// package's tests may use it:
//
//	dom := chromiumtest.DumpDOM(t, "/tmp/report.html")
//	chromiumtest.Screenshot(t, "/tmp/report.html", "/tmp/report.png", 1200, 2400)
//
// Tests are skipped only when no Chromium is installed (Debian package
// "chromium"; set CHROMIUM_BIN to use another). Each call starts its own
// browser with its own profile directory and stops its whole process
// group when done.
package chromiumtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Timeout bounds one browser run.
const Timeout = 90 * time.Second

// Binary returns the Chromium to use, skipping the test when there is
// none.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "chromium-headless-shell", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium in PATH (install Debian package chromium, or set CHROMIUM_BIN): this test loads the report in a real browser")
	return ""
}

// DumpDOM loads file (a local path) and returns the serialized DOM.
func DumpDOM(t testing.TB, file string) string {
	t.Helper()
	return string(run(t, "--dump-dom", fileURL(t, file)))
}

// Screenshot renders file in a width×height window and writes it to png.
func Screenshot(t testing.TB, file, png string, width, height int) {
	t.Helper()
	abs, err := filepath.Abs(png)
	if err != nil {
		t.Fatal(err)
	}
	run(t, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", "--screenshot="+abs, fileURL(t, file))
	if fi, err := os.Stat(abs); err != nil || fi.Size() == 0 {
		t.Fatalf("chromium wrote no screenshot to %s: %v", abs, err)
	}
}

func fileURL(t testing.TB, file string) string {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + abs
}

// run starts Chromium headless with a fresh profile and returns its
// stdout.
func run(t testing.TB, args ...string) []byte {
	t.Helper()
	bin := Binary(t)
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage",
		"--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	// A HOME of its own keeps the browser's caches and crash dumps out of
	// the user's.
	cmd.Env = append(os.Environ(), "HOME="+profile)
	cmd.SysProcAttr = sysProcAttr()
	// On timeout, end the browser and its helpers (zygote, renderer),
	// which share its process group; the leader is not reaped yet, so
	// the group is still the one started here.
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, tail(stderr.String(), 20))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
