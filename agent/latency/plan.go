// Package latency turns a latency fault into tc state: netem delay, jitter
// and loss applied only to traffic toward the fault's CIDRs (and optional
// remote ports), never to the rest of the interface's traffic.
//
// The package is split like agent/partition: a pure planner (Parse and
// PlanFault, unit-tested without root) describes the qdiscs, classes and
// u32 filters for one fault on one interface given that interface's
// current tc state; a thin Linux applier (Driver, implementing the agent's
// Driver interface) reads that state, installs the plan through netlink in
// a chosen network namespace, reverts it and prunes leftovers.
//
// Layout on an interface (see README.md for the picture):
//
//	root  htb cd00:  default class cd00:1
//	  class cd00:1   unshaped (100 Gbit/s): all traffic no filter matches
//	  class cd00:N   the fault in slot N (2-255): rate = RateBytesPerSecond or unshaped
//	    qdisc netem (cd00+N):   delay, jitter, correlation, loss, limit 10000
//	  filters on cd00: at prio 2N (ip) and 2N+1 (ipv6): u32 dst CIDR [+ proto + dport] → cd00:N
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
	"slices"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
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
	MaxFilters = 512 // per fault and interface
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

// FilterPrios returns the filter priorities of a slot: IPv4 then IPv6.
func FilterPrios(slot int) (v4, v6 uint16) { return uint16(2 * slot), uint16(2*slot + 1) }

// SlotOfPrio maps a filter priority back to its slot (0 if none).
func SlotOfPrio(prio uint16) int {
	s := int(prio / 2)
	if s < FirstSlot || s > LastSlot {
		return 0
	}
	return s
}

// EtherType values of filters.
const (
	EthPIP   uint16 = 0x0800
	EthPIPv6 uint16 = 0x86DD
)

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
	if n := filterCount(s.Prefixes, len(s.Ports)); n > MaxFilters {
		return Spec{}, fmt.Errorf("latency.ports: %d CIDRs x %d ports x 2 protocols = %d filters, at most %d", len(s.Prefixes), len(s.Ports), n, MaxFilters)
	}
	return s, nil
}

func filterCount(prefixes []netip.Prefix, ports int) int {
	if ports == 0 {
		return len(prefixes)
	}
	return len(prefixes) * ports * 2
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

// Key is one u32 match: the 32-bit word at Off (from the network header),
// masked with Mask, equals Val. Mask and Val are in host order of the
// big-endian word, as netlink.TcU32Key expects.
type Key struct {
	Off  int32
	Mask uint32
	Val  uint32
}

// Filter is one u32 filter on the root steering into the fault's class.
type Filter struct {
	Prio     uint16
	Protocol uint16 // EthPIP or EthPIPv6
	Keys     []Key
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
	Filters      []Filter
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
	p.Filters = Filters(slot, prefixes, s.Ports)
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

// Filters builds the u32 filters of a slot. u32 matches at fixed offsets
// from the network header: IPv4 rules with ports match only headers
// without options (IHL = 5, checked by a key) and IPv6 rules with ports
// only packets without extension headers (next header = TCP/UDP); such
// packets, and non-first fragments, are not delayed.
func Filters(slot int, prefixes []netip.Prefix, ports []uint16) []Filter {
	v4prio, v6prio := FilterPrios(slot)
	classID := ClassHandle(slot)
	var fs []Filter
	for _, pr := range prefixes {
		prio, proto, fam := v4prio, EthPIP, "ip"
		if pr.Addr().Is6() {
			prio, proto, fam = v6prio, EthPIPv6, "ip6"
		}
		dst := dstKeys(pr)
		if len(ports) == 0 {
			fs = append(fs, Filter{Prio: prio, Protocol: proto, Keys: dst, ClassID: classID,
				Desc: fmt.Sprintf("%s dst %s", fam, pr)})
			continue
		}
		for _, port := range ports {
			for _, l4 := range []uint8{ProtoTCP, ProtoUDP} {
				keys := slices.Clone(dst)
				name := "tcp"
				if l4 == ProtoUDP {
					name = "udp"
				}
				if pr.Addr().Is4() {
					keys = append(keys,
						Key{Off: 0, Mask: 0x0F000000, Val: 0x05000000},       // IHL = 5: no options
						Key{Off: 8, Mask: 0x00FF0000, Val: uint32(l4) << 16}, // protocol
						Key{Off: 20, Mask: 0x0000FFFF, Val: uint32(port)},    // dport
						Key{Off: 4, Mask: 0x00001FFF, Val: 0},                // fragment offset 0
					)
				} else {
					keys = append(keys,
						Key{Off: 4, Mask: 0x0000FF00, Val: uint32(l4) << 8}, // next header
						Key{Off: 40, Mask: 0x0000FFFF, Val: uint32(port)},   // dport
					)
				}
				fs = append(fs, Filter{Prio: prio, Protocol: proto, Keys: keys, ClassID: classID,
					Desc: fmt.Sprintf("%s dst %s %s dport %d", fam, pr, name, port)})
			}
		}
	}
	return fs
}

// dstKeys matches the destination address against a prefix: IPv4 dst is
// the word at 16, IPv6 dst the four words at 24-36.
func dstKeys(pr netip.Prefix) []Key {
	b := pr.Addr().AsSlice()
	base := int32(16)
	if pr.Addr().Is6() {
		base = 24
	}
	bits := pr.Bits()
	var keys []Key
	for w := 0; w*32 < len(b)*8; w++ {
		n := bits - w*32
		if n <= 0 {
			break
		}
		if n > 32 {
			n = 32
		}
		mask := uint32(0xFFFFFFFF) << (32 - n)
		val := uint32(b[4*w])<<24 | uint32(b[4*w+1])<<16 | uint32(b[4*w+2])<<8 | uint32(b[4*w+3])
		keys = append(keys, Key{Off: base + int32(4*w), Mask: mask, Val: val & mask})
	}
	if len(keys) == 0 {
		// /0: match every packet of the family.
		keys = append(keys, Key{Off: base, Mask: 0, Val: 0})
	}
	return keys
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
	for _, f := range p.Filters {
		fmt.Fprintf(&b, "filter add dev %s parent %s prio %d u32 match %s flowid %s\n", p.Iface, HandleString(p.Root), f.Prio, f.Desc, HandleString(f.ClassID))
	}
	return b.String()
}
