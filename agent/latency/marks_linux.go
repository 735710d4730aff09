package latency

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// The mark filter: u32 with TCA_U32_MARK, which netlink.U32 does not
// model, so the request is built here and sent on a socket of the
// driver's namespace (Driver.raw).

// tcU32MarkLen is sizeof(struct tc_u32_mark): val, mask, success (a
// counter the kernel fills in dumps).
const tcU32MarkLen = 12

// openRaw opens the route netlink socket for the mark filter requests in
// namespace ns.
func openRaw(ns netns.NsHandle) (*nl.SocketHandle, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	if err := s.SetReceiveTimeout(&tv); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.SetSendTimeout(&tv); err != nil {
		s.Close()
		return nil, err
	}
	return &nl.SocketHandle{Socket: s}, nil
}

func (d *Driver) rawRequest(typ uint16, flags int) *nl.NetlinkRequest {
	return &nl.NetlinkRequest{
		NlMsghdr: unix.NlMsghdr{Len: uint32(unix.SizeofNlMsghdr), Type: typ, Flags: unix.NLM_F_REQUEST | uint16(flags)},
		Sockets:  map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: d.raw},
	}
}

// addMarkFilter adds f on the root of link idx: `tc filter add dev X parent
// cd00: prio P protocol all u32 match mark M MASK flowid cd00:N`.
func (d *Driver) addMarkFilter(idx int, f Filter) error {
	req := d.rawRequest(unix.RTM_NEWTFILTER, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(idx), Parent: RootHandle,
		Info: netlink.MakeHandle(f.Prio, nl.Swap16(f.Protocol))})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("u32")))
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	// One all-zero key: matches every packet; the mark decides.
	sel := nl.TcU32Sel{Flags: nl.TC_U32_TERMINAL, Nkeys: 1, Keys: []nl.TcU32Key{{}}}
	opts.AddRtAttr(nl.TCA_U32_SEL, sel.Serialize())
	opts.AddRtAttr(nl.TCA_U32_CLASSID, nl.Uint32Attr(f.ClassID))
	mark := make([]byte, tcU32MarkLen)
	native := nl.NativeEndian()
	native.PutUint32(mark[0:], f.Mark)
	native.PutUint32(mark[4:], f.MarkMask)
	opts.AddRtAttr(nl.TCA_U32_MARK, mark)
	req.AddData(opts)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// markedFilters lists, per priority, the (value, mask) mark match of the
// u32 filters on the root of link idx that have one. A kernel built
// without CONFIG_CLS_U32_MARK accepts the mark attribute and ignores it
// (the filter then matches every packet); it reports none back, which is
// how Probe tells.
func (d *Driver) markedFilters(idx int) (map[uint16][2]uint32, error) {
	req := d.rawRequest(unix.RTM_GETTFILTER, unix.NLM_F_DUMP)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(idx), Parent: RootHandle})
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWTFILTER)
	if err != nil {
		return nil, err
	}
	native := nl.NativeEndian()
	out := map[uint16][2]uint32{}
	for _, m := range msgs {
		tm := nl.DeserializeTcMsg(m)
		attrs, err := nl.ParseRouteAttr(m[tm.Len():])
		if err != nil {
			return nil, err
		}
		prio, _ := netlink.MajorMinor(tm.Info)
		for _, a := range attrs {
			if a.Attr.Type != nl.TCA_OPTIONS {
				continue
			}
			opts, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				return nil, err
			}
			for _, o := range opts {
				if o.Attr.Type == nl.TCA_U32_MARK && len(o.Value) >= 8 {
					out[prio] = [2]uint32{native.Uint32(o.Value[0:]), native.Uint32(o.Value[4:])}
				}
			}
		}
	}
	return out, nil
}

// nft runs fn on the driver's lasting nftables connection (see
// nftexpiry.Lasting: kept open, replaced after an error).
func (d *Driver) nft(fn func(c *nftables.Conn) error) error { return d.nl.Do(fn) }

// installMarks installs the marking table in one transaction, its set
// elements timing out after timeout; a leftover of the same name is
// replaced.
func (d *Driver) installMarks(p MarkPlan, timeout time.Duration) error {
	if !strings.HasPrefix(p.Table, TablePrefix) {
		return fmt.Errorf("refusing to install untagged table %q", p.Table)
	}
	return d.nft(func(c *nftables.Conn) error { return installMarks(c, p, timeout) })
}

func installMarks(c *nftables.Conn, p MarkPlan, timeout time.Duration) error {
	t := nftexpiry.ReplaceTable(c, p.Table)
	sets, err := nftexpiry.Add(c, t, p.Sets, timeout)
	if err != nil {
		return err
	}
	policy := nftables.ChainPolicyAccept
	for _, mc := range p.Chains {
		ch := c.AddChain(&nftables.Chain{Name: mc.Name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityRef(nftables.ChainPriority(mc.Priority)),
			Policy: &policy})
		for _, r := range mc.Rules {
			exprs, err := markExprs(mc, r, sets)
			if err != nil {
				return fmt.Errorf("chain %s: %w", mc.Name, err)
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install nftables table %s: %w", p.Table, err)
	}
	return nil
}

// markExprs: oif == chain's interface, address in the set, [l4proto and
// destination port in the port set], then mark = (mark & ^MarkMask) |
// Mark(slot).
func markExprs(mc MarkChain, r MarkRule, sets map[string]*nftables.Set) ([]expr.Any, error) {
	lookup := func(name string) (expr.Any, error) {
		s := sets[name]
		if s == nil {
			return nil, fmt.Errorf("set %s referenced but not in the plan", name)
		}
		return &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}, nil
	}
	nfproto, off, l := byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
	if r.IPv6 {
		nfproto, off, l = unix.NFPROTO_IPV6, 24, 16
	}
	addr, err := lookup(r.AddrSet)
	if err != nil {
		return nil, err
	}
	ex := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIF, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(mc.Index))},
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l},
		addr,
	}
	if r.Proto != 0 {
		ports, err := lookup(PortSetName)
		if err != nil {
			return nil, err
		}
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.Proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			ports,
		)
	}
	return append(ex,
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^MarkMask), Xor: binaryutil.NativeEndian.PutUint32(Mark(mc.Slot))},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		&expr.Counter{},
	), nil
}

// refreshMarks checks the table is whole (chains and rules) and gives its
// set elements a new timeout in one transaction; an error wrapping
// nftexpiry.ErrMissing when anything is missing.
func (d *Driver) refreshMarks(p MarkPlan, timeout time.Duration) error {
	return d.nft(func(c *nftables.Conn) error {
		t := &nftables.Table{Name: p.Table, Family: nftables.TableFamilyINet}
		if err := nftexpiry.CheckRules(c, t, p.ChainRules()); err != nil {
			return err
		}
		return nftexpiry.Refresh(c, t, p.Sets, timeout)
	})
}

// removeTable deletes a tagged table; one already gone is success.
func (d *Driver) removeTable(name string) error {
	if !strings.HasPrefix(name, TablePrefix) {
		return fmt.Errorf("refusing to remove untagged table %q", name)
	}
	err := d.nft(func(c *nftables.Conn) error {
		c.DelTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
		return c.Flush()
	})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nftables table %s: %w", name, err)
	}
	return nil
}

// tables lists the tagged inet tables of the namespace.
func (d *Driver) tables() ([]string, error) {
	var out []string
	err := d.nft(func(c *nftables.Conn) error {
		ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
		if err != nil {
			return fmt.Errorf("list nftables tables: %w", err)
		}
		for _, t := range ts {
			if strings.HasPrefix(t.Name, TablePrefix) {
				out = append(out, t.Name)
			}
		}
		return nil
	})
	return out, err
}

func (d *Driver) tableExists(name string) (bool, error) {
	ts, err := d.tables()
	if err != nil {
		return false, err
	}
	for _, t := range ts {
		if t == name {
			return true, nil
		}
	}
	return false, nil
}

// probeMarks checks what the marks need: a u32 filter matching the mark
// on link idx (the caller's probe link, already holding our HTB root and
// a slot class), read back with its mark, and an nftables table with a
// postrouting chain setting mark bits from an interval set whose elements
// time out.
func (d *Driver) probeMarks(idx int, rel string) error {
	f := MarkFilter(FirstSlot)
	if err := d.addMarkFilter(idx, f); err != nil {
		return fmt.Errorf("u32 classifier not supported by this kernel (%s): %w", rel, err)
	}
	got, err := d.markedFilters(idx)
	if err != nil {
		return fmt.Errorf("probe: read the mark filter back: %w", err)
	}
	if m, ok := got[f.Prio]; !ok || m != [2]uint32{f.Mark, f.MarkMask} {
		return fmt.Errorf("u32 classifier of this kernel (%s) cannot match marks (CONFIG_CLS_U32_MARK): a mark filter would take every packet", rel)
	}
	p := MarkPlan{Table: fmt.Sprintf("%sprobe_%d", TablePrefix, os.Getpid()),
		Sets: nftexpiry.AddrSets([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, "d4_0", "d6_0"),
		Chains: []MarkChain{{Name: "probe", Priority: MarkPriority, Index: idx, Slot: FirstSlot,
			Rules: []MarkRule{{AddrSet: "d4_0"}}}}}
	if err := d.installMarks(p, time.Minute); err != nil {
		return fmt.Errorf("nftables marking not supported by this kernel (%s): %w", rel, err)
	}
	return d.removeTable(p.Table)
}
