package partition

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod/kubepodtest"
	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// The floor and the everyday alternative for the agent's partition
// (agent.BenchmarkInjectRevert/partition): the very table the driver
// builds for that benchmark's fault (10.98.0.0/16, both directions, no
// control port in that namespace), created and deleted in a network
// namespace the benchmark made. Each reports, as medians over its
// iterations, create-p50-µs, delete-p50-µs and total-p50-µs (create +
// delete of one iteration), so a report can divide the agent's
// total-p50-µs by the floor's.

// benchPlan is the plan of agent.BenchmarkInjectRevert's partition fault.
func benchPlan(b *testing.B) Plan {
	spec, err := Parse(&agentapi.Partition{CIDRs: []string{"10.98.0.0/16"}})
	if err != nil {
		b.Fatal(err)
	}
	return PlanFault("rk.bench.partition.0", spec, nil)
}

// benchNS is a network namespace the benchmark made, removed at cleanup.
func benchNS(b *testing.B) netns.NsHandle {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: creates a network namespace and nftables tables in it")
	}
	ns := kubepodtest.NewNS(b)
	b.Cleanup(func() { ns.Close() })
	return ns
}

// reportCycles reports the medians of create, delete and their sum per
// iteration.
func reportCycles(b *testing.B, create, del []time.Duration) {
	total := make([]time.Duration, len(create))
	for i := range create {
		total[i] = create[i] + del[i]
	}
	b.ReportMetric(p50µs(create), "create-p50-µs")
	b.ReportMetric(p50µs(del), "delete-p50-µs")
	b.ReportMetric(p50µs(total), "total-p50-µs")
}

func p50µs(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return float64(m.Nanoseconds()) / 1e3
}

// BenchmarkPartitionFloor is the physical floor of a partition: the
// driver's own batch (install: the same Plan, the same expressions, the
// same replace-the-table step) committed in-process over one nftables
// netlink socket kept open, then the table deleted (remove) on it. No
// API, no ledger, no verification.
func BenchmarkPartitionFloor(b *testing.B) {
	ns := benchNS(b)
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.AsLasting())
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseLasting()
	p := benchPlan(b)
	create := make([]time.Duration, 0, b.N)
	del := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := install(c, p, time.Minute); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := remove(c, p.Table); err != nil {
			b.Fatal(err)
		}
		create = append(create, t1.Sub(t0))
		del = append(del, time.Since(t1))
	}
	b.StopTimer()
	reportCycles(b, create, del)
}

// nftScript renders p for `nft -f` as the driver commits it: the table
// replaced (add, delete, create in one transaction), set elements timing
// out after timeout, a counter in every rule.
func nftScript(p Plan, timeout time.Duration) string {
	var s strings.Builder
	fmt.Fprintf(&s, "add table inet %s\ndelete table inet %s\ntable inet %s {\n", p.Table, p.Table, p.Table)
	for _, set := range p.Sets {
		flags := "interval, timeout"
		var els []string
		if set.Key == nftexpiry.KeyPort {
			flags = "timeout"
			for _, port := range set.Ports {
				els = append(els, fmt.Sprintf("%d timeout %dms", port, timeout.Milliseconds()))
			}
		} else {
			for _, r := range set.Ranges {
				els = append(els, fmt.Sprintf("%s timeout %dms", r, timeout.Milliseconds()))
			}
		}
		fmt.Fprintf(&s, "\tset %s { type %s; flags %s; elements = { %s } }\n", set.Name, set.Key, flags, strings.Join(els, ", "))
	}
	for _, c := range p.Chains {
		fmt.Fprintf(&s, "\tchain %s { type filter hook %s priority %d; policy accept;\n", c.Name, c.Hook, c.Priority)
		for _, r := range c.Rules {
			fmt.Fprintf(&s, "\t\t%s counter %s\n", strings.TrimSuffix(strings.TrimSuffix(r.String(), string(r.Verdict)), " "), r.Verdict)
		}
		s.WriteString("\t}\n")
	}
	s.WriteString("}\n")
	return s.String()
}

// inNS runs fn on a thread in namespace ns (processes it starts are born
// there), then puts the thread back; a thread that cannot be put back is
// never reused.
func inNS(b testing.TB, ns netns.NsHandle, fn func()) {
	b.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		b.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		b.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			b.Errorf("restore the thread's network namespace: %v", err)
			return // the thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// BenchmarkPartitionNftCLI is the everyday alternative: the same ruleset
// as text, `nft -f -` (the nftables package's binary) to create it and
// `nft delete table` to delete it, one process each, started in the
// benchmark's namespace.
func BenchmarkPartitionNftCLI(b *testing.B) {
	nft, err := exec.LookPath("nft")
	if err != nil {
		b.Skip("needs the nft binary (Debian package nftables; hack/deps.sh installs it)")
	}
	ns := benchNS(b)
	p := benchPlan(b)
	script := nftScript(p, time.Minute)
	run := func(stdin string, args ...string) {
		cmd := exec.Command(nft, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("nft %s: %v\n%s\n%s", strings.Join(args, " "), err, out.String(), stdin)
		}
	}
	// The processes must land in the benchmark's namespace, never the
	// host's: a table made over netlink there must be what nft lists.
	probe := &nftables.Table{Name: "chaosd_bench_probe", Family: nftables.TableFamilyINet}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		b.Fatal(err)
	}
	c.AddTable(probe)
	if err := c.Flush(); err != nil {
		b.Fatal(err)
	}
	inNS(b, ns, func() {
		out, err := exec.Command(nft, "list", "tables").CombinedOutput()
		if err != nil || !strings.Contains(string(out), probe.Name) {
			b.Fatalf("nft does not run in the benchmark's namespace: %v\n%s", err, out)
		}
	})
	c.DelTable(probe)
	if err := c.Flush(); err != nil {
		b.Fatal(err)
	}

	create := make([]time.Duration, 0, b.N)
	del := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	inNS(b, ns, func() {
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			run(script, "-f", "-")
			t1 := time.Now()
			run("", "delete", "table", "inet", p.Table)
			create = append(create, t1.Sub(t0))
			del = append(del, time.Since(t1))
		}
	})
	b.StopTimer()
	reportCycles(b, create, del)
}

// TestRootNftScriptIsTheDriversTable: the ruleset BenchmarkPartitionNftCLI
// gives nft is the table the driver commits (as nft lists them, element
// expiry aside), so the two benchmarks compare like with like.
func TestRootNftScriptIsTheDriversTable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and nftables tables in them")
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Fatal("needs the nft binary (Debian package nftables; hack/deps.sh installs it)")
	}
	spec, err := Parse(&agentapi.Partition{CIDRs: []string{"10.98.0.0/16", "10.99.1.0/24", "fd00::/64"}, Ports: []uint16{8082, 53}})
	if err != nil {
		t.Fatal(err)
	}
	p := PlanFault("script", spec, []uint16{7070})
	nsDriver, nsScript := kubepodtest.NewNS(t), kubepodtest.NewNS(t)
	defer nsDriver.Close()
	defer nsScript.Close()

	c, err := nftables.New(nftables.WithNetNSFd(int(nsDriver)))
	if err != nil {
		t.Fatal(err)
	}
	if err := install(c, p, time.Minute); err != nil {
		t.Fatal(err)
	}
	inNS(t, nsScript, func() {
		cmd := exec.Command(nft, "-f", "-")
		cmd.Stdin = strings.NewReader(nftScript(p, time.Minute))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft -f: %v\n%s", err, out)
		}
	})
	list := func(ns netns.NsHandle) string {
		var out []byte
		inNS(t, ns, func() {
			var err error
			if out, err = exec.Command(nft, "list", "table", "inet", p.Table).CombinedOutput(); err != nil {
				t.Fatalf("nft list: %v\n%s", err, out)
			}
		})
		// Element expiry differs by when each was made.
		lines := strings.Split(string(out), "\n")
		for i, l := range lines {
			if j := strings.Index(l, " expires "); j >= 0 {
				lines[i] = l[:j]
			}
		}
		return strings.Join(lines, "\n")
	}
	if got, want := list(nsScript), list(nsDriver); got != want {
		t.Errorf("nft -f of the script gives\n%s\nthe driver's table is\n%s", got, want)
	}
}
