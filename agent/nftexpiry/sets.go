// Package nftexpiry holds the match sets of the agent's network faults so
// that the kernel ends a fault by itself when nobody renews it: a fault's
// CIDRs (and remote ports) are elements of nftables sets with
// `flags interval, timeout` (ports: `flags timeout`), every element
// carries a timeout of the fault's lease plus Margin, and each lease
// renewal refreshes them. When the agent dies, hangs or is cut off, the
// elements time out one lease (plus Margin) after the last renewal,
// nothing matches the fault's rules any more and traffic flows again; the
// empty table left behind is removed by the next agent's start-up
// recovery.
//
// The pure part (AddrSets, PortSet, Ranges, Timeout, Set.String) plans the
// sets and is unit-tested without root; the Linux part adds them to an
// nftables batch, refreshes their elements (a delete and an add of every
// element in one transaction: atomic, and refused by the kernel when any
// element, set or the table is missing, which is how a renewal finds a
// fault that vanished) and checks a table's chains still hold their
// rules. agent/partition and agent/latency build on it.
package nftexpiry

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Margin is how much longer a set element lives than the lease it was
// set for. The agent's own timer reverts the fault at the end of its
// lease (a revert takes milliseconds); the kernel drops the elements
// Margin later. So while the agent is alive, it, not the kernel, ends the
// fault (logged, in the ledger, verified), and a renewal that reaches the
// agent before the lease ends always finds every element still there,
// even when the agent's timer or the renewal's transaction runs late by
// a scheduling hiccup. 250 ms is ten times a slow revert and fifty
// kernel ticks (HZ 250), and keeps a dead agent's fault well within the
// promised lease + 1 s.
const Margin = 250 * time.Millisecond

// ErrMissing says a fault's table, chains, rules, sets or set elements
// are not all in place: the fault vanished (flushed tables, a deleted
// element) or its elements timed out.
var ErrMissing = errors.New("not in place")

// KeyType is the type of a set's elements.
type KeyType int

// Key types.
const (
	KeyIPv4 KeyType = iota + 1 // ipv4_addr, flags interval, timeout
	KeyIPv6                    // ipv6_addr, flags interval, timeout
	KeyPort                    // inet_service, flags timeout
)

func (k KeyType) String() string {
	switch k {
	case KeyIPv4:
		return "ipv4_addr"
	case KeyIPv6:
		return "ipv6_addr"
	case KeyPort:
		return "inet_service"
	}
	return fmt.Sprintf("KeyType(%d)", int(k))
}

// Range is the half-open address range [Start, End). End is the zero
// Addr when the range reaches the end of the address space (the kernel
// then gets no interval-end element for it).
type Range struct {
	Start, End netip.Addr
}

// String renders the range as nft lists it: a CIDR when it is one,
// else first-last.
func (r Range) String() string {
	last := r.last()
	for bits := 0; bits <= r.Start.BitLen(); bits++ {
		if p := netip.PrefixFrom(r.Start, bits); p.Masked() == p && lastOf(p) == last {
			if bits == r.Start.BitLen() {
				return r.Start.String()
			}
			return p.String()
		}
	}
	return r.Start.String() + "-" + last.String()
}

// last is the last address in the range.
func (r Range) last() netip.Addr {
	if !r.End.IsValid() {
		if r.Start.Is4() {
			return netip.AddrFrom4([4]byte{255, 255, 255, 255})
		}
		return netip.AddrFrom16([16]byte{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff,
			8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff})
	}
	return r.End.Prev()
}

// lastOf is the last address of a prefix.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Ranges turns prefixes (canonical: see agentapi.CanonicalPrefix) into
// the fewest disjoint ranges per family, sorted: overlapping and adjacent
// prefixes are merged, as an interval set refuses overlapping elements
// and an end element equal to the next start.
func Ranges(prefixes []netip.Prefix) (v4, v6 []Range) {
	for _, p := range prefixes {
		p = p.Masked()
		r := Range{Start: p.Addr(), End: lastOf(p).Next()}
		if p.Addr().Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	return merge(v4), merge(v6)
}

func merge(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b Range) int { return a.Start.Compare(b.Start) })
	out := []Range{rs[0]}
	for _, r := range rs[1:] {
		cur := &out[len(out)-1]
		if !cur.End.IsValid() {
			continue // cur reaches the end: it covers r
		}
		if r.Start.Compare(cur.End) <= 0 {
			if !r.End.IsValid() || r.End.Compare(cur.End) > 0 {
				cur.End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// Set is one match set of a fault.
type Set struct {
	Name   string
	Key    KeyType
	Ranges []Range  // KeyIPv4, KeyIPv6
	Ports  []uint16 // KeyPort
}

// AddrSets returns the address sets of prefixes: name4 with the IPv4
// ranges and name6 with the IPv6 ones, each only when it has elements.
func AddrSets(prefixes []netip.Prefix, name4, name6 string) []Set {
	v4, v6 := Ranges(prefixes)
	var sets []Set
	if len(v4) > 0 {
		sets = append(sets, Set{Name: name4, Key: KeyIPv4, Ranges: v4})
	}
	if len(v6) > 0 {
		sets = append(sets, Set{Name: name6, Key: KeyIPv6, Ranges: v6})
	}
	return sets
}

// PortSet returns the port set (sorted, without duplicates).
func PortSet(name string, ports []uint16) Set {
	ps := slices.Clone(ports)
	slices.Sort(ps)
	return Set{Name: name, Key: KeyPort, Ports: slices.Compact(ps)}
}

// Elements is the number of kernel elements of the set: a start and an
// end per range (no end for a range reaching the top), one per port.
func (s Set) Elements() int {
	if s.Key == KeyPort {
		return len(s.Ports)
	}
	n := 0
	for _, r := range s.Ranges {
		n++
		if r.End.IsValid() {
			n++
		}
	}
	return n
}

// Timed is the number of its elements that time out: one per range (its
// start: the kernel keeps no timeout on an interval end) or port.
func (s Set) Timed() int {
	if s.Key == KeyPort {
		return len(s.Ports)
	}
	return len(s.Ranges)
}

// String renders the set as `nft list` would, without timeouts.
func (s Set) String() string {
	flags := "interval, timeout"
	var els []string
	if s.Key == KeyPort {
		flags = "timeout"
		for _, p := range s.Ports {
			els = append(els, fmt.Sprint(p))
		}
	} else {
		for _, r := range s.Ranges {
			els = append(els, r.String())
		}
	}
	return fmt.Sprintf("set %s { type %s; flags %s; elements = { %s } }", s.Name, s.Key, flags, strings.Join(els, ", "))
}

// Timeout is the element timeout that holds a fault until `until` (its
// lease end), set at now: until - now + Margin, in whole milliseconds
// (the kernel's unit; truncated, so an element never outlives
// until + Margin) and at least 1 ms (a zero timeout would be no timeout).
func Timeout(now, until time.Time) time.Duration {
	d := until.Sub(now)
	if d > math.MaxInt64-Margin {
		d = math.MaxInt64 - Margin // about 292 years
	}
	return max((d + Margin).Truncate(time.Millisecond), time.Millisecond)
}

// ChainRules is how many rules a chain should hold (CheckRules).
type ChainRules struct {
	Chain string
	Rules int
}

// TableName is the nftables table of a fault: prefix (which tags the
// driver's tables, so no Prune takes another's), the ID with every
// character outside [A-Za-z0-9_] replaced by '_' (cut to 40), and a short
// hash of the raw ID so distinct IDs never share a table.
func TableName(prefix, faultID string) string {
	var b strings.Builder
	for _, r := range faultID {
		if b.Len() >= 40 {
			break
		}
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	h := fnv.New32a()
	h.Write([]byte(faultID))
	return fmt.Sprintf("%s%s_%08x", prefix, b.String(), h.Sum32())
}
