package nftexpiry

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/chaosd/chaosd/agent/kubepod/kubepodtest"
)

// testConn is an nftables connection in a network namespace the test
// created (destroyed with everything in it at cleanup).
func testConn(t *testing.T) *nftables.Conn {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and nftables sets in it")
	}
	ns := kubepodtest.NewNS(t)
	t.Cleanup(func() { ns.Close() })
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRootRefreshAndExpiry: the elements time out by themselves; a
// refresh moves their timeout; a refresh finds a missing element (and
// changes nothing); a table whose elements timed out refreshes as
// missing; a flushed chain is found by CheckRules.
func TestRootRefreshAndExpiry(t *testing.T) {
	c := testConn(t)
	sets := append(AddrSets(prefixes("10.1.0.0/16", "10.3.0.0/16", "255.255.255.0/24", "fd00::/64"), "c4", "c6"),
		PortSet("p", []uint16{8082, 8084}))
	tb := c.AddTable(&nftables.Table{Name: "cdtest", Family: nftables.TableFamilyINet})
	ks, err := Add(c, tb, sets, 600*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ch := c.AddChain(&nftables.Chain{Name: "out", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter})
	c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: ks["c4"].Name, SetID: ks["c4"].ID},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		t.Fatalf("install: %v", err)
	}
	inspect := func(name string) Expiry {
		t.Helper()
		e, err := Inspect(c, tb, name)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, s := range sets {
		e := inspect(s.Name)
		t.Logf("set %s: %d elements, time left %v-%v", s.Name, e.Elements, e.First, e.Last)
		if e.Elements != s.Elements() || e.Timed != s.Timed() || e.Last > 600*time.Millisecond || e.First < 400*time.Millisecond {
			t.Fatalf("set %s after add: %+v, want %d elements expiring in ~600ms", s.Name, e, s.Elements())
		}
	}
	if err := CheckRules(c, tb, []ChainRules{{"out", 1}}); err != nil {
		t.Fatalf("CheckRules: %v", err)
	}

	// Refreshed at 300ms for 2s: alive well past the first timeout.
	time.Sleep(300 * time.Millisecond)
	if err := Refresh(c, tb, sets, 2*time.Second); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, s := range sets {
		if e := inspect(s.Name); e.Elements != s.Elements() || e.Timed != s.Timed() || e.First < time.Second {
			t.Fatalf("set %s after refresh: %+v", s.Name, e)
		}
	}

	// One element deleted behind our back: the refresh is refused as a
	// whole, and the other elements keep their old timeout.
	before := inspect("c4")
	del := sets[0].kernelSet(tb)
	if err := c.SetDeleteElements(del, Set{Key: KeyIPv4, Ranges: sets[0].Ranges[1:2]}.elements(0)); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("delete one range: %v", err)
	}
	err = Refresh(c, tb, sets, time.Hour)
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("Refresh with a range missing: %v, want ErrMissing", err)
	}
	t.Logf("refresh with a missing range: %v", err)
	if e := inspect("c6"); e.Last > 2*time.Second {
		t.Fatalf("a refused refresh changed another set: %+v", e)
	}
	if e := inspect("c4"); e.Elements != before.Elements-2 {
		t.Fatalf("c4 after deleting one range: %+v (before %+v)", e, before)
	}

	// Nobody refreshes: every element times out by itself.
	start := time.Now()
	for inspect("c6").Timed != 0 || inspect("p").Timed != 0 || inspect("c4").Timed != 0 {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("elements still there %v after their timeout", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("elements timed out %v after the check", time.Since(start).Round(time.Millisecond))
	if err := Refresh(c, tb, sets[1:], time.Hour); !errors.Is(err, ErrMissing) {
		t.Fatalf("Refresh after the timeout: %v, want ErrMissing", err)
	}

	c.FlushChain(ch)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := CheckRules(c, tb, []ChainRules{{"out", 1}}); !errors.Is(err, ErrMissing) {
		t.Fatalf("CheckRules on a flushed chain: %v", err)
	}
	if err := CheckRules(c, tb, []ChainRules{{"nope", 0}}); !errors.Is(err, ErrMissing) {
		t.Fatalf("CheckRules on a missing chain: %v", err)
	}
	c.DelTable(tb)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := Refresh(c, tb, sets, time.Hour); !errors.Is(err, ErrMissing) {
		t.Fatalf("Refresh without the table: %v", err)
	}
}
