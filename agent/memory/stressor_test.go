package memory

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRenew(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{"renew 2250\n", 2250 * time.Millisecond, true},
		{renewLine(1500 * time.Millisecond), 1500 * time.Millisecond, true},
		{renewLine(0), time.Millisecond, true}, // never 0
		{"renew 0\n", 0, false},
		{"renew -5\n", 0, false},
		{"renew 99999999999999999999\n", 0, false},
		{"renew\n", 0, false},
		{"hello 5\n", 0, false},
	} {
		got, ok := parseRenew(tc.line)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRenew(%q) = %v, %v; want %v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHoldDeadline(t *testing.T) {
	renewals := make(chan time.Duration)
	expired := make(chan time.Duration, 1)
	start := time.Now()
	go holdDeadline(100*time.Millisecond, renewals, func(d time.Duration) { expired <- d })
	for range 5 { // renewed every 50ms for 250ms: never expires meanwhile
		time.Sleep(50 * time.Millisecond)
		renewals <- 80 * time.Millisecond
	}
	select {
	case <-expired:
		t.Fatalf("expired at %v although renewed", time.Since(start))
	default:
	}
	d := <-expired
	if el := time.Since(start); d != 80*time.Millisecond || el < 300*time.Millisecond {
		t.Fatalf("expired after %v with lease %v", el, d)
	}
}

// stressorProc is a stressor this test runs itself (its parent is the
// test process, so PR_SET_PDEATHSIG and the parent check pass).
type stressorProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startStressor(t *testing.T, leaseMs int) *stressorProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "agent-stressor", markerArg, ownerFlag+"selftest", faultIDFlag+"self.test",
		"--size=65536", "--parent="+strconv.Itoa(os.Getpid()), "--lease-ms="+strconv.Itoa(leaseMs))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill() // by PID: the process this test started
			cmd.Wait()
		}
	})
	p := &stressorProc{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

func (p *stressorProc) expect(t *testing.T, prefix string) {
	t.Helper()
	select {
	case l := <-p.lines:
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("stressor said %q, want %q…", l, prefix)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("stressor did not say %q", prefix)
	}
}

// wait returns the stressor's exit code and when it exited.
func (p *stressorProc) wait(t *testing.T) (int, time.Time) {
	t.Helper()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return p.cmd.ProcessState.ExitCode(), time.Now()
	case <-time.After(10 * time.Second):
		t.Fatal("stressor still running")
		return 0, time.Time{}
	}
}

// TestStressorHoldsItsOwnDeadline: after the go byte the stressor exits by
// itself once its lease passes without a renewal (exit 5, "expired");
// renewals over its stdin keep it alive; EOF ends it at once.
func TestStressorHoldsItsOwnDeadline(t *testing.T) {
	t.Run("no renewal", func(t *testing.T) {
		p := startStressor(t, 300)
		start := time.Now()
		p.in.Write([]byte("g"))
		p.expect(t, "started ")
		p.expect(t, "holding ")
		p.expect(t, "expired 300")
		code, at := p.wait(t)
		t.Logf("exited %d after %v (lease 300ms)", code, at.Sub(start).Round(time.Millisecond))
		if code != exitExpired || at.Sub(start) < 300*time.Millisecond || at.Sub(start) > 1300*time.Millisecond {
			t.Fatalf("exit %d after %v, want %d after ~300ms", code, at.Sub(start), exitExpired)
		}
	})
	t.Run("renewed, then not", func(t *testing.T) {
		p := startStressor(t, 300)
		p.in.Write([]byte("g" + renewLine(300*time.Millisecond)))
		p.expect(t, "started ")
		var last time.Time
		for range 8 { // 800ms, past the first lease
			time.Sleep(100 * time.Millisecond)
			if _, err := p.in.Write([]byte(renewLine(300 * time.Millisecond))); err != nil {
				t.Fatalf("renew: %v", err)
			}
			last = time.Now()
		}
		code, at := p.wait(t)
		t.Logf("exited %d %v after the last renewal (lease 300ms)", code, at.Sub(last).Round(time.Millisecond))
		if code != exitExpired || at.Sub(last) < 300*time.Millisecond || at.Sub(last) > 1300*time.Millisecond {
			t.Fatalf("exit %d %v after the last renewal, want %d ~300ms after", code, at.Sub(last), exitExpired)
		}
	})
	t.Run("EOF", func(t *testing.T) {
		p := startStressor(t, 60_000)
		p.in.Write([]byte("g"))
		p.expect(t, "started ")
		start := time.Now()
		p.in.Close()
		code, at := p.wait(t)
		if code != 0 || at.Sub(start) > time.Second {
			t.Fatalf("exit %d %v after EOF, want 0 at once", code, at.Sub(start))
		}
	})
}
