// Package guest is run by hack/vmexec's integration test inside the VM: it
// checks that it really runs on the stock kernel (netem and prio exist,
// cgroup v2 has the memory controller) and that the harness carries the
// package's testdata/ and arguments over. It fails on the host.
package guest

import (
	"flag"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var fail = flag.Bool("guest.fail", false, "make TestFailOnPurpose fail, to check that a failure reaches the host")

func TestRunsInVM(t *testing.T) {
	if os.Getenv("CHAOSD_IN_VM") != "1" {
		t.Fatal("CHAOSD_IN_VM is not 1: not running under hack/vmexec")
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	t.Logf("guest kernel %s", rel)
	if host := os.Getenv("CHAOSD_TEST_HOST_RELEASE"); host != "" && host == rel {
		t.Fatalf("guest kernel release %s is the host's", rel)
	}
	if !strings.Contains(rel, "cloud") {
		t.Errorf("guest kernel release %s is not a Debian cloud kernel", rel)
	}
}

func TestTestdataAndWorkdir(t *testing.T) {
	data, err := os.ReadFile("testdata/hello.txt")
	if err != nil {
		t.Fatalf("package testdata/ not in the guest working directory: %v", err)
	}
	if got := strings.TrimSpace(string(data)); got != "hello from the host" {
		t.Fatalf("testdata/hello.txt = %q", got)
	}
}

func TestCgroup2Memory(t *testing.T) {
	data, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control")
	if err != nil {
		t.Fatalf("cgroup2 not mounted at /sys/fs/cgroup: %v", err)
	}
	if !strings.Contains(string(data), "memory") {
		t.Fatalf("memory controller not delegated: subtree_control = %q", data)
	}
}

// TestNetemAndPrioOnVethInFreshNetns adds the qdiscs the host kernel lacks
// on a veth pair in a network namespace of its own.
func TestNetemAndPrioOnVethInFreshNetns(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // also switches this thread into it
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	defer ns.Close()
	defer netns.Set(orig)
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	defer h.Close()

	la := netlink.NewLinkAttrs()
	la.Name = "vm0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "vm1"}); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, name := range []string{"vm0", "vm1"} {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", name, err)
		}
	}
	vm0, _ := h.LinkByName("vm0")
	vm1, _ := h.LinkByName("vm1")

	netem := netlink.NewNetem(netlink.QdiscAttrs{
		LinkIndex: vm0.Attrs().Index,
		Handle:    netlink.MakeHandle(1, 0),
		Parent:    netlink.HANDLE_ROOT,
	}, netlink.NetemQdiscAttrs{Latency: 100_000, Jitter: 10_000})
	if err := h.QdiscAdd(netem); err != nil {
		t.Fatalf("add netem qdisc: %v", err)
	}
	prio := netlink.NewPrio(netlink.QdiscAttrs{
		LinkIndex: vm1.Attrs().Index,
		Handle:    netlink.MakeHandle(1, 0),
		Parent:    netlink.HANDLE_ROOT,
	})
	if err := h.QdiscAdd(prio); err != nil {
		t.Fatalf("add prio qdisc: %v", err)
	}
	for link, want := range map[netlink.Link]string{vm0: "netem", vm1: "prio"} {
		qs, err := h.QdiscList(link)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, q := range qs {
			found = found || q.Type() == want
		}
		if !found {
			t.Errorf("%s: no %s qdisc in %v", link.Attrs().Name, want, qs)
		}
	}
}

// TestExtraDynamicExecutable runs a dynamically linked host executable
// that CHAOSD_VM_FILES put at the path CHAOSD_TEST_EXTRA_EXE names: its
// loader and shared libraries must have come along.
func TestExtraDynamicExecutable(t *testing.T) {
	exe := os.Getenv("CHAOSD_TEST_EXTRA_EXE")
	if exe == "" {
		t.Skip("no CHAOSD_TEST_EXTRA_EXE")
	}
	out, err := exec.Command(exe, "-c", "echo extra ok").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "extra ok" {
		t.Fatalf("%s -c 'echo extra ok': %v: %q", exe, err, out)
	}
}

func TestFailOnPurpose(t *testing.T) {
	if !*fail {
		t.Skip("only fails with -guest.fail")
	}
	t.Fatal("failing on purpose (-guest.fail)")
}
