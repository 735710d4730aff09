package nftexpiry

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"golang.org/x/sys/unix"
)

// kernelSet describes s in table t to the kernel. Its ID is zero: a set
// added to a batch gets one from Conn.AddSet, an existing set is found by
// name.
func (s Set) kernelSet(t *nftables.Table) *nftables.Set {
	ks := &nftables.Set{Table: t, Name: s.Name, HasTimeout: true}
	switch s.Key {
	case KeyIPv4:
		ks.KeyType, ks.Interval = nftables.TypeIPAddr, true
	case KeyIPv6:
		ks.KeyType, ks.Interval = nftables.TypeIP6Addr, true
	case KeyPort:
		ks.KeyType = nftables.TypeInetService
	}
	return ks
}

// elements are the kernel elements of s, each start timing out after
// timeout (none: for deletes). A range is its start, then its end,
// flagged interval-end (none for a range reaching the top of the address
// space). The kernel refuses a timeout on an interval-end element (EINVAL):
// an end never expires, and matches nothing on its own, so a range ends
// when its start times out.
func (s Set) elements(timeout time.Duration) []nftables.SetElement {
	var els []nftables.SetElement
	if s.Key == KeyPort {
		for _, p := range s.Ports {
			els = append(els, nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p), Timeout: timeout})
		}
		return els
	}
	for _, r := range s.Ranges {
		els = append(els, nftables.SetElement{Key: r.Start.AsSlice(), Timeout: timeout})
		if r.End.IsValid() {
			els = append(els, nftables.SetElement{Key: r.End.AsSlice(), IntervalEnd: true})
		}
	}
	return els
}

func checkKey(s Set) error {
	switch s.Key {
	case KeyIPv4, KeyIPv6, KeyPort:
		return nil
	}
	return fmt.Errorf("set %s: unknown key type %v", s.Name, s.Key)
}

// Add adds the sets, with elements that time out after timeout, to c's
// batch in table t, and returns them by name for the rules' lookups.
func Add(c *nftables.Conn, t *nftables.Table, sets []Set, timeout time.Duration) (map[string]*nftables.Set, error) {
	if timeout < time.Millisecond {
		return nil, fmt.Errorf("element timeout %v: must be at least 1ms", timeout)
	}
	out := map[string]*nftables.Set{}
	for _, s := range sets {
		if err := checkKey(s); err != nil {
			return nil, err
		}
		ks := s.kernelSet(t)
		if err := c.AddSet(ks, s.elements(timeout)); err != nil {
			return nil, fmt.Errorf("add set %s: %w", s.Name, err)
		}
		out[s.Name] = ks
	}
	return out, nil
}

// Refresh gives every element of the sets in table t a timeout of
// timeout from now, in one transaction that deletes and adds each set's
// elements. The kernel refuses a delete of an element, set or table that
// is not there (ENOENT) and then applies nothing: Refresh returns an
// error wrapping ErrMissing, which is how a renewal finds that a fault
// vanished (or timed out).
func Refresh(c *nftables.Conn, t *nftables.Table, sets []Set, timeout time.Duration) error {
	if timeout < time.Millisecond {
		return fmt.Errorf("element timeout %v: must be at least 1ms", timeout)
	}
	for _, s := range sets {
		if err := checkKey(s); err != nil {
			return err
		}
		ks := s.kernelSet(t)
		if err := c.SetDeleteElements(ks, s.elements(0)); err != nil {
			return fmt.Errorf("delete elements of set %s: %w", s.Name, err)
		}
		if err := c.SetAddElements(ks, s.elements(timeout)); err != nil {
			return fmt.Errorf("add elements to set %s: %w", s.Name, err)
		}
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: an element, set or table %s is missing (%v)", ErrMissing, t.Name, err)
		}
		return fmt.Errorf("refresh the set elements of table %s: %w", t.Name, err)
	}
	return nil
}

// CheckRules checks that each chain of table t holds exactly its number
// of rules: a missing table or chain, or another count (a flushed chain),
// is an error wrapping ErrMissing.
func CheckRules(c *nftables.Conn, t *nftables.Table, want []ChainRules) error {
	chains, err := c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return fmt.Errorf("list chains: %w", err)
	}
	have := map[string]bool{}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == t.Name {
			have[ch.Name] = true
		}
	}
	for _, w := range want {
		if !have[w.Chain] {
			return fmt.Errorf("%w: chain %s of table %s is missing", ErrMissing, w.Chain, t.Name)
		}
		rules, err := c.GetRules(t, &nftables.Chain{Name: w.Chain, Table: t})
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: chain %s of table %s is missing", ErrMissing, w.Chain, t.Name)
		}
		if err != nil {
			return fmt.Errorf("list the rules of chain %s in table %s: %w", w.Chain, t.Name, err)
		}
		if len(rules) != w.Rules {
			return fmt.Errorf("%w: chain %s of table %s holds %d rules, want %d", ErrMissing, w.Chain, t.Name, len(rules), w.Rules)
		}
	}
	return nil
}

// Expiry is what a set holds in the kernel now.
type Expiry struct {
	// Elements counts every element listed; Timed those with a timeout
	// (ports, and ranges' starts: an interval end has none).
	Elements, Timed int
	// First and Last are the shortest and longest time left of the timed
	// elements (zero without any).
	First, Last time.Duration
}

// Inspect reads set name of table t back from the kernel (for tests and
// diagnostics). Elements that already timed out are not listed.
func Inspect(c *nftables.Conn, t *nftables.Table, name string) (Expiry, error) {
	ks, err := c.GetSetByName(t, name)
	if err != nil {
		return Expiry{}, fmt.Errorf("set %s of table %s: %w", name, t.Name, err)
	}
	els, err := c.GetSetElements(ks)
	if err != nil {
		return Expiry{}, fmt.Errorf("elements of set %s of table %s: %w", name, t.Name, err)
	}
	var e Expiry
	for _, el := range els {
		e.Elements++
		if el.Timeout == 0 {
			continue
		}
		e.Timed++
		if e.Timed == 1 || el.Expires < e.First {
			e.First = el.Expires
		}
		e.Last = max(e.Last, el.Expires)
	}
	return e, nil
}

// ReplaceTable adds to the batch an empty inet table named name in place
// of any leftover of the same name (add; delete; add, in the one
// transaction) and returns it.
func ReplaceTable(c *nftables.Conn, name string) *nftables.Table {
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	return c.AddTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
}
