package latency

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestParse(t *testing.T) {
	ok := func(l agentapi.Latency) *agentapi.Latency {
		if l.CIDRs == nil {
			l.CIDRs = []string{"10.1.0.0/16"}
		}
		return &l
	}
	tests := []struct {
		name    string
		in      *agentapi.Latency
		want    Spec
		wantErr string
	}{
		{name: "nil", in: nil, wantErr: "latency: required"},
		{name: "no delay no loss", in: ok(agentapi.Latency{}), wantErr: "latency.delayMs: must be > 0"},
		{name: "negative delay", in: ok(agentapi.Latency{DelayMs: -1}), wantErr: "latency.delayMs: must be > 0"},
		{name: "huge delay", in: ok(agentapi.Latency{DelayMs: 60001}), wantErr: "latency.delayMs: 60001 exceeds"},
		{name: "jitter above delay", in: ok(agentapi.Latency{DelayMs: 10, JitterMs: 11}), wantErr: "latency.jitterMs: 11 must not exceed delayMs (10)"},
		{name: "negative jitter", in: ok(agentapi.Latency{DelayMs: 10, JitterMs: -1}), wantErr: "latency.jitterMs"},
		{name: "correlation", in: ok(agentapi.Latency{DelayMs: 10, CorrelationPercent: 101}), wantErr: "latency.correlationPercent: 101 must be within 0-100"},
		{name: "loss", in: ok(agentapi.Latency{DelayMs: 10, LossPercent: 100.5}), wantErr: "latency.lossPercent: 100.5 must be within 0-100"},
		{name: "loss negative", in: ok(agentapi.Latency{DelayMs: 10, LossPercent: -3}), wantErr: "latency.lossPercent"},
		{name: "no cidrs", in: &agentapi.Latency{DelayMs: 10}, wantErr: "latency.cidrs: at least one"},
		{name: "bad cidr", in: ok(agentapi.Latency{DelayMs: 10, CIDRs: []string{"10.0.0.0/8", "nope"}}), wantErr: "latency.cidrs[1]: \"nope\" is not a CIDR"},
		{name: "port zero", in: ok(agentapi.Latency{DelayMs: 10, Ports: []uint16{80, 0}}), wantErr: "latency.ports[1]: 0 is not a port number"},
		{name: "bad interface", in: ok(agentapi.Latency{DelayMs: 10, Interface: "eth0/x"}), wantErr: "latency.interface"},
		{name: "long interface", in: ok(agentapi.Latency{DelayMs: 10, Interface: "abcdefghijklmnop"}), wantErr: "latency.interface"},
		{name: "tiny rate", in: ok(agentapi.Latency{DelayMs: 10, RateBytesPerSecond: 10}), wantErr: "latency.rateBytesPerSecond"},
		{name: "too many CIDRs", in: ok(agentapi.Latency{DelayMs: 10, CIDRs: manyCIDRs(65)}), wantErr: "latency.cidrs: 65 CIDRs, at most 64"},
		{
			name: "full, masking, dedup, bare address, mapped v4",
			in: &agentapi.Latency{Interface: "eth0", CIDRs: []string{"10.1.2.3/16", "10.1.0.0/16", "192.0.2.7", "2001:db8::1/32", "::ffff:198.51.100.0/120"},
				Ports: []uint16{8082, 8082, 8084}, DelayMs: 100.5, JitterMs: 10, CorrelationPercent: 25, LossPercent: 1.5, RateBytesPerSecond: 125000},
			want: Spec{Interface: "eth0", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.0.2.7/32"),
				netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.0/24")},
				Ports: []uint16{8082, 8084}, DelayUs: 100500, JitterUs: 10000, Correlation: 25, Loss: 1.5, RateBytes: 125000},
		},
		{
			name: "loss only",
			in:   ok(agentapi.Latency{LossPercent: 30}),
			want: Spec{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Loss: 30},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if string(g) != string(w) {
				t.Fatalf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func manyCIDRs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, netip.AddrFrom4([4]byte{10, byte(i), 0, 0}).String()+"/16")
	}
	return out
}

func TestPlanFault(t *testing.T) {
	eth0 := Link{Name: "eth0", Index: 2, TxQLen: 1000}
	spec := func(l agentapi.Latency) Spec {
		s, err := Parse(&l)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := spec(agentapi.Latency{CIDRs: []string{"10.1.0.0/16", "2001:db8::/32"}, DelayMs: 100, JitterMs: 10, CorrelationPercent: 25, LossPercent: 1})
	ports := spec(agentapi.Latency{CIDRs: []string{"10.1.0.0/16"}, Ports: []uint16{8082}, DelayMs: 50, RateBytesPerSecond: 125000})
	ours := Qdisc{Kind: "htb", Handle: RootHandle, Parent: HandleRoot}
	tests := []struct {
		name     string
		link     Link
		cur      Current
		spec     Spec
		wantSlot int
		wantErr  string
	}{
		{name: "fresh over fq_codel", link: eth0, cur: Current{Root: Qdisc{Kind: "fq_codel", Parent: HandleRoot}}, spec: base, wantSlot: 2},
		{name: "ports and rate over noqueue", link: eth0, cur: Current{Root: Qdisc{Kind: "noqueue", Parent: HandleRoot}}, spec: ports, wantSlot: 2},
		{name: "compose into our root", link: eth0, cur: Current{Root: ours, Classes: []uint32{DefaultHandle, ClassHandle(2), ClassHandle(4)},
			Qdiscs: []uint32{NetemHandle(2), NetemHandle(4)}, FilterPrios: []uint16{4, 8}}, spec: base, wantSlot: 3},
		{name: "slot with orphan filters is skipped", link: eth0, cur: Current{Root: ours, Classes: []uint32{DefaultHandle}, FilterPrios: []uint16{5}}, spec: base, wantSlot: 3},
		{name: "loopback", link: Link{Name: "lo", Loopback: true, TxQLen: 1000}, cur: Current{Root: Qdisc{Kind: "noqueue", Parent: HandleRoot}}, spec: base,
			wantErr: "latency: interface lo is a loopback interface"},
		{name: "configured tbf", link: eth0, cur: Current{Root: Qdisc{Kind: "tbf", Handle: MakeHandle(0x8001, 0), Parent: HandleRoot}}, spec: base,
			wantErr: "latency: interface eth0 has a configured root qdisc tbf 8001: root (not a kernel default); refusing to replace it"},
		{name: "foreign qdisc in tag range", link: eth0, cur: Current{Root: Qdisc{Kind: "tbf", Handle: RootHandle, Parent: HandleRoot}}, spec: base,
			wantErr: "latency: interface eth0 has root qdisc tbf cd00: root in the agent's tagged range"},
		{name: "txqueuelen 0", link: Link{Name: "tun0"}, cur: Current{Root: Qdisc{Kind: "noqueue", Parent: HandleRoot}}, spec: base,
			wantErr: "latency: interface tun0 has txqueuelen 0"},
		{name: "all slots used", link: eth0, cur: Current{Root: ours, Classes: allSlots()}, spec: base, wantErr: "latency: interface eth0: all 254 latency slots are in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanFault("run1.lat", tt.link, tt.cur, tt.spec, tt.spec.Prefixes)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Slot != tt.wantSlot {
				t.Fatalf("slot = %d, want %d", p.Slot, tt.wantSlot)
			}
			if p.CreateRoot == tt.cur.Ours() {
				t.Fatalf("CreateRoot = %v with root %s", p.CreateRoot, tt.cur.Root)
			}
			// Never a bare root netem: netem only ever hangs below a fault class.
			if p.Netem.Parent != ClassHandle(p.Slot) || p.Class.Parent != RootHandle {
				t.Fatalf("netem parent %s, class parent %s", HandleString(p.Netem.Parent), HandleString(p.Class.Parent))
			}
			if f := p.Filter; f.ClassID != p.Class.Handle || f.Mark != Mark(p.Slot) || f.MarkMask != MarkMask || f.Mark&^f.MarkMask != 0 {
				t.Fatalf("filter %q steers to %s", f.Desc, HandleString(f.ClassID))
			}
			golden(t, filepath.Join("testdata", strings.ReplaceAll(tt.name, " ", "_")+".golden"), p.String())
		})
	}
}

func TestPlanMarks(t *testing.T) {
	spec := func(l agentapi.Latency) Spec {
		s, err := Parse(&l)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name   string
		spec   Spec
		ifaces []IfaceState
	}{
		{name: "marks two interfaces", spec: spec(agentapi.Latency{CIDRs: []string{"10.1.0.0/16", "10.2.0.0/16", "2001:db8::/32", "192.0.2.0/24"}, DelayMs: 100}),
			ifaces: []IfaceState{{Name: "eth0", Index: 2, Slot: 2, CIDRs: []string{"10.1.0.0/16", "10.2.0.0/16", "2001:db8::/32"}},
				{Name: "eth1", Index: 3, Slot: 5, CIDRs: []string{"192.0.2.0/24"}}}},
		{name: "marks with ports", spec: spec(agentapi.Latency{CIDRs: []string{"10.1.0.0/16"}, Ports: []uint16{8084, 8082}, DelayMs: 50}),
			ifaces: []IfaceState{{Name: "eth0", Index: 2, Slot: 3, CIDRs: []string{"10.1.0.0/16"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanMarks("run1.lat", tt.spec, tt.ifaces)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.Table, TablePrefix) || p.Table != TableName("run1.lat") {
				t.Fatalf("table %q", p.Table)
			}
			for i, c := range p.Chains {
				if c.Priority <= MarkPriority || c.Priority > MarkPriority+LastSlot {
					t.Fatalf("chain %s priority %d", c.Name, c.Priority)
				}
				if i > 0 && (c.Priority < p.Chains[i-1].Priority) != (c.Slot > p.Chains[i-1].Slot) {
					t.Fatalf("a lower slot must run later (its mark wins): %+v", p.Chains)
				}
			}
			golden(t, filepath.Join("testdata", strings.ReplaceAll(tt.name, " ", "_")+".golden"), p.String())
		})
	}
	if _, err := PlanMarks("x", Spec{}, []IfaceState{{Name: "eth0", Slot: 0}}); err == nil {
		t.Fatal("an interface without a slot was planned")
	}
	if TableName("a.b") == TableName("a_b") || strings.HasPrefix(TableName("x"), "chaosd_") {
		t.Fatal("table names must be distinct and never the partition driver's")
	}
}

func allSlots() []uint32 {
	var cs []uint32
	for s := FirstSlot; s <= LastSlot; s++ {
		cs = append(cs, ClassHandle(s))
	}
	return cs
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(want) != got {
		t.Fatalf("plan differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestHandlesStayInTag(t *testing.T) {
	for s := FirstSlot; s <= LastSlot; s++ {
		for _, h := range []uint32{ClassHandle(s), NetemHandle(s)} {
			if m := Major(h); m < TagMajor || m > TagMajorLast {
				t.Fatalf("slot %d handle %s outside the tag", s, HandleString(h))
			}
		}
		v4, v6 := FilterPrios(s)
		if SlotOfPrio(v4) != s || SlotOfPrio(v6) != s {
			t.Fatalf("slot %d prios %d/%d map back to %d/%d", s, v4, v6, SlotOfPrio(v4), SlotOfPrio(v6))
		}
	}
	if SlotOfPrio(1) != 0 || SlotOfPrio(2) != 0 {
		t.Fatal("prios below the first slot must map to no slot")
	}
}

func TestStateOwned(t *testing.T) {
	a, _ := json.Marshal(State{Interfaces: []IfaceState{{Name: "eth0", Slot: 2}, {Name: "eth1", Slot: 3}, {Name: "eth2"}}})
	b, _ := json.Marshal(State{Interfaces: []IfaceState{{Name: "eth0", Slot: 5}}})
	// A pod-scoped fault's slot is on the pod's eth0, not the node's.
	pod, _ := json.Marshal(State{Interfaces: []IfaceState{{Name: "eth0", Slot: 7}}, NetNS: &kubepod.NSID{Dev: 4, Ino: 4026532000}})
	o := Owned([]json.RawMessage{a, b, pod, json.RawMessage(`{bad`), nil})
	if !o["eth0"][2] || !o["eth0"][5] || !o["eth1"][3] || len(o["eth2"]) != 0 || o["eth1"][2] || o["eth0"][7] {
		t.Fatalf("owned = %v", o)
	}
	if _, err := DecodeState(json.RawMessage(`{"interfaces":[{"name":"x","slot":999}]}`)); err == nil {
		t.Fatal("slot 999 accepted")
	}
}
