package latency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// ProbeLink is the name of the dummy link Probe creates (and deletes) in
// the target namespace to try the tc objects a fault needs; Prune removes
// one left behind by a crash.
const ProbeLink = "cdlat-probe"

// Driver is the latency fault driver for the node's network namespace
// and, for faults with Fault.Pod set, pods' namespaces. Per namespace its
// methods serialise on one lock (faults on the same interface share the
// agent's HTB root), and a call waiting for it gives up when its context
// ends. Netlink requests themselves are short and not interruptible.
//
// A pod's namespace is served by a Driver of its own (netlink sockets and
// lock), shared by the calls in flight on that namespace through a small
// cache keyed by the namespace's identity and closed when the last call
// returns (in the background: an nftables socket's close waits ~11 ms
// for nf_tables after a commit): no descriptor of a pod's namespace is
// held between calls, so the agent never keeps a dead pod's namespace
// alive. The node's Driver keeps its nftables socket open
// (nftexpiry.Lasting).
type Driver struct {
	lock chan struct{} // holds one token while a method runs
	ns   netns.NsHandle
	h    *netlink.Handle    // nil once closed
	raw  *nl.SocketHandle   // for the mark filters, which netlink.U32 cannot express
	nl   *nftexpiry.Lasting // the marking tables' nftables socket, kept open
	lg   *zap.Logger

	pods  PodNetNS // nil: pod-scoped faults are refused
	podMu sync.Mutex
	byNS  map[kubepod.NSID]*podDriver
	// podClosing counts pods' Drivers being closed in the background.
	podClosing sync.WaitGroup
}

// podDriver is a Driver in one pod's namespace and the calls using it.
type podDriver struct {
	d    *Driver
	refs int
}

// acquire takes the driver's lock, or fails when ctx ends first or the
// driver is closed.
func (d *Driver) acquire(ctx context.Context) error {
	select {
	case d.lock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("latency driver busy: %w", ctx.Err())
	}
	if d.h == nil {
		d.release()
		return errors.New("latency driver closed")
	}
	return nil
}

func (d *Driver) release() { <-d.lock }

// New opens the network namespace at nsPath (the calling thread's current
// one when empty) and a netlink socket inside it. lg may be nil. Faults
// with Fault.Pod set are refused (see NewWithConfig).
func New(nsPath string, lg *zap.Logger) (*Driver, error) {
	return NewWithConfig(Config{NetNSPath: nsPath}, lg)
}

// NewWithConfig builds the driver for the node's namespace and, with
// cfg.Pods, pods' namespaces. lg may be nil.
func NewWithConfig(cfg Config, lg *zap.Logger) (*Driver, error) {
	d, err := newAt(cfg.NetNSPath, -1, lg)
	if err != nil {
		return nil, err
	}
	d.pods = cfg.Pods
	d.byNS = map[kubepod.NSID]*podDriver{}
	return d, nil
}

// newAt opens a driver in the namespace at nsPath, or, with fd >= 0, in a
// duplicate of that namespace descriptor.
func newAt(nsPath string, fd int, lg *zap.Logger) (*Driver, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if fd >= 0 {
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("duplicate network namespace fd %d: %w", fd, err)
		}
		nsPath = fmt.Sprintf("/proc/self/fd/%d", dup)
		defer unix.Close(dup)
	}
	var ns netns.NsHandle
	var err error
	if nsPath == "" {
		ns, err = netns.Get()
	} else {
		ns, err = netns.GetFromPath(nsPath)
	}
	if err != nil {
		return nil, fmt.Errorf("open network namespace %q: %w", nsPath, err)
	}
	// NETLINK_ROUTE only: the default protocol list fails without xfrm_user.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink socket in namespace %q: %w", nsPath, err)
	}
	raw, err := openRaw(ns)
	if err != nil {
		h.Close()
		ns.Close()
		return nil, fmt.Errorf("netlink socket in namespace %q: %w", nsPath, err)
	}
	return &Driver{lock: make(chan struct{}, 1), ns: ns, h: h, raw: raw, nl: nftexpiry.NewLasting(int(ns)), lg: lg}, nil
}

// Close releases the netlink sockets and the namespace handle, after the
// pods' Drivers being closed. It does not revert anything.
func (d *Driver) Close() error {
	d.podClosing.Wait()
	d.lock <- struct{}{}
	defer d.release()
	if d.h == nil {
		return nil // closed already: the namespace fd may have been reused
	}
	d.h.Close()
	d.h = nil
	d.raw.Close()
	nerr := d.nl.Close()
	return errors.Join(nerr, d.ns.Close())
}

// Kind returns agentapi.KindLatency.
func (d *Driver) Kind() agentapi.Kind { return agentapi.KindLatency }

// NodeBound reports that a latency fault lives only in this node's kernel
// (qdiscs and a table in the node's or a pod's namespace): a crash of the
// node ends it.
func (d *Driver) NodeBound() bool { return true }

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// Probe checks that the kernel can build the fault's layout: on a dummy
// link it creates in the target namespace (down, so no packet crosses it)
// it adds an HTB root, a class, a netem leaf and a u32 mark filter (read
// back: a kernel without mark matching would steer every packet), and an
// nftables table marking packets from a set whose elements time out; then
// it deletes both. Without the dummy driver it falls back to looking for
// sch_netem in /sys/module and the kernel's module tree.
func (d *Driver) Probe(ctx context.Context) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	rel := kernelRelease()
	if l, err := d.h.LinkByName(ProbeLink); err == nil {
		d.h.LinkDel(l) // a crashed probe's leftover
	}
	la := netlink.NewLinkAttrs()
	la.Name = ProbeLink
	la.TxQLen = 1000
	if err := d.h.LinkAdd(&netlink.Dummy{LinkAttrs: la}); err != nil {
		return probeFiles(rel, err)
	}
	link, err := d.h.LinkByName(ProbeLink)
	if err != nil {
		return fmt.Errorf("probe: find dummy link %s: %w", ProbeLink, err)
	}
	defer d.h.LinkDel(link)
	idx := link.Attrs().Index
	if err := d.h.QdiscAdd(htbRoot(idx)); err != nil {
		return fmt.Errorf("htb qdisc not supported by this kernel (%s): %w", rel, err)
	}
	if err := d.h.ClassAdd(htbClass(idx, Class{Handle: ClassHandle(FirstSlot), Parent: RootHandle, RateBytes: UnshapedBytesPerSecond})); err != nil {
		return fmt.Errorf("htb class not supported by this kernel (%s): %w", rel, err)
	}
	if err := d.h.QdiscAdd(netemQdisc(idx, Netem{Handle: NetemHandle(FirstSlot), Parent: ClassHandle(FirstSlot), DelayUs: 1000, Limit: NetemLimit})); err != nil {
		return fmt.Errorf("netem qdisc not supported by this kernel (%s): no sch_netem (%w)", rel, err)
	}
	return d.probeMarks(idx, rel)
}

// probeFiles is the fallback probe when no dummy link can be created.
func probeFiles(rel string, linkErr error) error {
	if _, err := os.Stat("/sys/module/sch_netem"); err == nil {
		return nil
	}
	modDir := filepath.Join("/lib/modules", rel)
	if m, _ := filepath.Glob(filepath.Join(modDir, "kernel/net/sched/sch_netem.ko*")); len(m) > 0 {
		return nil
	}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil && strings.Contains(string(b), "sch_netem.ko") {
		return nil
	}
	return fmt.Errorf("netem qdisc not supported by this kernel (%s): no sch_netem (not loaded, built in or installed; live probe impossible: add dummy link: %v)", rel, linkErr)
}

// Prepare validates the fault, resolves the interfaces to shape and
// records each one's current root qdisc. It changes nothing.
func (d *Driver) Prepare(ctx context.Context, f *agentapi.Fault) (json.RawMessage, error) {
	s, err := Parse(f.Latency)
	if err != nil {
		return nil, err
	}
	if f.Pod != nil {
		var out json.RawMessage
		err := d.inPod(ctx, *f, nil, func(sub *Driver, pf agentapi.Fault, id kubepod.NSID) error {
			raw, err := sub.Prepare(ctx, &pf)
			if err != nil {
				return err
			}
			out, err = withNetNS(raw, id)
			return err
		})
		if err != nil {
			return nil, podErr(f.Pod, err)
		}
		return out, nil
	}
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	st, err := d.resolve(f.ID, s)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// resolve maps the spec's CIDRs to interfaces and checks each one.
func (d *Driver) resolve(faultID string, s Spec) (State, error) {
	type group struct {
		link     netlink.Link
		prefixes []netip.Prefix
	}
	var groups []*group
	byIndex := map[int]*group{}
	add := func(l netlink.Link, pr netip.Prefix) {
		g := byIndex[l.Attrs().Index]
		if g == nil {
			g = &group{link: l}
			byIndex[l.Attrs().Index] = g
			groups = append(groups, g)
		}
		g.prefixes = append(g.prefixes, pr)
	}
	if s.Interface != "" {
		l, err := d.h.LinkByName(s.Interface)
		if err != nil {
			return State{}, fmt.Errorf("latency.interface: %s: %w", s.Interface, err)
		}
		for _, pr := range s.Prefixes {
			add(l, pr)
		}
	} else {
		for i, pr := range s.Prefixes {
			routes, err := d.h.RouteGet(net.IP(pr.Addr().AsSlice()))
			if err != nil || len(routes) == 0 {
				return State{}, fmt.Errorf("latency.cidrs[%d]: no route to %s in the target network namespace: %v", i, pr, err)
			}
			r := routes[0]
			l, err := d.h.LinkByIndex(r.LinkIndex)
			if err != nil {
				return State{}, fmt.Errorf("latency.cidrs[%d]: interface %d of the route to %s: %w", i, r.LinkIndex, pr, err)
			}
			if r.Type == unix.RTN_LOCAL || l.Attrs().Flags&net.FlagLoopback != 0 {
				return State{}, fmt.Errorf("latency.cidrs[%d]: %s is local (routed through %s); refusing to shape a loopback interface", i, pr, l.Attrs().Name)
			}
			add(l, pr)
		}
	}
	st := State{Table: TableName(faultID)}
	for _, g := range groups {
		cur, err := d.current(g.link)
		if err != nil {
			return State{}, err
		}
		if _, err := PlanFault(faultID, linkInfo(g.link), cur, s, g.prefixes); err != nil {
			return State{}, err
		}
		is := IfaceState{Name: g.link.Attrs().Name, Index: g.link.Attrs().Index, Previous: cur.Root}
		for _, pr := range g.prefixes {
			is.CIDRs = append(is.CIDRs, pr.String())
		}
		st.Interfaces = append(st.Interfaces, is)
	}
	return st, nil
}

func linkInfo(l netlink.Link) Link {
	a := l.Attrs()
	return Link{Name: a.Name, Index: a.Index, Loopback: a.Flags&net.FlagLoopback != 0, TxQLen: a.TxQLen}
}

// retry repeats a dump interrupted by a concurrent change.
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range 5 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// current reads the tc state of a link.
func (d *Driver) current(l netlink.Link) (Current, error) {
	name := l.Attrs().Name
	var cur Current
	qs, err := retry(func() ([]netlink.Qdisc, error) { return d.h.QdiscList(l) })
	if err != nil {
		return cur, fmt.Errorf("list qdiscs of %s: %w", name, err)
	}
	for _, q := range qs {
		a := q.Attrs()
		switch {
		case a.Parent == netlink.HANDLE_ROOT:
			cur.Root = Qdisc{Kind: q.Type(), Handle: a.Handle, Parent: a.Parent}
		case a.Parent == netlink.HANDLE_INGRESS || a.Handle == 0:
		default:
			cur.Qdiscs = append(cur.Qdiscs, a.Handle)
		}
	}
	if !cur.Ours() {
		return cur, nil
	}
	cs, err := retry(func() ([]netlink.Class, error) { return d.h.ClassList(l, 0) })
	if err != nil {
		return cur, fmt.Errorf("list classes of %s: %w", name, err)
	}
	for _, c := range cs {
		if Major(c.Attrs().Handle) == TagMajor {
			cur.Classes = append(cur.Classes, c.Attrs().Handle)
		}
	}
	fs, err := retry(func() ([]netlink.Filter, error) { return d.h.FilterList(l, RootHandle) })
	if err != nil {
		return cur, fmt.Errorf("list filters of %s: %w", name, err)
	}
	seen := map[uint16]bool{}
	for _, f := range fs {
		if p := f.Attrs().Priority; !seen[p] {
			seen[p] = true
			cur.FilterPrios = append(cur.FilterPrios, p)
		}
	}
	return cur, nil
}

func htbRoot(idx int) *netlink.Htb {
	q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Handle: RootHandle, Parent: netlink.HANDLE_ROOT})
	q.Defcls = uint32(DefaultMinor)
	return q
}

func htbClass(idx int, c Class) *netlink.HtbClass {
	quantum := c.RateBytes / 10
	quantum = max(quantum, 1600)
	quantum = min(quantum, 200_000)
	return netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: idx, Handle: c.Handle, Parent: c.Parent},
		netlink.HtbClassAttrs{Rate: c.RateBytes * 8, Ceil: c.RateBytes * 8, Quantum: uint32(quantum)})
}

func netemQdisc(idx int, n Netem) *netlink.Netem {
	return netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: idx, Handle: n.Handle, Parent: n.Parent},
		netlink.NetemQdiscAttrs{
			Latency:   n.DelayUs,
			Jitter:    n.JitterUs,
			DelayCorr: n.Correlation,
			Loss:      n.Loss,
			LossCorr:  n.Correlation,
			Limit:     n.Limit,
		})
}

// install adds a plan; on error it removes what it added.
func (d *Driver) install(l netlink.Link, p Plan) (err error) {
	idx := l.Attrs().Index
	// owned: the slot's class is ours to roll back. Before that only an
	// empty root we created may be removed (slot 0 matches no class).
	owned := false
	defer func() {
		if err != nil {
			slot := 0
			if owned {
				slot = p.Slot
			}
			if _, rerr := d.removeSlot(l, slot, 0); rerr != nil {
				err = errors.Join(err, fmt.Errorf("roll back slot %d on %s: %w", p.Slot, p.Iface, rerr))
			}
		}
	}()
	if p.CreateRoot {
		if err := d.h.QdiscReplace(htbRoot(idx)); err != nil {
			return fmt.Errorf("replace root qdisc %s of %s with htb %s: %w", p.Previous, p.Iface, HandleString(RootHandle), err)
		}
		if err := d.h.ClassAdd(htbClass(idx, p.DefaultClass)); err != nil {
			return fmt.Errorf("add default htb class %s on %s: %w", HandleString(p.DefaultClass.Handle), p.Iface, err)
		}
	}
	if err := d.h.ClassAdd(htbClass(idx, p.Class)); err != nil {
		return fmt.Errorf("add htb class %s on %s: %w", HandleString(p.Class.Handle), p.Iface, err)
	}
	owned = true
	if err := d.h.QdiscAdd(netemQdisc(idx, p.Netem)); err != nil {
		msg := ""
		if errors.Is(err, unix.ENOENT) {
			msg = fmt.Sprintf(" (netem qdisc not supported by this kernel (%s)?)", kernelRelease())
		}
		return fmt.Errorf("add netem qdisc %s on %s%s: %w", HandleString(p.Netem.Handle), p.Iface, msg, err)
	}
	if err := d.addMarkFilter(idx, p.Filter); err != nil {
		return fmt.Errorf("add u32 filter %q on %s: %w", p.Filter.Desc, p.Iface, err)
	}
	return nil
}

func gone(err error) bool {
	var lnf netlink.LinkNotFoundError
	return err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.As(err, &lnf)
}

// faultClasses returns the slots with a class under our root.
func faultClasses(cur Current) []int {
	var slots []int
	for _, c := range cur.Classes {
		if m := int(Minor(c)); Major(c) == TagMajor && m >= FirstSlot && m <= LastSlot {
			slots = append(slots, m)
		}
	}
	return slots
}

// MaxDrain bounds how long a revert waits, once a slot's filters are
// gone, for its netem leaf to send the packets it holds: each leaves when
// its delay is over, so the leaf is empty one delay (plus jitter) later.
// Deleting the class sooner would drop them all — for TCP a
// retransmission timeout on every connection with a packet in flight,
// for the users a slow tail after the fault ended. A delay longer than
// this still loses what is left in the leaf when the wait ends.
const MaxDrain = time.Second

// removeSlot deletes a slot's filters and class (its netem leaf goes with
// the class) and, when no slot is left, the agent's root, which makes the
// kernel reinstall its default root qdisc. Missing pieces are fine.
// Between the two it waits up to drain for the leaf to empty.
func (d *Driver) removeSlot(l netlink.Link, slot int, drain time.Duration) (rootDeleted bool, err error) {
	name, idx := l.Attrs().Name, l.Attrs().Index
	cur, err := d.current(l)
	if err != nil {
		if gone(err) {
			return false, nil
		}
		return false, err
	}
	if !cur.Ours() {
		return false, nil // our objects live only under our root
	}
	v4, v6 := FilterPrios(slot)
	for _, pr := range cur.FilterPrios {
		if pr != v4 && pr != v6 {
			continue
		}
		// Protocol 0 deletes the prio's filters whatever their protocol
		// (all, or ip/ipv6 from earlier agents).
		f := &netlink.U32{FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: RootHandle, Priority: pr}}
		if err := d.h.FilterDel(f); !gone(err) {
			return false, fmt.Errorf("delete u32 filters prio %d on %s: %w", pr, name, err)
		}
	}
	if drain > 0 && slices.Contains(cur.Qdiscs, NetemHandle(slot)) {
		d.drain(l, NetemHandle(slot), drain)
	}
	for _, c := range cur.Classes {
		if c != ClassHandle(slot) {
			continue
		}
		if err := d.h.ClassDel(htbClass(idx, Class{Handle: c, Parent: RootHandle, RateBytes: UnshapedBytesPerSecond})); !gone(err) {
			return false, fmt.Errorf("delete htb class %s on %s: %w", HandleString(c), name, err)
		}
	}
	cur, err = d.current(l)
	if err != nil {
		if gone(err) {
			return false, nil
		}
		return false, err
	}
	if !cur.Ours() || len(faultClasses(cur)) > 0 {
		return false, nil
	}
	for _, pr := range cur.FilterPrios {
		if SlotOfPrio(pr) != 0 {
			return false, nil // filters of a slot whose class is gone: Prune's job
		}
	}
	if err := d.h.QdiscDel(htbRoot(idx)); !gone(err) {
		return false, fmt.Errorf("delete htb root %s on %s: %w", HandleString(RootHandle), name, err)
	}
	return true, nil
}

// drain waits until the netem qdisc h on l holds no packet, it is gone,
// or max has passed. New packets reach it no more (its filters are
// deleted), so what it holds only leaves.
func (d *Driver) drain(l netlink.Link, h uint32, max time.Duration) {
	start := time.Now()
	for {
		qlen, ok := d.netemQlen(l, h)
		if !ok || qlen == 0 {
			d.lg.Debug("netem leaf drained", zap.String("interface", l.Attrs().Name), zap.String("qdisc", HandleString(h)),
				zap.Duration("took", time.Since(start)))
			return
		}
		if time.Since(start) >= max {
			d.lg.Warn("netem leaf still holds packets; removing it drops them", zap.String("interface", l.Attrs().Name),
				zap.String("qdisc", HandleString(h)), zap.Uint32("packets", qlen), zap.Duration("waited", max))
			return
		}
		time.Sleep(drainPoll)
	}
}

// drainPoll is how often drain reads the leaf's queue length.
const drainPoll = 10 * time.Millisecond

// netemQlen returns the queue length of qdisc h on l; ok is false when
// the qdisc is gone or its statistics cannot be read.
func (d *Driver) netemQlen(l netlink.Link, h uint32) (qlen uint32, ok bool) {
	qs, err := retry(func() ([]netlink.Qdisc, error) { return d.h.QdiscList(l) })
	if err != nil {
		return 0, false
	}
	for _, q := range qs {
		if a := q.Attrs(); a.Handle == h && a.Statistics != nil && a.Statistics.Queue != nil {
			return a.Statistics.Queue.Qlen, true
		}
	}
	return 0, false
}

// Apply installs the fault on every interface of the state (class, netem
// leaf, mark filter), then the table that marks its packets, whose set
// elements time out one lease (never past the deadline) plus
// nftexpiry.Margin from now.
func (d *Driver) Apply(ctx context.Context, f agentapi.Fault, state json.RawMessage) (json.RawMessage, error) {
	if f.Deadline.IsZero() || !(f.LeaseSeconds > 0) {
		return nil, errors.New("latency: the fault needs a deadline and a lease (its marking set elements time out)")
	}
	s, err := Parse(f.Latency)
	if err != nil {
		return nil, err
	}
	st, err := DecodeState(state)
	if err != nil {
		return nil, err
	}
	if f.Pod != nil {
		var out json.RawMessage
		err := d.inPod(ctx, f, st.NetNS, func(sub *Driver, pf agentapi.Fault, id kubepod.NSID) error {
			raw, err := sub.Apply(ctx, pf, state)
			if err != nil {
				return err
			}
			out, err = withNetNS(raw, id)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("apply latency fault %s: %w", f.ID, podErr(f.Pod, err))
		}
		return out, nil
	}
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	if len(st.Interfaces) == 0 {
		if st, err = d.resolve(f.ID, s); err != nil {
			return nil, err
		}
	}
	if st.Table == "" {
		st.Table = TableName(f.ID)
	}
	// Applying again replaces the fault's earlier slots, never adds to them.
	if err := d.revertLocked(f, &st); err != nil {
		return nil, err
	}
	fail := func(err error) (json.RawMessage, error) {
		if rerr := d.revertLocked(f, &st); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("apply latency fault %s: %w", f.ID, err)
	}
	for i := range st.Interfaces {
		if err := d.applyIface(f, s, &st.Interfaces[i]); err != nil {
			return fail(err)
		}
	}
	// The classes wait; the marks, whose set elements time out one lease
	// (plus the margin) from now, send the fault's packets into them.
	mp, err := PlanMarks(f.ID, s, st.Interfaces)
	if err != nil {
		return fail(err)
	}
	mp.Table = st.Table
	now := time.Now()
	timeout := nftexpiry.Timeout(now, agentapi.LeaseEnd(now, f.Deadline, f.LeaseSeconds))
	if err := d.installMarks(mp, timeout); err != nil {
		return fail(err)
	}
	d.lg.Info("latency fault marking", zap.String("run", f.RunID), zap.String("fault", f.ID),
		zap.String("table", mp.Table), zap.Duration("elementTimeout", timeout))
	return json.Marshal(st)
}

func (d *Driver) applyIface(f agentapi.Fault, s Spec, is *IfaceState) error {
	l, err := d.h.LinkByName(is.Name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", is.Name, err)
	}
	var prefixes []netip.Prefix
	for _, c := range is.CIDRs {
		pr, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("state of interface %s: %w", is.Name, err)
		}
		prefixes = append(prefixes, pr)
	}
	cur, err := d.current(l)
	if err != nil {
		return err
	}
	p, err := PlanFault(f.ID, linkInfo(l), cur, s, prefixes)
	if err != nil {
		return err
	}
	if err := d.install(l, p); err != nil {
		return err
	}
	is.Slot = p.Slot
	is.Index = l.Attrs().Index
	d.lg.Info("latency fault injected",
		zap.String("run", f.RunID), zap.String("fault", f.ID), zap.String("interface", is.Name),
		zap.Int("slot", p.Slot), zap.Bool("createdRoot", p.CreateRoot), zap.String("previousRoot", p.Previous.String()),
		zap.Strings("cidrs", is.CIDRs), zap.String("filter", p.Filter.Desc))
	return nil
}

// Revert removes the fault's slot from every interface; the agent's root
// goes with the last slot. Already removed pieces count as done.
func (d *Driver) Revert(ctx context.Context, f agentapi.Fault, state json.RawMessage) error {
	st, err := DecodeState(state)
	if err != nil {
		return err
	}
	if f.Pod != nil {
		err := d.inPod(ctx, f, st.NetNS, func(sub *Driver, pf agentapi.Fault, _ kubepod.NSID) error {
			return sub.Revert(ctx, pf, state)
		})
		if kubepod.IsGone(err) {
			d.lg.Info("latency fault's pod network namespace is gone; nothing to revert",
				zap.String("run", f.RunID), zap.String("fault", f.ID), zap.String("podUID", f.Pod.UID), zap.Error(err))
			return nil
		}
		if err != nil {
			return podErr(f.Pod, err)
		}
		return nil
	}
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	return d.revertLocked(f, &st)
}

func (d *Driver) revertLocked(f agentapi.Fault, st *State) error {
	var errs []error
	// The marks first: once the table is gone nothing enters the classes.
	table := st.Table
	if table == "" {
		table = TableName(f.ID)
	}
	if err := d.removeTable(table); err != nil {
		errs = append(errs, fmt.Errorf("revert latency fault %s: %w", f.ID, err))
	}
	for i := range st.Interfaces {
		is := &st.Interfaces[i]
		if is.Slot == 0 {
			continue
		}
		l, err := d.h.LinkByName(is.Name)
		if err != nil {
			if !gone(err) {
				errs = append(errs, fmt.Errorf("interface %s: %w", is.Name, err))
				continue
			}
			is.Slot = 0 // the link and its qdiscs are gone
			continue
		}
		rootDeleted, err := d.removeSlot(l, is.Slot, MaxDrain)
		if err != nil {
			errs = append(errs, fmt.Errorf("revert latency fault %s: %w", f.ID, err))
			continue
		}
		d.lg.Info("latency fault reverted",
			zap.String("run", f.RunID), zap.String("fault", f.ID), zap.String("interface", is.Name),
			zap.Int("slot", is.Slot), zap.Bool("rootDeleted", rootDeleted))
		is.Slot = 0
	}
	return errors.Join(errs...)
}

// Remaining describes what of the fault is still in the kernel: its
// class, netem leaf and filters, and an agent root left with no slot.
func (d *Driver) Remaining(ctx context.Context, f agentapi.Fault, state json.RawMessage) (string, error) {
	st, err := DecodeState(state)
	if err != nil {
		return "", err
	}
	if f.Pod != nil {
		var left string
		err := d.inPod(ctx, f, st.NetNS, func(sub *Driver, pf agentapi.Fault, id kubepod.NSID) error {
			l, err := sub.Remaining(ctx, pf, state)
			if l != "" {
				left = fmt.Sprintf("pod %s/%s network namespace %s: %s", f.Pod.Namespace, f.Pod.Name, id, l)
			}
			return err
		})
		if kubepod.IsGone(err) {
			return "", nil // the namespace, and the fault in it, are gone
		}
		return left, err
	}
	if err := d.acquire(ctx); err != nil {
		return "", err
	}
	defer d.release()
	var left []string
	table := st.Table
	if table == "" {
		table = TableName(f.ID)
	}
	if ok, err := d.tableExists(table); err != nil {
		return "", err
	} else if ok {
		left = append(left, "nftables table "+table)
	}
	for _, is := range st.Interfaces {
		if is.Slot == 0 {
			continue
		}
		l, err := d.h.LinkByName(is.Name)
		if err != nil {
			if gone(err) {
				continue
			}
			return "", fmt.Errorf("interface %s: %w", is.Name, err)
		}
		cur, err := d.current(l)
		if err != nil {
			return "", err
		}
		left = append(left, describeSlot(is.Name, cur, is.Slot)...)
		if cur.Ours() && len(faultClasses(cur)) == 0 {
			left = append(left, fmt.Sprintf("%s: htb root %s with no fault class", is.Name, HandleString(RootHandle)))
		}
	}
	return strings.Join(left, "; "), nil
}

func describeSlot(iface string, cur Current, slot int) []string {
	if !cur.Ours() {
		return nil
	}
	var left []string
	for _, c := range cur.Classes {
		if c == ClassHandle(slot) {
			left = append(left, fmt.Sprintf("%s: htb class %s", iface, HandleString(c)))
		}
	}
	for _, q := range cur.Qdiscs {
		if q == NetemHandle(slot) {
			left = append(left, fmt.Sprintf("%s: netem qdisc %s", iface, HandleString(q)))
		}
	}
	for _, pr := range cur.FilterPrios {
		if SlotOfPrio(pr) == slot {
			left = append(left, fmt.Sprintf("%s: u32 filters prio %d", iface, pr))
		}
	}
	return left
}

// Prune removes every slot in an agent root (cd00:) of the node's
// namespace that no node-scoped state in keep owns, and the root itself
// once it holds no slot (so the kernel's default root qdisc comes back),
// plus a leftover probe link. Pods' namespaces are not swept: a
// pod-scoped fault's intent, with its namespace, is in the ledger before
// anything is installed, so start-up recovery reverts it.
func (d *Driver) Prune(ctx context.Context, keep []json.RawMessage) ([]string, error) {
	owned := Owned(keep)
	ownedTables := OwnedTables(keep)
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer d.release()
	var removed []string
	var errs []error
	tables, err := d.tables()
	if err != nil {
		errs = append(errs, err)
	}
	for _, t := range tables {
		if ownedTables[t] {
			continue
		}
		if err := d.removeTable(t); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, "nftables table "+t)
	}
	links, err := retry(d.h.LinkList)
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("list links: %w", err))...)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if name == ProbeLink {
			if err := d.h.LinkDel(l); !gone(err) {
				errs = append(errs, fmt.Errorf("delete probe link: %w", err))
			} else {
				removed = append(removed, "dummy link "+ProbeLink)
			}
			continue
		}
		cur, err := d.current(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !cur.Ours() {
			continue
		}
		slots := map[int]bool{}
		for _, s := range faultClasses(cur) {
			slots[s] = true
		}
		for _, pr := range cur.FilterPrios {
			if s := SlotOfPrio(pr); s != 0 {
				slots[s] = true
			}
		}
		var sorted []int
		for s := range slots {
			if !owned[name][s] {
				sorted = append(sorted, s)
			}
		}
		sort.Ints(sorted)
		rootGone := false
		for _, s := range sorted {
			what := strings.Join(describeSlot(name, cur, s), ", ")
			rd, err := d.removeSlot(l, s, 0)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, fmt.Sprintf("%s: latency slot %d (%s)", name, s, what))
			rootGone = rootGone || rd
		}
		if !rootGone && len(owned[name]) == 0 {
			// A root with no slot at all (crash between root and class).
			if rd, err := d.removeSlot(l, 0, 0); err != nil {
				errs = append(errs, err)
			} else {
				rootGone = rd
			}
		}
		if rootGone {
			removed = append(removed, fmt.Sprintf("%s: htb root %s (kernel default root qdisc restored)", name, HandleString(RootHandle)))
			d.lg.Info("latency leftover root pruned", zap.String("interface", name))
		}
	}
	return removed, errors.Join(errs...)
}

// inPod runs fn with the Driver of the pod's network namespace: the
// namespace id recorded in the state (an error wrapping kubepod.ErrGone
// when it no longer exists), or, with id nil, the pod's namespace now.
// fn gets the fault without its pod, as that Driver acts in the pod's
// namespace as if it were its own. Calls on one namespace share its
// Driver, so they serialise on its lock.
func (d *Driver) inPod(ctx context.Context, f agentapi.Fault, id *kubepod.NSID, fn func(sub *Driver, f agentapi.Fault, id kubepod.NSID) error) error {
	if err := kubepod.ValidatePod(f.Pod); err != nil {
		return err
	}
	if d.pods == nil {
		return errors.New("this agent cannot reach pods' network namespaces (no pod lookup configured)")
	}
	var ns *kubepod.NetNS
	var err error
	if id == nil {
		ns, err = d.pods.OpenNetNS(ctx, *f.Pod)
	} else {
		ns, err = d.pods.FindNetNS(ctx, *f.Pod, *id)
	}
	if err != nil {
		return err
	}
	defer ns.Close()
	pd, err := d.podDriver(ns, *f.Pod)
	if err != nil {
		return err
	}
	defer d.releasePod(ns.ID)
	pf := f
	pf.Pod = nil
	return fn(pd, pf, ns.ID)
}

// podDriver returns the shared Driver of the open namespace ns, opening
// one if no call is using that namespace now.
func (d *Driver) podDriver(ns *kubepod.NetNS, pod agentapi.Pod) (*Driver, error) {
	d.podMu.Lock()
	defer d.podMu.Unlock()
	if pd := d.byNS[ns.ID]; pd != nil {
		pd.refs++
		return pd.d, nil
	}
	lg := d.lg.With(zap.String("podNamespace", pod.Namespace), zap.String("pod", pod.Name),
		zap.String("podUID", pod.UID), zap.Stringer("netns", ns.ID))
	sub, err := newAt("", ns.Fd(), lg)
	if err != nil {
		return nil, err
	}
	d.byNS[ns.ID] = &podDriver{d: sub, refs: 1}
	return sub, nil
}

func (d *Driver) releasePod(id kubepod.NSID) {
	d.podMu.Lock()
	defer d.podMu.Unlock()
	pd := d.byNS[id]
	if pd == nil {
		return
	}
	if pd.refs--; pd.refs == 0 {
		delete(d.byNS, id)
		// In the background: the nftables socket's close waits for
		// nf_tables to clean up after the commit just made (~11 ms).
		d.podClosing.Go(func() { pd.d.Close() })
	}
}

// withNetNS adds the namespace identity to a state.
func withNetNS(raw json.RawMessage, id kubepod.NSID) (json.RawMessage, error) {
	st, err := DecodeState(raw)
	if err != nil {
		return nil, err
	}
	st.NetNS = &id
	return json.Marshal(st)
}

func podErr(p *agentapi.Pod, err error) error {
	return fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
}

// SelfExpiry says the kernel ends a latency fault by itself: the elements
// of its marking sets time out nftexpiry.Margin after the lease they were
// set for, and unmarked packets never reach the netem class.
func (d *Driver) SelfExpiry() (string, time.Duration) {
	return agentapi.SelfExpiryKernel, nftexpiry.Margin
}

// Renew checks the fault is wholly in place (on each of its interfaces
// its class, netem leaf and mark filter; its table with every chain, rule
// and set element) and gives the set elements a timeout of until plus
// nftexpiry.Margin, in one transaction. It returns what is in place, or
// "" when anything is missing (then nothing was extended).
func (d *Driver) Renew(ctx context.Context, f agentapi.Fault, state json.RawMessage, until time.Time) (string, error) {
	s, err := Parse(f.Latency)
	if err != nil {
		return "", err
	}
	st, err := DecodeState(state)
	if err != nil {
		return "", err
	}
	if f.Pod != nil {
		var left string
		err := d.inPod(ctx, f, st.NetNS, func(sub *Driver, pf agentapi.Fault, id kubepod.NSID) error {
			l, err := sub.Renew(ctx, pf, state, until)
			if l != "" {
				left = fmt.Sprintf("pod %s/%s network namespace %s: %s", f.Pod.Namespace, f.Pod.Name, id, l)
			}
			return err
		})
		if kubepod.IsGone(err) {
			return "", nil // the namespace, and the fault in it, are gone
		}
		if err != nil {
			return "", podErr(f.Pod, err)
		}
		return left, nil
	}
	if err := d.acquire(ctx); err != nil {
		return "", err
	}
	defer d.release()
	missing := func(what string) (string, error) {
		d.lg.Warn("latency fault no longer in place", zap.String("run", f.RunID), zap.String("fault", f.ID), zap.String("missing", what))
		return "", nil
	}
	var held []string
	for _, is := range st.Interfaces {
		if is.Slot == 0 {
			return missing(is.Name + ": no slot")
		}
		l, err := d.h.LinkByName(is.Name)
		if gone(err) && err != nil {
			return missing("interface " + is.Name)
		}
		if err != nil {
			return "", fmt.Errorf("interface %s: %w", is.Name, err)
		}
		cur, err := d.current(l)
		if err != nil {
			return "", err
		}
		prio, _ := FilterPrios(is.Slot)
		switch {
		case !cur.Ours():
			return missing(fmt.Sprintf("%s: htb root %s", is.Name, HandleString(RootHandle)))
		case !slices.Contains(cur.Classes, ClassHandle(is.Slot)):
			return missing(fmt.Sprintf("%s: htb class %s", is.Name, HandleString(ClassHandle(is.Slot))))
		case !slices.Contains(cur.Qdiscs, NetemHandle(is.Slot)):
			return missing(fmt.Sprintf("%s: netem qdisc %s", is.Name, HandleString(NetemHandle(is.Slot))))
		case !slices.Contains(cur.FilterPrios, prio):
			return missing(fmt.Sprintf("%s: u32 filter prio %d", is.Name, prio))
		}
		held = append(held, fmt.Sprintf("%s: slot %d", is.Name, is.Slot))
	}
	mp, err := PlanMarks(f.ID, s, st.Interfaces)
	if err != nil {
		return "", err
	}
	if st.Table != "" {
		mp.Table = st.Table
	}
	err = d.refreshMarks(mp, nftexpiry.Timeout(time.Now(), until))
	if errors.Is(err, nftexpiry.ErrMissing) {
		return missing(err.Error())
	}
	if err != nil {
		return "", fmt.Errorf("renew latency fault %s: %w", f.ID, err)
	}
	return strings.Join(append(held, "nftables table "+mp.Table), "; "), nil
}
