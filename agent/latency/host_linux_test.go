package latency

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// skipIfNetem skips host tests that are about a kernel WITHOUT netem.
func skipIfNetem(t *testing.T) {
	t.Helper()
	if os.Getenv("CHAOSD_IN_VM") == "1" {
		t.Skip("about kernels without netem; the VM kernel has it")
	}
}

// TestRootHostNoNetem: on the host kernel (no sch_netem) Probe says so
// plainly and Apply fails cleanly, leaving the interface's root qdisc as
// it was and nothing tagged behind.
func TestRootHostNoNetem(t *testing.T) {
	requireRoot(t)
	skipIfNetem(t)
	p := newPair(t)
	d := newDriver(t, p.A)

	err := d.Probe(context.Background())
	if err == nil {
		t.Skip("this kernel has netem: the no-netem path cannot be checked here")
	}
	if !strings.Contains(err.Error(), "netem qdisc not supported by this kernel (") || !strings.Contains(err.Error(), "no sch_netem") {
		t.Fatalf("Probe error does not say netem is missing plainly: %v", err)
	}
	t.Logf("Probe: %v", err)
	if _, err := p.A.h.LinkByName(ProbeLink); err == nil {
		t.Fatalf("probe link %s left behind", ProbeLink)
	}

	before := p.A.root(t, "a0")
	f := latencyFault("run1.lat", agentapi.Latency{CIDRs: []string{"10.99.1.0/24", "fd99:1::/64"}, DelayMs: 100})
	st, err := d.Prepare(context.Background(), ptr(f))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if _, err := d.Apply(context.Background(), f, st); err == nil {
		t.Fatal("Apply succeeded without netem")
	} else {
		t.Logf("Apply: %v", err)
	}
	if after := p.A.root(t, "a0"); after != before {
		t.Fatalf("root qdisc after failed Apply = %s, before %s", after, before)
	}
	if err := d.Revert(context.Background(), f, st); err != nil {
		t.Fatalf("Revert after failed Apply: %v", err)
	}
	if removed, err := d.Prune(context.Background(), nil); err != nil || len(removed) != 0 {
		t.Fatalf("Prune after failed Apply removed %v, err %v", removed, err)
	}
}

// TestRootHostRefusesConfiguredRoot: a root qdisc someone configured is
// never replaced.
func TestRootHostRefusesConfiguredRoot(t *testing.T) {
	requireRoot(t)
	p := newPair(t)
	d := newDriver(t, p.A)
	tbf := &netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: p.A.link(t, "a0").Attrs().Index, Parent: netlink.HANDLE_ROOT},
		Rate: 125_000_000, Limit: 100_000, Buffer: 10_000}
	if err := p.A.h.QdiscAdd(tbf); err != nil {
		t.Fatalf("add tbf: %v", err)
	}
	before := p.A.root(t, "a0")
	f := latencyFault("run1.lat", agentapi.Latency{CIDRs: []string{"10.99.1.0/24"}, DelayMs: 100})
	_, err := d.Prepare(context.Background(), ptr(f))
	if err == nil || !strings.Contains(err.Error(), "interface a0 has a configured root qdisc tbf") {
		t.Fatalf("Prepare over tbf: %v", err)
	}
	st, _ := json.Marshal(State{Interfaces: []IfaceState{{Name: "a0", CIDRs: []string{"10.99.1.0/24"}}}})
	if _, err := d.Apply(context.Background(), f, st); err == nil || !strings.Contains(err.Error(), "refusing to replace it") {
		t.Fatalf("Apply over tbf: %v", err)
	}
	if after := p.A.root(t, "a0"); after != before {
		t.Fatalf("root changed: %s → %s", before, after)
	}
}

// TestRootHostInterfaceSelection: CIDRs map to the interface their route
// uses; local and loopback destinations are refused.
func TestRootHostInterfaceSelection(t *testing.T) {
	requireRoot(t)
	p := newPair(t)
	d := newDriver(t, p.A)
	tests := []struct {
		name    string
		l       agentapi.Latency
		want    string
		wantErr string
	}{
		{name: "routed v4 and v6", l: agentapi.Latency{CIDRs: []string{"10.99.1.0/24", "fd99:1::/64"}, DelayMs: 1}, want: "a0=10.99.1.0/24,fd99:1::/64"},
		{name: "loopback", l: agentapi.Latency{CIDRs: []string{"127.0.0.0/8"}, DelayMs: 1}, wantErr: "latency.cidrs[0]: 127.0.0.0/8 is local"},
		{name: "own address", l: agentapi.Latency{CIDRs: []string{"10.99.2.0/24", "10.99.0.1/32"}, DelayMs: 1}, wantErr: "latency.cidrs[1]: 10.99.0.1/32 is local"},
		{name: "no route", l: agentapi.Latency{CIDRs: []string{"192.0.2.0/24"}, DelayMs: 1}, wantErr: "latency.cidrs[0]: no route to 192.0.2.0/24"},
		{name: "named loopback", l: agentapi.Latency{Interface: "lo", CIDRs: []string{"10.99.1.0/24"}, DelayMs: 1}, wantErr: "latency: interface lo is a loopback interface"},
		{name: "missing interface", l: agentapi.Latency{Interface: "nope0", CIDRs: []string{"10.99.1.0/24"}, DelayMs: 1}, wantErr: "latency.interface: nope0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := d.Prepare(context.Background(), ptr(latencyFault("run1.x", tt.l)))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, _ := DecodeState(raw)
			var got []string
			for _, is := range st.Interfaces {
				got = append(got, is.Name+"="+strings.Join(is.CIDRs, ","))
				if is.Previous.Kind == "" || is.Previous.Handle != 0 {
					t.Errorf("previous root of %s = %s, want a kernel default", is.Name, is.Previous)
				}
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("interfaces = %v, want %s", got, tt.want)
			}
		})
	}
}

// TestRootHostPruneLeftoverHTB builds a tagged HTB root with two slots by
// hand (no netem needed: the slots' leaves stay the default pfifo), then
// checks Prune keeps the owned slot, removes the other, and finally
// restores the kernel's default root.
func TestRootHostPruneLeftoverHTB(t *testing.T) {
	requireRoot(t)
	p := newPair(t)
	d := newDriver(t, p.A)
	before := p.A.root(t, "a0")
	idx := p.A.link(t, "a0").Attrs().Index
	if err := p.A.h.QdiscReplace(htbRoot(idx)); err != nil {
		t.Fatal(err)
	}
	if err := p.A.h.ClassAdd(htbClass(idx, Class{Handle: DefaultHandle, Parent: RootHandle, RateBytes: UnshapedBytesPerSecond})); err != nil {
		t.Fatal(err)
	}
	for _, slot := range []int{2, 3} {
		if err := p.A.h.ClassAdd(htbClass(idx, Class{Handle: ClassHandle(slot), Parent: RootHandle, RateBytes: 125_000})); err != nil {
			t.Fatal(err)
		}
		if err := d.addMarkFilter(idx, MarkFilter(slot)); err != nil {
			t.Fatalf("add mark filter of slot %d: %v", slot, err)
		}
	}
	// An IPv6 address filter of an earlier agent at the reserved prio.
	legacy := &netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: RootHandle, Priority: 5, Protocol: 0x86DD},
		ClassId: ClassHandle(2), Sel: &netlink.TcU32Sel{Flags: netlink.TC_U32_TERMINAL, Keys: []netlink.TcU32Key{{Off: 24, Mask: 0xFFFF0000, Val: 0xFD990000}}}}
	if err := p.A.h.FilterAdd(legacy); err != nil {
		t.Fatal(err)
	}
	// Read the filters back: the mark matches must survive the round trip
	// (a kernel without CONFIG_CLS_U32_MARK would drop them).
	marks, err := d.markedFilters(idx)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case len(marks) == 0:
		// The host kernel is built without CONFIG_CLS_U32_MARK (and
		// without netem): Probe refuses latency faults here.
		t.Log("this kernel's u32 classifier does not match marks (no CONFIG_CLS_U32_MARK)")
	case marks[4] != [2]uint32{Mark(2), MarkMask} || marks[6] != [2]uint32{Mark(3), MarkMask}:
		t.Fatalf("mark filters read back: %x", marks)
	}
	// And a leftover marking table of another fault.
	if err := d.installMarks(MarkPlan{Table: TableName("orphan"), Sets: nftexpiry.AddrSets([]netip.Prefix{netip.MustParsePrefix("10.99.1.0/24")}, "d4_0", "d6_0"),
		Chains: []MarkChain{{Name: "if0", Priority: MarkPriority + 1, Index: idx, Slot: 2, Rules: []MarkRule{{AddrSet: "d4_0"}}}}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	keep, _ := json.Marshal(State{Interfaces: []IfaceState{{Name: "a0", Slot: 3}}, Table: TableName("kept")})
	removed, err := d.Prune(context.Background(), []json.RawMessage{keep})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0] != "nftables table "+TableName("orphan") || !strings.Contains(removed[1], "a0: latency slot 2") {
		t.Fatalf("Prune(keep slot 3) removed %q", removed)
	}
	cur, err := d.current(p.A.link(t, "a0"))
	if err != nil {
		t.Fatal(err)
	}
	if !cur.Ours() || len(faultClasses(cur)) != 1 || faultClasses(cur)[0] != 3 {
		t.Fatalf("after Prune(keep): root %s, slots %v", cur.Root, faultClasses(cur))
	}
	left, err := d.Remaining(context.Background(), agentapi.Fault{ID: "x"}, keep)
	if err != nil || !strings.Contains(left, "a0: htb class cd00:3") || !strings.Contains(left, "a0: u32 filters prio 6") {
		t.Fatalf("Remaining = %q, %v", left, err)
	}
	removed, err = d.Prune(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || !strings.Contains(removed[1], "kernel default root qdisc restored") {
		t.Fatalf("Prune(nil) removed %q", removed)
	}
	if after := p.A.root(t, "a0"); after != before {
		t.Fatalf("root after Prune = %s, before %s", after, before)
	}
	if left, err := d.Remaining(context.Background(), agentapi.Fault{ID: "x"}, keep); err != nil || left != "" {
		t.Fatalf("Remaining after Prune = %q, %v", left, err)
	}
	// Revert of a fault whose state names a vanished interface is done.
	gone, _ := json.Marshal(State{Interfaces: []IfaceState{{Name: "nope0", Slot: 2}}})
	if err := d.Revert(context.Background(), agentapi.Fault{ID: "x"}, gone); err != nil {
		t.Fatalf("Revert on a missing link: %v", err)
	}
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// TestRootBusyDriverHonoursContext: a call waiting for the driver's lock
// (another latency fault's netlink work) gives up when its context ends.
func TestRootBusyDriverHonoursContext(t *testing.T) {
	requireRoot(t)
	p := newPair(t)
	d := newDriver(t, p.A)
	d.lock <- struct{}{} // another call holds the driver
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	f := latencyFault("run1.busy", agentapi.Latency{CIDRs: []string{"10.99.1.0/24"}, DelayMs: 10})
	for name, call := range map[string]func() error{
		"Prepare": func() error { _, err := d.Prepare(ctx, &f); return err },
		"Apply":   func() error { _, err := d.Apply(ctx, f, nil); return err },
		"Revert":  func() error { return d.Revert(ctx, f, nil) },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "busy") {
			t.Errorf("%s while the driver is busy: %v, want a context error", name, err)
		}
	}
	d.release()
}
