package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
)

// chaosctlAt runs chaosctl with its clock at t0 (2026-11-25 10:00 UTC).
func chaosctlAt(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr})
	a.lookupEnv = func(string) (string, bool) { return "", false }
	a.isTerminal = func(io.Writer) bool { return false }
	a.now = func() time.Time { return t0 }
	code := a.run(t.Context(), args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestGetSchedules(t *testing.T) {
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	got := chaosctlAt(t, append(conn, "get", "schedules")...)
	if got.code != ExitOK {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	for _, want := range []string{
		"EXPERIMENT   CRON", "exp-pass     30 2 * * *   Europe/Berlin   active",
		"r-0042 pass (schedule, 8h ago)", // t0 is 2026-11-25 10:00 UTC
		"missed runs: runOnce within 2h; freeze windows: christmas, peak-hours",
		"next  2026-11-26 02:30 CET (in 15h)",
		"next  2026-11-27 02:30 CET (in 39h) FROZEN by release-1.4",
		`skipped  2026-11-24T01:30:00Z  inside freeze window "release-1.4" (chaosd config) until 2026-11-24T06:00:00Z`,
		"skipped  2026-11-23T01:30:00Z  missed while chaosd was down; the latest (2026-11-23T01:30:00Z) is older than startingDeadline 2h",
	} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("get schedules does not show %q:\n%s", want, got.stdout)
		}
	}
	if got.stderr != "" {
		t.Errorf("stderr: %s", got.stderr)
	}

	got = chaosctl(t, append(conn, "get", "schedules", "-o", "json")...)
	var scheds []api.ScheduleInfo
	if err := json.Unmarshal([]byte(got.stdout), &scheds); err != nil || len(scheds) != 1 || scheds[0].Next[1].Frozen != "release-1.4" {
		t.Fatalf("json %v: %s", err, got.stdout)
	}
}

func TestPauseResumeSchedule(t *testing.T) {
	f := newFakeChaosd(t, testToken)
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	got := chaosctl(t, append(conn, "pause", "schedule", "exp-pass")...)
	if got.code != ExitOK || !strings.Contains(got.stdout, "schedule exp-pass paused (30 2 * * * Europe/Berlin)") {
		t.Fatalf("pause: exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	got = chaosctlAt(t, append(conn, "get", "schedules")...)
	if !strings.Contains(got.stdout, "PAUSED") || !strings.Contains(got.stdout, "paused since 2026-11-25T10:00:00Z") {
		t.Errorf("get schedules after pause:\n%s", got.stdout)
	}
	got = chaosctlAt(t, append(conn, "resume", "schedule", "exp-pass")...)
	if got.code != ExitOK || !strings.Contains(got.stdout, "schedule exp-pass active (30 2 * * * Europe/Berlin): next 2026-11-26 02:30 CET") {
		t.Fatalf("resume: exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"pause", "schedule", "nope"}, ExitUsage, `unknown experiment "nope"`},
		{[]string{"pause", "schedule", "exp-fail"}, ExitUsage, `experiment without a schedule "exp-fail"`},
		{[]string{"pause", "schedule"}, ExitUsage, "exactly one experiment NAME"},
		{[]string{"resume"}, ExitUsage, "resume needs a resource: schedule NAME"},
		{[]string{"pause", "run", "x"}, ExitUsage, `unknown resource "run"`},
	} {
		got := chaosctl(t, append(conn, tc.args...)...)
		if got.code != tc.code || !strings.Contains(got.stderr, tc.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args, got.code, got.stderr, tc.code, tc.stderr)
		}
	}
	f.status = 403
	got = chaosctl(t, append(conn, "pause", "schedule", "exp-pass")...)
	if got.code != ExitTool {
		t.Errorf("403: exit %d", got.code)
	}
}

func TestRunInsideFreezeNeedsForce(t *testing.T) {
	f := newFakeChaosd(t, testToken)
	f.scheds.frozen = "christmas"
	conn := []string{"--endpoint", f.serveTCP(), "--token", testToken}
	got := chaosctl(t, append(conn, "run", "exp-pass")...)
	if got.code == ExitOK || !strings.Contains(got.stderr, `inside freeze window "christmas"`) || !strings.Contains(got.stderr, "--force") {
		t.Fatalf("run inside a freeze: exit %d, stderr %q", got.code, got.stderr)
	}
	if got.stdout != "" {
		t.Errorf("stdout %q", got.stdout)
	}
	got = chaosctl(t, append(conn, "run", "exp-pass", "--force")...)
	if got.code != ExitOK {
		t.Fatalf("forced run: exit %d, stderr %q", got.code, got.stderr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.scheds.forced) != 1 || !f.scheds.forced[0].Force {
		t.Errorf("forced requests %+v", f.scheds.forced)
	}
}
