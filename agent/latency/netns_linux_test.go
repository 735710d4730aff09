package latency

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// testNS is an unnamed network namespace made by a test. It lives as long
// as its fd (closed at cleanup, which destroys it with every link and
// qdisc inside); Path names it for New without a bind mount.
type testNS struct {
	ns   netns.NsHandle
	h    *netlink.Handle
	Path string
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veth pairs and qdiscs inside them")
	}
}

// wrapNS is a testNS for a namespace someone else made (a fake pod's): it
// holds a duplicate of h, closed at cleanup.
func wrapNS(t testing.TB, h netns.NsHandle) *testNS {
	t.Helper()
	fd, err := unix.FcntlInt(uintptr(h), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ns := netns.NsHandle(fd)
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(func() { nh.Close(); ns.Close() })
	if lo, err := nh.LinkByName("lo"); err == nil {
		nh.LinkSetUp(lo)
	}
	return &testNS{ns: ns, h: nh, Path: fmt.Sprintf("/proc/self/fd/%d", fd)}
}

func newTestNS(t testing.TB) *testNS {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // switches this thread into it
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the original netns: %v", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		t.Fatalf("netlink handle: %v", err)
	}
	tn := &testNS{ns: ns, h: h, Path: fmt.Sprintf("/proc/self/fd/%d", int(ns))}
	t.Cleanup(func() { h.Close(); ns.Close() })
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return tn
}

// do runs f on a thread inside the namespace: sockets f creates stay there.
func (tn *testNS) do(t testing.TB, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(tn.ns); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	f()
}

func (tn *testNS) link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := tn.h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func (tn *testNS) addAddr(t testing.TB, name, cidr string) {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	a.Flags = unix.IFA_F_NODAD
	if err := tn.h.AddrAdd(tn.link(t, name), a); err != nil {
		t.Fatalf("add %s to %s: %v", cidr, name, err)
	}
}

func (tn *testNS) addRoute(t testing.TB, dst, gw, dev string) {
	t.Helper()
	_, n, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.h.RouteAdd(&netlink.Route{Dst: n, Gw: net.ParseIP(gw), LinkIndex: tn.link(t, dev).Attrs().Index}); err != nil {
		t.Fatalf("route %s via %s: %v", dst, gw, err)
	}
}

// root returns the root qdisc of a link.
func (tn *testNS) root(t testing.TB, name string) Qdisc {
	t.Helper()
	qs, err := tn.h.QdiscList(tn.link(t, name))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			return Qdisc{Kind: q.Type(), Handle: q.Attrs().Handle, Parent: q.Attrs().Parent}
		}
	}
	return Qdisc{}
}

// pair is the test topology: the agent's namespace A with veth a0
// (10.99.0.1, fd99::1) and a far namespace B with b0 (10.99.0.2, fd99::2)
// holding a "target" 10.99.1.2 / fd99:1::2 and an "other" 10.99.2.2 /
// fd99:2::2 on its loopback, both routed from A through b0.
type pair struct{ A, B *testNS }

func newPair(t testing.TB) pair {
	t.Helper()
	return newPairFrom(t, newTestNS(t))
}

// newPairFrom builds the pair topology with a as the agent's side.
func newPairFrom(t testing.TB, a *testNS) pair {
	t.Helper()
	p := pair{A: a, B: newTestNS(t)}
	la := netlink.NewLinkAttrs()
	la.Name = "a0"
	la.TxQLen = 1000
	if err := p.A.h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "b0", PeerNamespace: netlink.NsFd(p.B.ns)}); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, c := range []struct {
		ns   *testNS
		name string
	}{{p.A, "a0"}, {p.B, "b0"}} {
		if err := c.ns.h.LinkSetUp(c.ns.link(t, c.name)); err != nil {
			t.Fatal(err)
		}
	}
	p.A.addAddr(t, "a0", "10.99.0.1/24")
	p.A.addAddr(t, "a0", "fd99::1/64")
	p.B.addAddr(t, "b0", "10.99.0.2/24")
	p.B.addAddr(t, "b0", "fd99::2/64")
	for _, a := range []string{"10.99.1.2/32", "10.99.2.2/32", "fd99:1::2/128", "fd99:2::2/128"} {
		p.B.addAddr(t, "lo", a)
	}
	p.A.addRoute(t, "10.99.1.0/24", "10.99.0.2", "a0")
	p.A.addRoute(t, "10.99.2.0/24", "10.99.0.2", "a0")
	p.A.addRoute(t, "fd99:1::/64", "fd99::2", "a0")
	p.A.addRoute(t, "fd99:2::/64", "fd99::2", "a0")
	return p
}

func newDriver(t testing.TB, tn *testNS) *Driver {
	t.Helper()
	d, err := New(tn.Path, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func latencyFault(id string, l agentapi.Latency) agentapi.Fault {
	return agentapi.Fault{ID: id, RunID: "run1", Kind: agentapi.KindLatency, Latency: &l,
		Deadline: time.Now().Add(time.Hour), LeaseSeconds: 600}
}
