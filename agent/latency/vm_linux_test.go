package latency

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// requireVM skips outside the QEMU guest of hack/vmexec: the host kernel
// has no netem.
func requireVM(t testing.TB) {
	t.Helper()
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Skip("needs netem: run via hack/vmtest.sh (make test does)")
	}
	requireRoot(t)
}

// servers listens in B on every address: TCP 7001 and 7002 (accept and
// close) and UDP 7003 (count datagrams per destination address).
type servers struct {
	udp map[string]*atomic.Int64
}

func startServers(t testing.TB, b *testNS) *servers {
	t.Helper()
	s := &servers{udp: map[string]*atomic.Int64{}}
	b.do(t, func() {
		for _, port := range []string{"7001", "7002"} {
			for _, netw := range []string{"tcp4", "tcp6"} {
				ln, err := net.Listen(netw, net.JoinHostPort("", port))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
			}
		}
		for _, addr := range []string{"10.99.1.2", "10.99.2.2"} {
			pc, err := net.ListenPacket("udp4", net.JoinHostPort(addr, "7003"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pc.Close() })
			n := &atomic.Int64{}
			s.udp[addr] = n
			go func() {
				buf := make([]byte, 64)
				for {
					if _, _, err := pc.ReadFrom(buf); err != nil {
						return
					}
					n.Add(1)
				}
			}()
		}
	})
	return s
}

// minConnectRTT dials addr from A n times and returns the fastest connect.
func minConnectRTT(t testing.TB, a *testNS, addr string, n int) time.Duration {
	t.Helper()
	best := time.Hour
	for range n {
		var d time.Duration
		a.do(t, func() {
			start := time.Now()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			d = time.Since(start)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			c.Close()
		})
		best = min(best, d)
	}
	return best
}

// udpReceived sends n datagrams from A to addr:7003, one per millisecond,
// and returns how many arrived.
func udpReceived(t testing.TB, a *testNS, s *servers, addr string, n int) int {
	t.Helper()
	ctr := s.udp[addr]
	start := ctr.Load()
	var c net.Conn
	a.do(t, func() {
		var err error
		if c, err = net.Dial("udp4", net.JoinHostPort(addr, "7003")); err != nil {
			t.Fatal(err)
		}
	})
	defer c.Close()
	for range n {
		if _, err := c.Write([]byte("probe")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	return int(ctr.Load() - start)
}

const (
	target  = "10.99.1.2:7001"
	target6 = "[fd99:1::2]:7001"
	other   = "10.99.2.2:7001"
	other6  = "[fd99:2::2]:7001"
	delay   = 100 * time.Millisecond
	fast    = 50 * time.Millisecond // upper bound for undelayed connects under TCG
	rounds  = 10
)

func apply(t testing.TB, d *Driver, f agentapi.Fault) json.RawMessage {
	t.Helper()
	st, err := d.Prepare(context.Background(), ptr(f))
	if err != nil {
		t.Fatalf("Prepare %s: %v", f.ID, err)
	}
	st, err = d.Apply(context.Background(), f, st)
	if err != nil {
		t.Fatalf("Apply %s: %v", f.ID, err)
	}
	return st
}

func expectSlow(t *testing.T, a *testNS, addr string, min time.Duration) {
	t.Helper()
	got := minConnectRTT(t, a, addr, rounds)
	t.Logf("min connect RTT to %s over %d: %v (want >= %v)", addr, rounds, got, min)
	if got < min {
		t.Errorf("min connect RTT to %s = %v, want >= %v", addr, got, min)
	}
}

func expectFast(t *testing.T, a *testNS, addr string) {
	t.Helper()
	got := minConnectRTT(t, a, addr, rounds)
	t.Logf("min connect RTT to %s over %d: %v (want < %v)", addr, rounds, got, fast)
	if got >= fast {
		t.Errorf("min connect RTT to %s = %v, want < %v", addr, got, fast)
	}
}

func TestVMProbe(t *testing.T) {
	requireVM(t)
	p := newPair(t)
	if err := newDriver(t, p.A).Probe(context.Background()); err != nil {
		t.Fatalf("Probe on the VM kernel: %v", err)
	}
	if _, err := p.A.h.LinkByName(ProbeLink); err == nil {
		t.Fatal("probe link left behind")
	}
}

// TestVMDelayToCIDR covers (a) delay toward the CIDRs only, v4 and v6,
// and (d) exact restore of the root qdisc and normal RTT after Revert.
func TestVMDelayToCIDR(t *testing.T) {
	requireVM(t)
	p := newPair(t)
	startServers(t, p.B)
	d := newDriver(t, p.A)
	before := p.A.root(t, "a0")
	expectFast(t, p.A, target)

	f := latencyFault("run1.delay", agentapi.Latency{CIDRs: []string{"10.99.1.0/24", "fd99:1::/64"}, DelayMs: 100})
	st := apply(t, d, f)
	if r := p.A.root(t, "a0"); r.Kind != "htb" || r.Handle != RootHandle {
		t.Fatalf("root after Apply = %s, want htb cd00:", r)
	}
	checkNetemReadBack(t, d, p.A, 100_000)
	expectSlow(t, p.A, target, delay)
	expectSlow(t, p.A, target6, delay)
	expectFast(t, p.A, other)
	expectFast(t, p.A, other6)
	if left, err := d.Remaining(context.Background(), f, st); err != nil || left == "" {
		t.Fatalf("Remaining while applied = %q, %v", left, err)
	}

	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatalf("second Revert: %v", err)
	}
	if after := p.A.root(t, "a0"); after != before {
		t.Fatalf("root after Revert = %s, before %s", after, before)
	}
	t.Logf("root before %s, after revert %s", before, p.A.root(t, "a0"))
	if left, err := d.Remaining(context.Background(), f, st); err != nil || left != "" {
		t.Fatalf("Remaining after Revert = %q, %v", left, err)
	}
	expectFast(t, p.A, target)
}

// checkNetemReadBack reads the netem leaf back (latency in ticks).
func checkNetemReadBack(t *testing.T, d *Driver, a *testNS, wantUs uint32) {
	t.Helper()
	qs, err := a.h.QdiscList(a.link(t, "a0"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Type() == "netem" {
			got := netemLatencyUs(q)
			if got < wantUs-1 || got > wantUs+1 {
				t.Fatalf("netem latency read back %dus, want %dus", got, wantUs)
			}
			if Major(q.Attrs().Parent) != TagMajor || q.Attrs().Parent == HandleRoot {
				t.Fatalf("netem parent %s: must be a fault class, never the root", HandleString(q.Attrs().Parent))
			}
			return
		}
	}
	t.Fatal("no netem qdisc on a0")
}

// TestVMPorts covers (b): only the listed remote port is delayed.
func TestVMPorts(t *testing.T) {
	requireVM(t)
	p := newPair(t)
	startServers(t, p.B)
	d := newDriver(t, p.A)
	f := latencyFault("run1.ports", agentapi.Latency{CIDRs: []string{"10.99.1.0/24", "fd99:1::/64"}, Ports: []uint16{7001}, DelayMs: 100})
	st := apply(t, d, f)
	defer d.Revert(context.Background(), f, st)
	expectSlow(t, p.A, target, delay)
	expectSlow(t, p.A, target6, delay)
	expectFast(t, p.A, "10.99.1.2:7002")
	expectFast(t, p.A, "[fd99:1::2]:7002")
	expectFast(t, p.A, other)
}

// TestVMLoss covers (c): 30% loss on 400 UDP probes, within ±10 points;
// the other address loses nothing.
func TestVMLoss(t *testing.T) {
	requireVM(t)
	p := newPair(t)
	s := startServers(t, p.B)
	d := newDriver(t, p.A)
	f := latencyFault("run1.loss", agentapi.Latency{CIDRs: []string{"10.99.1.2/32"}, LossPercent: 30})
	st := apply(t, d, f)
	defer d.Revert(context.Background(), f, st)
	const n = 400
	got := udpReceived(t, p.A, s, "10.99.1.2", n)
	loss := 100 * float64(n-got) / n
	t.Logf("target: %d of %d UDP probes arrived: observed loss %.1f%% (want 30%% ± 10)", got, n, loss)
	if loss < 20 || loss > 40 {
		t.Errorf("observed loss %.1f%%, want 30%% ± 10", loss)
	}
	ctl := udpReceived(t, p.A, s, "10.99.2.2", 100)
	t.Logf("other: %d of 100 UDP probes arrived", ctl)
	if ctl < 99 {
		t.Errorf("other address lost %d of 100 probes", 100-ctl)
	}
}

// TestVMTwoFaultsCompose covers (e): two faults share one HTB root, each
// with its own slot; reverting one leaves the other intact; the root goes
// with the last.
func TestVMTwoFaultsCompose(t *testing.T) {
	requireVM(t)
	p := newPair(t)
	startServers(t, p.B)
	d := newDriver(t, p.A)
	before := p.A.root(t, "a0")
	f1 := latencyFault("run1.one", agentapi.Latency{CIDRs: []string{"10.99.1.0/24"}, DelayMs: 100})
	f2 := latencyFault("run1.two", agentapi.Latency{CIDRs: []string{"10.99.2.0/24"}, DelayMs: 200})
	st1 := apply(t, d, f1)
	st2 := apply(t, d, f2)
	s1, _ := DecodeState(st1)
	s2, _ := DecodeState(st2)
	t.Logf("slots: %s=%d %s=%d; previous roots %s / %s", f1.ID, s1.Interfaces[0].Slot, f2.ID, s2.Interfaces[0].Slot,
		s1.Interfaces[0].Previous, s2.Interfaces[0].Previous)
	if s1.Interfaces[0].Slot == s2.Interfaces[0].Slot {
		t.Fatal("two faults share a slot")
	}
	expectSlow(t, p.A, target, delay)
	expectSlow(t, p.A, other, 2*delay)

	if err := d.Revert(context.Background(), f1, st1); err != nil {
		t.Fatal(err)
	}
	if r := p.A.root(t, "a0"); r.Handle != RootHandle {
		t.Fatalf("root after reverting the first of two faults = %s", r)
	}
	expectFast(t, p.A, target)
	expectSlow(t, p.A, other, 2*delay)
	if left, _ := d.Remaining(context.Background(), f1, st1); left != "" {
		t.Fatalf("first fault remains: %s", left)
	}
	if err := d.Revert(context.Background(), f2, st2); err != nil {
		t.Fatal(err)
	}
	if after := p.A.root(t, "a0"); after != before {
		t.Fatalf("root after both reverts = %s, before %s", after, before)
	}
	expectFast(t, p.A, other)
}

// TestVMPruneAfterCrash covers (f): a fault applied by a driver that is
// then dropped without revert is removed by a new driver's Prune(nil).
func TestVMPruneAfterCrash(t *testing.T) {
	requireVM(t)
	p := newPair(t)
	startServers(t, p.B)
	before := p.A.root(t, "a0")
	d1, err := New(p.A.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := latencyFault("run1.crash", agentapi.Latency{CIDRs: []string{"10.99.1.0/24"}, Ports: []uint16{7001}, DelayMs: 100})
	apply(t, d1, f)
	d1.Close() // "crash": no revert
	expectSlow(t, p.A, target, delay)

	d2 := newDriver(t, p.A)
	removed, err := d2.Prune(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Prune removed %q", removed)
	if len(removed) == 0 {
		t.Fatal("Prune removed nothing")
	}
	if after := p.A.root(t, "a0"); after != before {
		t.Fatalf("root after Prune = %s, before %s", after, before)
	}
	expectFast(t, p.A, target)
	if again, err := d2.Prune(context.Background(), nil); err != nil || len(again) != 0 {
		t.Fatalf("second Prune removed %q, %v", again, err)
	}
}

// TestVMRevertDrainsTheDelayLine streams datagrams through a 200ms delay
// and reverts mid-stream: the packets the netem leaf holds at the revert
// are delivered (the revert waits for them, up to MaxDrain), not dropped.
func TestVMRevertDrainsTheDelayLine(t *testing.T) {
	requireVM(t)
	p := newPair(t)
	s := startServers(t, p.B)
	d := newDriver(t, p.A)
	f := latencyFault("run1.drain", agentapi.Latency{CIDRs: []string{"10.99.1.0/24"}, DelayMs: 200})
	st := apply(t, d, f)
	var c net.Conn
	p.A.do(t, func() {
		var err error
		if c, err = net.Dial("udp4", "10.99.1.2:7003"); err != nil {
			t.Fatal(err)
		}
	})
	defer c.Close()
	ctr := s.udp["10.99.1.2"]
	before := ctr.Load()
	sent := 0
	var took time.Duration
	var inFlight int64
	begin := time.Now()
	for time.Since(begin) < 800*time.Millisecond {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		sent++
		time.Sleep(2 * time.Millisecond)
		if took == 0 && time.Since(begin) > 400*time.Millisecond {
			inFlight = int64(sent) - (ctr.Load() - before)
			start := time.Now()
			if err := d.Revert(context.Background(), f, st); err != nil {
				t.Fatalf("Revert: %v", err)
			}
			took = time.Since(start)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for ctr.Load()-before < int64(sent) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := ctr.Load() - before
	t.Logf("sent %d datagrams, %d received; %d were on their delay when the revert started, which took %s", sent, got, inFlight, took)
	if inFlight < 10 {
		t.Fatalf("only %d datagrams in the delay line at the revert: the test did not exercise the drain", inFlight)
	}
	if got != int64(sent) {
		t.Errorf("the revert dropped %d of the %d datagrams on their delay", int64(sent)-got, inFlight)
	}
	if took > MaxDrain+500*time.Millisecond {
		t.Errorf("revert took %s, more than MaxDrain (%s)", took, MaxDrain)
	}
	if left, err := d.Remaining(context.Background(), f, st); err != nil || left != "" {
		t.Errorf("Remaining after Revert = %q, %v", left, err)
	}
}

// BenchmarkApplyRevert times Apply and Revert of a fault with two CIDRs
// and one port (4 filters) on a fresh interface.
func BenchmarkApplyRevert(b *testing.B) {
	requireVM(b)
	p := newPair(b)
	d, err := New(p.A.Path, nil) // no test logger: time the driver, not the log
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	f := latencyFault("run1.bench", agentapi.Latency{CIDRs: []string{"10.99.1.0/24", "fd99:1::/64"}, Ports: []uint16{7001}, DelayMs: 100})
	prep, err := d.Prepare(context.Background(), ptr(f))
	if err != nil {
		b.Fatal(err)
	}
	var applyT, revertT time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		st, err := d.Apply(context.Background(), f, prep)
		t1 := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Revert(context.Background(), f, st); err != nil {
			b.Fatal(err)
		}
		applyT += t1.Sub(t0)
		revertT += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(applyT.Microseconds())/float64(n), "apply-µs/op")
	b.ReportMetric(float64(revertT.Microseconds())/float64(n), "revert-µs/op")
}

// TestVMMarksExpireInKernel: with nobody renewing, the kernel drops the
// fault's marking set elements one lease plus the margin after the apply
// and the delay ends by itself (the classes stay, idle); a renewal in
// time moves that; a renewal after the expiry, or after the table was
// deleted behind the driver's back, finds the fault not in place.
func TestVMMarksExpireInKernel(t *testing.T) {
	requireVM(t)
	p := newPair(t)
	startServers(t, p.B)
	d := newDriver(t, p.A)
	if how, m := d.SelfExpiry(); how != agentapi.SelfExpiryKernel || m != nftexpiry.Margin {
		t.Fatalf("SelfExpiry = %s, %v", how, m)
	}
	f := latencyFault("run1.expire", agentapi.Latency{CIDRs: []string{"10.99.1.0/24", "fd99:1::/64"}, Ports: []uint16{7001}, DelayMs: 100})
	f.LeaseSeconds = 1
	applied := time.Now()
	st := apply(t, d, f)
	expectSlow(t, p.A, target, delay)
	renewing := time.Since(applied)
	until := time.Now().Add(time.Second)
	left, err := d.Renew(context.Background(), f, st, until)
	if err != nil || left == "" {
		t.Fatalf("Renew in time = %q, %v", left, err)
	}
	t.Logf("renewed %v after the apply began (lease 1s + margin), taking %v: %s", renewing.Round(time.Millisecond),
		time.Since(applied.Add(renewing)).Round(time.Millisecond), left)
	// Slow until the renewed lease ends, fast within its margin after.
	for time.Until(until) > 300*time.Millisecond {
		if rtt := minConnectRTT(t, p.A, target, 1); rtt < delay {
			t.Fatalf("connect RTT %v %v before the renewed lease ends", rtt, time.Until(until))
		}
	}
	var fastAt time.Time
	for end := until.Add(nftexpiry.Margin + time.Second); time.Now().Before(end); {
		if minConnectRTT(t, p.A, target, 1) < fast {
			fastAt = time.Now()
			break
		}
	}
	if fastAt.IsZero() {
		t.Fatalf("still delayed %v after the renewed lease ended", time.Since(until))
	}
	t.Logf("delay ended %v after the renewed lease (margin %v)", fastAt.Sub(until).Round(time.Millisecond), nftexpiry.Margin)
	expectFast(t, p.A, target)
	expectFast(t, p.A, target6)
	if left, err := d.Renew(context.Background(), f, st, time.Now().Add(time.Minute)); err != nil || left != "" {
		t.Fatalf("Renew after the kernel expired the marks = %q, %v", left, err)
	}
	if left, err := d.Remaining(context.Background(), f, st); err != nil || !strings.Contains(left, "netem") || !strings.Contains(left, "nftables table") {
		t.Fatalf("Remaining after the expiry = %q, %v (the idle class and the empty table stay until reverted)", left, err)
	}
	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatal(err)
	}
	if left, err := d.Remaining(context.Background(), f, st); err != nil || left != "" {
		t.Fatalf("Remaining after Revert = %q, %v", left, err)
	}

	// The table deleted behind the driver's back: not in place.
	f.ID, f.LeaseSeconds = "run1.flushed", 60
	st = apply(t, d, f)
	if err := d.removeTable(TableName(f.ID)); err != nil {
		t.Fatal(err)
	}
	if left, err := d.Renew(context.Background(), f, st, time.Now().Add(time.Minute)); err != nil || left != "" {
		t.Fatalf("Renew without the table = %q, %v", left, err)
	}
	expectFast(t, p.A, target)
	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatal(err)
	}
}
