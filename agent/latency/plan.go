// Package latency turns a latency fault into tc and nftables state: netem
// delay, jitter and loss applied only to traffic toward the fault's CIDRs
// (and optional remote ports), never to the rest of the interface's
// traffic, and ending by itself in the kernel when nobody renews it.
//
// The package is split like agent/partition: a pure planner (Parse,
// PlanFault and PlanMarks, unit-tested without root) describes the
// qdiscs, classes and mark filter for one fault on one interface given
// that interface's current tc state, and the nftables table that marks
// the fault's packets; a thin Linux applier (Driver, implementing the
// agent's Driver and SelfExpiring interfaces) reads that state, installs
// the plan through netlink in a chosen network namespace, renews and
// reverts it and prunes leftovers.
//
// Layout on an interface (see README.md for the picture):
//
//	root  htb cd00:  default class cd00:1
//	  class cd00:1   unshaped (100 Gbit/s): all traffic no filter matches
//	  class cd00:N   the fault in slot N (2-255): rate = RateBytesPerSecond or unshaped
//	    qdisc netem (cd00+N):   delay, jitter, correlation, loss, limit 10000
//	  filter on cd00: at prio 2N: u32 match mark N<<24/0xff000000 → cd00:N
//
// and, per fault, an nftables table cdlat_<id> whose postrouting chains
// set those mark bits on packets leaving through the interface toward the
// fault's CIDRs (and ports), looked up in sets whose elements time out
// (agent/nftexpiry): one lease plus nftexpiry.Margin after the apply or
// the last renewal the kernel drops them, nothing is marked any more,
// nothing reaches the netem class, and the delay ends even when the agent
// is dead. The idle class left behind is removed at the next start-up.
//
// The tag: every handle the agent creates has its major number in
// 0xCD00-0xCDFF (root cd00:, netem leaves cd02:-cdff:); an HTB root with
// handle cd00: is the agent's and Prune removes the fault classes in it
// that no active fault owns.
//
// Composition: faults on one interface share the root, each in its own
// slot (class + netem + filter prios); reverting one removes only its slot,
// and the root goes with the last slot. Where two faults' CIDRs overlap,
// the lower slot (lower filter prio) wins.
//
// Previous qdisc: the root is replaced only when the interface's current
// root is a kernel default (handle 0:, e.g. noqueue, pfifo_fast, fq_codel,
// mq, or the agent's own cd00: root). Deleting our root makes the kernel
// reinstall its default, so revert restores the previous state exactly. A
// root someone configured (any other handle: tbf, htb, fq_codel added by a
// tool, …) is refused with an error naming it; the agent never overwrites
// another tool's shaping.
package latency

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// Tag: handle majors the agent uses.
const (
	// TagMajor is the major number of the agent's HTB root (cd00:).
	TagMajor uint16 = 0xCD00
	// TagMajorLast is the last major number in the tagged range; netem
	// leaves use TagMajor+slot.
	TagMajorLast uint16 = 0xCDFF
	// DefaultMinor is the minor of the unshaped default class (cd00:1).
	DefaultMinor uint16 = 1
	// FirstSlot and LastSlot bound fault slots: class cd00:N, netem
	// (cd00+N):, filter prios 2N and 2N+1.
	FirstSlot = 2
	LastSlot  = 255
)

// Limits on CIDRs and ports are shared with the spec validator.
var (
	MaxCIDRs = agentapi.LatencyLimits.MaxCIDRs
	MaxPorts = agentapi.LatencyLimits.MaxPorts
)

// Limits.
const (
	MaxDelayMs = 60_000
	// NetemLimit is the netem queue length in packets: enough for 100 ms
	// of a busy 10 Gbit/s flow of large packets, and far above the kernel's
	// default of 1000 which drops at modest rates with long delays.
	NetemLimit = 10_000
	// UnshapedBytesPerSecond is the rate of classes that must not shape
	// (100 Gbit/s), above any link the agent runs on.
	UnshapedBytesPerSecond uint64 = 100_000_000_000 / 8
	// MinRateBytesPerSecond keeps HTB's buffers sane.
	MinRateBytesPerSecond = 1250 // 10 kbit/s
)

// HandleRoot is TC_H_ROOT, the parent of a root qdisc.
const HandleRoot uint32 = 0xFFFFFFFF

// MakeHandle builds a tc handle from major and minor.
func MakeHandle(major, minor uint16) uint32 { return uint32(major)<<16 | uint32(minor) }

// Major and Minor split a tc handle.
func Major(h uint32) uint16 { return uint16(h >> 16) }

// Minor returns the minor number of a tc handle.
func Minor(h uint32) uint16 { return uint16(h) }

// HandleString renders a handle as tc does ("cd00:5", "cd00:").
func HandleString(h uint32) string {
	if Minor(h) == 0 {
		return fmt.Sprintf("%x:", Major(h))
	}
	return fmt.Sprintf("%x:%x", Major(h), Minor(h))
}

// Handles of the agent's objects.
var (
	RootHandle    = MakeHandle(TagMajor, 0)
	DefaultHandle = MakeHandle(TagMajor, DefaultMinor)
)

// ClassHandle is the HTB class of a slot.
func ClassHandle(slot int) uint32 { return MakeHandle(TagMajor, uint16(slot)) }

// NetemHandle is the netem leaf of a slot.
func NetemHandle(slot int) uint32 { return MakeHandle(TagMajor+uint16(slot), 0) }

// FilterPrios returns the filter priorities a slot owns: its mark filter
// is at the first; the second is reserved (earlier agents put their IPv6
// address filters there; revert and Prune remove both).
func FilterPrios(slot int) (v4, v6 uint16) { return uint16(2 * slot), uint16(2*slot + 1) }

// SlotOfPrio maps a filter priority back to its slot (0 if none).
func SlotOfPrio(prio uint16) int {
	s := int(prio / 2)
	if s < FirstSlot || s > LastSlot {
		return 0
	}
	return s
}

// EthPAll is the protocol of the mark filters: every packet (ETH_P_ALL).
const EthPAll uint16 = 0x0003

// Mark bits. A latency fault's packets carry its slot in bits 24-31 of
// skb->mark, set by the fault's nftables chain (the other bits are kept)
// and matched by the slot's u32 filter. Other software uses marks too
// (kube-proxy 0x4000/0x8000, Cilium 0x0f00, Calico from 0x10000 up, ...);
// the top byte is the least used, and the bits are only ever set on
// packets to a fault's CIDRs, in postrouting, after routing decisions.
const (
	MarkShift        = 24
	MarkMask  uint32 = 0xFF000000
)

// Mark is the mark value of a slot (under MarkMask).
func Mark(slot int) uint32 { return uint32(slot) << MarkShift }

// L4 protocols.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Spec is a validated latency fault.
type Spec struct {
	Interface   string // "" = the interfaces the CIDRs are routed through
	Prefixes    []netip.Prefix
	Ports       []uint16
	DelayUs     uint32
	JitterUs    uint32
	Correlation float64 // percent, delay and loss
	Loss        float64 // percent
	RateBytes   uint64  // 0 = unshaped
}

// Parse validates the wire form. Errors name the offending field.
func Parse(l *agentapi.Latency) (Spec, error) {
	if l == nil {
		return Spec{}, errors.New("latency: required for kind latency")
	}
	var s Spec
	if l.Interface != "" {
		if len(l.Interface) > 15 || strings.ContainsAny(l.Interface, "/: \t\n") || l.Interface == "." || l.Interface == ".." {
			return Spec{}, fmt.Errorf("latency.interface: %q is not a valid interface name", l.Interface)
		}
		s.Interface = l.Interface
	}
	finite := func(field string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("latency.%s: must be a finite number", field)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"delayMs", l.DelayMs}, {"jitterMs", l.JitterMs}, {"correlationPercent", l.CorrelationPercent}, {"lossPercent", l.LossPercent}} {
		if err := finite(f.name, f.v); err != nil {
			return Spec{}, err
		}
	}
	switch {
	case l.DelayMs < 0:
		return Spec{}, errors.New("latency.delayMs: must be > 0")
	case l.DelayMs == 0 && l.LossPercent == 0:
		return Spec{}, errors.New("latency.delayMs: must be > 0 (or set lossPercent for a loss-only fault)")
	case l.DelayMs > MaxDelayMs:
		return Spec{}, fmt.Errorf("latency.delayMs: %v exceeds the maximum of %d", l.DelayMs, MaxDelayMs)
	}
	if l.JitterMs < 0 {
		return Spec{}, errors.New("latency.jitterMs: must be >= 0")
	}
	if l.JitterMs > l.DelayMs {
		// netem clamps negative delays to 0, so jitter beyond the delay
		// would skew the distribution instead of widening it.
		return Spec{}, fmt.Errorf("latency.jitterMs: %v must not exceed delayMs (%v)", l.JitterMs, l.DelayMs)
	}
	if l.CorrelationPercent < 0 || l.CorrelationPercent > 100 {
		return Spec{}, fmt.Errorf("latency.correlationPercent: %v must be within 0-100", l.CorrelationPercent)
	}
	if l.LossPercent < 0 || l.LossPercent > 100 {
		return Spec{}, fmt.Errorf("latency.lossPercent: %v must be within 0-100", l.LossPercent)
	}
	s.DelayUs = uint32(math.Round(l.DelayMs * 1000))
	s.JitterUs = uint32(math.Round(l.JitterMs * 1000))
	s.Correlation = l.CorrelationPercent
	s.Loss = l.LossPercent
	if l.RateBytesPerSecond != 0 && l.RateBytesPerSecond < MinRateBytesPerSecond {
		return Spec{}, fmt.Errorf("latency.rateBytesPerSecond: %d is below the minimum of %d", l.RateBytesPerSecond, MinRateBytesPerSecond)
	}
	if l.RateBytesPerSecond > UnshapedBytesPerSecond {
		return Spec{}, fmt.Errorf("latency.rateBytesPerSecond: %d exceeds the maximum of %d", l.RateBytesPerSecond, UnshapedBytesPerSecond)
	}
	s.RateBytes = l.RateBytesPerSecond

	nt, err := agentapi.ParseNetTarget("latency", l.CIDRs, l.Ports, agentapi.LatencyLimits)
	if err != nil {
		return Spec{}, err
	}
	s.Prefixes, s.Ports = nt.Prefixes, nt.Ports
	return s, nil
}

// Link is what the planner needs to know about an interface.
type Link struct {
	Name     string
	Index    int
	Loopback bool
	TxQLen   int
}

// Qdisc describes a qdisc as the kernel reports it.
type Qdisc struct {
	Kind   string `json:"kind"`
	Handle uint32 `json:"handle"`
	Parent uint32 `json:"parent"`
}

// String renders the qdisc as tc does ("fq_codel 0: root").
func (q Qdisc) String() string {
	if q.Kind == "" {
		return "none"
	}
	parent := "root"
	if q.Parent != HandleRoot {
		parent = "parent " + HandleString(q.Parent)
	}
	return fmt.Sprintf("%s %s %s", q.Kind, HandleString(q.Handle), parent)
}

// Current is an interface's tc state as read before planning.
type Current struct {
	// Root is the root qdisc; Kind "" when the kernel reports none.
	Root Qdisc
	// Classes are the handles of classes under Root (when Root is ours).
	Classes []uint32
	// Qdiscs are the handles of every non-root qdisc on the interface.
	Qdiscs []uint32
	// FilterPrios are the priorities of filters attached to Root.
	FilterPrios []uint16
}

// Ours reports whether the root is the agent's HTB.
func (c Current) Ours() bool { return c.Root.Handle == RootHandle && c.Root.Kind == "htb" }

// IsKernelDefault reports whether a root qdisc was installed by the
// kernel (handle 0:) rather than configured by someone: deleting a root
// brings such a qdisc back. A missing root counts as default too.
func IsKernelDefault(q Qdisc) bool { return q.Kind == "" || q.Handle == 0 }

// CheckRoot says whether the agent may shape an interface with this root.
func CheckRoot(iface string, c Current) error {
	if c.Ours() || IsKernelDefault(c.Root) {
		return nil
	}
	if Major(c.Root.Handle) >= TagMajor && Major(c.Root.Handle) <= TagMajorLast {
		return fmt.Errorf("latency: interface %s has root qdisc %s in the agent's tagged range but not the agent's HTB; refusing to touch it (prune or remove it)", iface, c.Root)
	}
	return fmt.Errorf("latency: interface %s has a configured root qdisc %s (not a kernel default); refusing to replace it", iface, c.Root)
}

// Filter is the u32 filter on the root that steers packets carrying a
// slot's mark into the slot's class: (skb->mark & MarkMask) == Mark.
type Filter struct {
	Prio     uint16
	Protocol uint16 // EthPAll
	Mark     uint32
	MarkMask uint32
	ClassID  uint32
	// Desc is the filter in tc-like words, for logs and tests.
	Desc string
}

// Netem is the fault class's leaf.
type Netem struct {
	Handle      uint32
	Parent      uint32
	DelayUs     uint32
	JitterUs    uint32
	Correlation float32
	Loss        float32
	Limit       uint32
}

// Class is an HTB class.
type Class struct {
	Handle    uint32
	Parent    uint32
	RateBytes uint64 // rate = ceil
}

// Plan is the tc state to add for one fault on one interface.
type Plan struct {
	Iface string
	Index int
	Slot  int
	// Previous is the root the interface had (a kernel default, or our
	// own root when composing).
	Previous Qdisc
	// CreateRoot: replace the kernel-default root with our HTB (root
	// handle cd00:, default class cd00:1) before adding the slot.
	CreateRoot   bool
	Root         uint32
	DefaultClass Class
	Class        Class
	Netem        Netem
	Filter       Filter
}

// PlanFault plans one fault's slot on one interface. prefixes are the
// fault's CIDRs routed through this interface (a subset of s.Prefixes).
func PlanFault(faultID string, link Link, cur Current, s Spec, prefixes []netip.Prefix) (Plan, error) {
	if link.Loopback {
		return Plan{}, fmt.Errorf("latency: interface %s is a loopback interface; refusing to shape it", link.Name)
	}
	if len(prefixes) == 0 {
		return Plan{}, fmt.Errorf("latency: no CIDR of fault %s goes through interface %s", faultID, link.Name)
	}
	if err := CheckRoot(link.Name, cur); err != nil {
		return Plan{}, err
	}
	if !cur.Ours() && link.TxQLen == 0 {
		return Plan{}, fmt.Errorf("latency: interface %s has txqueuelen 0: HTB's default class would queue a single packet; refusing", link.Name)
	}
	p := Plan{
		Iface:        link.Name,
		Index:        link.Index,
		Previous:     cur.Root,
		CreateRoot:   !cur.Ours(),
		Root:         RootHandle,
		DefaultClass: Class{Handle: DefaultHandle, Parent: RootHandle, RateBytes: UnshapedBytesPerSecond},
	}
	slot, err := freeSlot(cur)
	if err != nil {
		return Plan{}, fmt.Errorf("latency: interface %s: %w", link.Name, err)
	}
	p.Slot = slot
	rate := s.RateBytes
	if rate == 0 {
		rate = UnshapedBytesPerSecond
	}
	p.Class = Class{Handle: ClassHandle(slot), Parent: RootHandle, RateBytes: rate}
	p.Netem = Netem{
		Handle:      NetemHandle(slot),
		Parent:      ClassHandle(slot),
		DelayUs:     s.DelayUs,
		JitterUs:    s.JitterUs,
		Correlation: float32(s.Correlation),
		Loss:        float32(s.Loss),
		Limit:       NetemLimit,
	}
	p.Filter = MarkFilter(slot)
	return p, nil
}

// freeSlot returns the lowest slot whose class, netem handle and filter
// prios are all unused.
func freeSlot(cur Current) (int, error) {
	used := map[int]bool{}
	if cur.Ours() {
		for _, c := range cur.Classes {
			if Major(c) == TagMajor {
				used[int(Minor(c))] = true
			}
		}
		for _, pr := range cur.FilterPrios {
			used[SlotOfPrio(pr)] = true
		}
	}
	for _, q := range cur.Qdiscs {
		if m := Major(q); m > TagMajor && m <= TagMajorLast {
			used[int(m-TagMajor)] = true
		}
	}
	for s := FirstSlot; s <= LastSlot; s++ {
		if !used[s] {
			return s, nil
		}
	}
	return 0, fmt.Errorf("all %d latency slots are in use", LastSlot-FirstSlot+1)
}

// MarkFilter is the u32 filter of a slot: packets whose mark carries the
// slot go to its class. It matches every protocol and no packet bytes
// (one all-zero key): the fault's CIDRs and ports are matched by its
// nftables chain, which sets the mark.
func MarkFilter(slot int) Filter {
	prio, _ := FilterPrios(slot)
	return Filter{Prio: prio, Protocol: EthPAll, Mark: Mark(slot), MarkMask: MarkMask, ClassID: ClassHandle(slot),
		Desc: fmt.Sprintf("mark 0x%08x 0x%08x", Mark(slot), MarkMask)}
}

// String renders the plan like `tc` commands, for logs and golden tests.
func (p Plan) String() string {
	var b strings.Builder
	if p.CreateRoot {
		fmt.Fprintf(&b, "qdisc replace dev %s root handle %s htb default %x  # was %s\n", p.Iface, HandleString(p.Root), DefaultMinor, p.Previous)
		fmt.Fprintf(&b, "class add dev %s parent %s classid %s htb rate %dbps\n", p.Iface, HandleString(p.DefaultClass.Parent), HandleString(p.DefaultClass.Handle), p.DefaultClass.RateBytes)
	}
	fmt.Fprintf(&b, "class add dev %s parent %s classid %s htb rate %dbps\n", p.Iface, HandleString(p.Class.Parent), HandleString(p.Class.Handle), p.Class.RateBytes)
	fmt.Fprintf(&b, "qdisc add dev %s parent %s handle %s netem delay %dus %dus %g%% loss %g%% limit %d\n", p.Iface,
		HandleString(p.Netem.Parent), HandleString(p.Netem.Handle), p.Netem.DelayUs, p.Netem.JitterUs, p.Netem.Correlation, p.Netem.Loss, p.Netem.Limit)
	f := p.Filter
	fmt.Fprintf(&b, "filter add dev %s parent %s prio %d protocol all u32 match %s flowid %s\n", p.Iface, HandleString(p.Root), f.Prio, f.Desc, HandleString(f.ClassID))
	return b.String()
}

// TablePrefix tags the nftables tables of latency faults (distinct from
// the partition tables' chaosd_, so neither driver's Prune takes the
// other's).
const TablePrefix = "cdlat_"

// TableName is the table of a fault: the prefix, the ID with every
// character outside [A-Za-z0-9_] replaced by '_' (cut to 40), and a
// short hash of the raw ID so distinct IDs never share a table.
func TableName(faultID string) string { return nftexpiry.TableName(TablePrefix, faultID) }

// MarkPriority is the base priority of the marking chains (hook
// postrouting): after NAT (srcnat, 100) and the usual filter and mangle
// chains, so the bits go on as the packet leaves for the qdisc. A slot's
// chain runs at MarkPriority + (LastSlot + 1 - slot): where two faults'
// CIDRs overlap on an interface, the lower slot's chain runs last and its
// mark wins (as the lower filter prio did with address filters).
const MarkPriority = 300

// PortSetName names the set of remote ports in a fault's table.
const PortSetName = "ports"

// MarkRule marks packets leaving through its chain's interface whose
// destination is in the address set (and, with Proto, whose TCP or UDP
// destination port is in the port set).
type MarkRule struct {
	IPv6    bool
	AddrSet string
	Proto   uint8 // 0: any; ProtoTCP or ProtoUDP: the port set applies
}

// MarkChain marks one interface's packets of the fault with its slot.
type MarkChain struct {
	Name     string // if<i>, i being the interface's position in the state
	Priority int
	Iface    string
	Index    int
	Slot     int
	Rules    []MarkRule
}

// MarkPlan is the nftables table that marks one fault's packets.
type MarkPlan struct {
	Table  string // family inet
	Sets   []nftexpiry.Set
	Chains []MarkChain
}

// PlanMarks plans the marking table of a fault installed on ifaces (its
// state's interfaces, with Slot and Index set): per interface, sets of
// its CIDRs (d4_<i>, d6_<i>) and a chain marking packets to them; one
// port set shared by all.
func PlanMarks(faultID string, s Spec, ifaces []IfaceState) (MarkPlan, error) {
	p := MarkPlan{Table: TableName(faultID)}
	for i, is := range ifaces {
		if is.Slot < FirstSlot || is.Slot > LastSlot {
			return MarkPlan{}, fmt.Errorf("latency: interface %s: slot %d out of range", is.Name, is.Slot)
		}
		var prefixes []netip.Prefix
		for _, c := range is.CIDRs {
			pr, err := netip.ParsePrefix(c)
			if err != nil {
				return MarkPlan{}, fmt.Errorf("state of interface %s: %w", is.Name, err)
			}
			prefixes = append(prefixes, pr)
		}
		ch := MarkChain{Name: fmt.Sprintf("if%d", i), Priority: MarkPriority + LastSlot + 1 - is.Slot,
			Iface: is.Name, Index: is.Index, Slot: is.Slot}
		for _, set := range nftexpiry.AddrSets(prefixes, fmt.Sprintf("d4_%d", i), fmt.Sprintf("d6_%d", i)) {
			p.Sets = append(p.Sets, set)
			v6 := set.Key == nftexpiry.KeyIPv6
			if len(s.Ports) == 0 {
				ch.Rules = append(ch.Rules, MarkRule{IPv6: v6, AddrSet: set.Name})
				continue
			}
			for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
				ch.Rules = append(ch.Rules, MarkRule{IPv6: v6, AddrSet: set.Name, Proto: proto})
			}
		}
		p.Chains = append(p.Chains, ch)
	}
	if len(s.Ports) > 0 {
		p.Sets = append(p.Sets, nftexpiry.PortSet(PortSetName, s.Ports))
	}
	return p, nil
}

// ChainRules is how many rules each chain holds (what a renewal checks).
func (p MarkPlan) ChainRules() []nftexpiry.ChainRules {
	out := make([]nftexpiry.ChainRules, len(p.Chains))
	for i, c := range p.Chains {
		out[i] = nftexpiry.ChainRules{Chain: c.Name, Rules: len(c.Rules)}
	}
	return out
}

// String renders the table roughly as `nft list table` would (without the
// elements' timeouts).
func (p MarkPlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", p.Table)
	for _, s := range p.Sets {
		fmt.Fprintf(&b, "\t%s\n", s)
	}
	for _, c := range p.Chains {
		fmt.Fprintf(&b, "\tchain %s { type filter hook postrouting priority %d; policy accept;  # %s, slot %d\n", c.Name, c.Priority, c.Iface, c.Slot)
		for _, r := range c.Rules {
			fam := "ip"
			if r.IPv6 {
				fam = "ip6"
			}
			ports := ""
			switch r.Proto {
			case ProtoTCP:
				ports = " tcp dport @" + PortSetName
			case ProtoUDP:
				ports = " udp dport @" + PortSetName
			}
			fmt.Fprintf(&b, "\t\toif %d %s daddr @%s%s meta mark set mark and 0x%08x or 0x%08x\n", c.Index, fam, r.AddrSet, ports, ^MarkMask, Mark(c.Slot))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}
