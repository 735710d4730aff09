package partition

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// Applier installs and removes plans in one network namespace, over one
// nftables netlink socket opened inside that namespace (by fd, so the
// calling goroutine's thread and namespace do not matter) and kept open
// (nftexpiry.Lasting: no operation pays the ~11 ms a socket's close
// waits for nf_tables after a commit; after a failed operation it is
// replaced). It is safe for concurrent use: operations take turns on the
// socket. Close waits for an operation in flight, so the namespace fd is
// never used after it was closed (a reused fd number could name another
// namespace).
type Applier struct {
	ns   netns.NsHandle
	nl   *nftexpiry.Lasting
	once sync.Once
	err  error
}

// NewApplier opens the network namespace at nsPath, or the calling
// thread's current one when nsPath is empty.
func NewApplier(nsPath string) (*Applier, error) {
	var h netns.NsHandle
	var err error
	if nsPath == "" {
		h, err = netns.Get()
	} else {
		h, err = netns.GetFromPath(nsPath)
	}
	if err != nil {
		return nil, fmt.Errorf("open network namespace %q: %w", nsPath, err)
	}
	return &Applier{ns: h, nl: nftexpiry.NewLasting(int(h))}, nil
}

// NewApplierFd returns an Applier in the network namespace of the open
// descriptor fd. It keeps a duplicate of fd: the caller closes its own.
func NewApplierFd(fd int) (*Applier, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate network namespace fd %d: %w", fd, err)
	}
	return &Applier{ns: netns.NsHandle(dup), nl: nftexpiry.NewLasting(dup)}, nil
}

// Close closes the netlink socket and the namespace handle; later
// operations fail.
func (a *Applier) Close() error {
	a.once.Do(func() { a.err = errors.Join(a.nl.Close(), a.ns.Close()) })
	return a.err
}

// use runs fn on the namespace's lasting connection (see
// nftexpiry.Lasting.Do: an error of fn replaces the connection). A
// netlink transaction cannot be interrupted, so ctx is checked once,
// before it starts.
func (a *Applier) use(ctx context.Context, fn func(c *nftables.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.nl.Do(fn)
}

// Apply installs the plan atomically (one netlink batch), with set
// elements that time out after timeout. A table of the same name left
// behind is replaced, never merged.
func (a *Applier) Apply(ctx context.Context, p Plan, timeout time.Duration) error {
	if !strings.HasPrefix(p.Table, TablePrefix) {
		return fmt.Errorf("refusing to apply untagged table %q", p.Table)
	}
	return a.use(ctx, func(c *nftables.Conn) error { return install(c, p, timeout) })
}

func install(c *nftables.Conn, p Plan, timeout time.Duration) error {
	t := nftexpiry.ReplaceTable(c, p.Table)
	sets, err := nftexpiry.Add(c, t, p.Sets, timeout)
	if err != nil {
		return err
	}
	policy := nftables.ChainPolicyAccept
	for _, pc := range p.Chains {
		hook := map[Hook]*nftables.ChainHook{
			HookInput: nftables.ChainHookInput, HookOutput: nftables.ChainHookOutput, HookForward: nftables.ChainHookForward,
		}[pc.Hook]
		if hook == nil {
			return fmt.Errorf("chain %s: unknown hook %q", pc.Name, pc.Hook)
		}
		ch := c.AddChain(&nftables.Chain{
			Name: pc.Name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityRef(nftables.ChainPriority(pc.Priority)),
			Policy: &policy,
		})
		for _, r := range pc.Rules {
			exprs, err := ruleExprs(r, sets)
			if err != nil {
				return fmt.Errorf("chain %s rule %q: %w", pc.Name, r, err)
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install table %s: %w", p.Table, err)
	}
	return nil
}

// lookup is the expression matching register 1 against set name.
func lookup(sets map[string]*nftables.Set, name string) (expr.Any, error) {
	s := sets[name]
	if s == nil {
		return nil, fmt.Errorf("set %s referenced but not in the plan", name)
	}
	return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}, nil
}

func ruleExprs(r Rule, sets map[string]*nftables.Set) ([]expr.Any, error) {
	var ex []expr.Any
	if r.AddrField != Any {
		var nfproto byte
		var off, l uint32
		switch r.Family {
		case IPv4:
			nfproto, off, l = unix.NFPROTO_IPV4, 12, 4
		case IPv6:
			nfproto, off, l = unix.NFPROTO_IPV6, 8, 16
		default:
			return nil, fmt.Errorf("unknown family %d", r.Family)
		}
		if r.AddrField == Dst {
			off += l
		}
		lk, err := lookup(sets, AddrSetName(r.Family))
		if err != nil {
			return nil, err
		}
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l},
			lk,
		)
	}
	if r.Proto != 0 {
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.Proto}},
		)
	}
	if r.PortField != Any {
		if r.Proto == 0 {
			return nil, errors.New("port match needs a protocol")
		}
		off := uint32(0)
		if r.PortField == Dst {
			off = 2
		}
		ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2})
		if r.PortSet {
			lk, err := lookup(sets, PortSetName)
			if err != nil {
				return nil, err
			}
			ex = append(ex, lk)
		} else {
			ex = append(ex, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.Port)})
		}
	}
	ex = append(ex, &expr.Counter{})
	switch r.Verdict {
	case Drop:
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictDrop})
	case Accept:
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictAccept})
	default:
		return nil, fmt.Errorf("unknown verdict %q", r.Verdict)
	}
	return ex, nil
}

// Refresh checks that the plan's table is whole (every chain with its
// rules) and gives every element of its sets a new timeout, in one
// transaction that changes nothing when any element, set or the table is
// missing. Missing pieces give an error wrapping nftexpiry.ErrMissing.
func (a *Applier) Refresh(ctx context.Context, p Plan, timeout time.Duration) error {
	if !strings.HasPrefix(p.Table, TablePrefix) {
		return fmt.Errorf("refusing to refresh untagged table %q", p.Table)
	}
	return a.use(ctx, func(c *nftables.Conn) error {
		t := &nftables.Table{Name: p.Table, Family: nftables.TableFamilyINet}
		if err := nftexpiry.CheckRules(c, t, p.ChainRules()); err != nil {
			return err
		}
		return nftexpiry.Refresh(c, t, p.Sets, timeout)
	})
}

// Remove deletes a table. A table that is already gone counts as removed.
func (a *Applier) Remove(ctx context.Context, table string) error {
	if !strings.HasPrefix(table, TablePrefix) {
		return fmt.Errorf("refusing to remove untagged table %q", table)
	}
	err := a.use(ctx, func(c *nftables.Conn) error { return remove(c, table) })
	if errors.Is(err, unix.ENOENT) {
		return nil // already gone (the failed batch replaced the connection)
	}
	return err
}

// remove deletes the table in one batch; a table already gone is an error
// wrapping ENOENT.
func remove(c *nftables.Conn, table string) error {
	c.DelTable(&nftables.Table{Name: table, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete table %s: %w", table, err)
	}
	return nil
}

// Exists reports whether the inet table is present.
func (a *Applier) Exists(ctx context.Context, table string) (bool, error) {
	names, err := a.list(ctx)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if n == table {
			return true, nil
		}
	}
	return false, nil
}

// ListTagged returns the names of every inet table carrying TablePrefix.
func (a *Applier) ListTagged(ctx context.Context) ([]string, error) {
	names, err := a.list(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, TablePrefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (a *Applier) list(ctx context.Context) ([]string, error) {
	var names []string
	err := a.use(ctx, func(c *nftables.Conn) error {
		ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
		if err != nil {
			return fmt.Errorf("list nftables tables: %w", err)
		}
		for _, t := range ts {
			names = append(names, t.Name)
		}
		return nil
	})
	return names, err
}

// Probe checks that nftables works in the namespace by creating and
// deleting a throwaway table.
func (a *Applier) Probe(ctx context.Context) error {
	name := fmt.Sprintf("%sprobe_%d", TablePrefix, os.Getpid())
	return a.use(ctx, func(c *nftables.Conn) error {
		t := c.AddTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
		c.AddChain(&nftables.Chain{Name: "probe", Table: t})
		if err := c.Flush(); err != nil {
			return fmt.Errorf("create probe table: %w", err)
		}
		return remove(c, name)
	})
}
