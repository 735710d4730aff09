package nftexpiry

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/chaosd/chaosd/agent/kubepod/kubepodtest"
)

// TestRootLastingReplacedAfterError: one socket serves operation after
// operation; an operation that fails (a batch refused by the kernel, or a
// builder giving up with messages queued) leaves nothing behind for the
// next one: its queued messages are never sent, the next operation runs
// on a fresh socket and reads its own answers.
func TestRootLastingReplacedAfterError(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and nftables tables in it")
	}
	ns := kubepodtest.NewNS(t)
	t.Cleanup(func() { ns.Close() })
	l := NewLasting(int(ns))
	defer l.Close()

	tables := func() []string {
		t.Helper()
		var names []string
		if err := l.Do(func(c *nftables.Conn) error {
			ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
			for _, tb := range ts {
				names = append(names, tb.Name)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		return names
	}
	add := func(name string) func(c *nftables.Conn) error {
		return func(c *nftables.Conn) error {
			c.AddTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
			return c.Flush()
		}
	}
	var first *nftables.Conn
	if err := l.Do(func(c *nftables.Conn) error { first = c; return add("one")(c) }); err != nil {
		t.Fatal(err)
	}
	var same *nftables.Conn
	if err := l.Do(func(c *nftables.Conn) error { same = c; return add("two")(c) }); err != nil {
		t.Fatal(err)
	}
	if same != first {
		t.Error("a second operation opened another connection; want the lasting one")
	}

	// A builder that gives up after queueing a message.
	errGiveUp := errors.New("gave up")
	err := l.Do(func(c *nftables.Conn) error {
		c.AddTable(&nftables.Table{Name: "queued", Family: nftables.TableFamilyINet})
		return errGiveUp
	})
	if !errors.Is(err, errGiveUp) {
		t.Fatalf("Do = %v, want the builder's error", err)
	}
	if err := l.Do(add("three")); err != nil {
		t.Fatal(err)
	}
	if got, want := tables(), []string{"one", "three", "two"}; !slices.Equal(got, want) {
		t.Errorf("after a builder gave up: tables = %v, want %v (its queued message is never sent)", got, want)
	}
	// A batch the kernel refuses: deleting a table that is not there, in
	// the middle of a batch whose other messages are acknowledged.
	var failed *nftables.Conn
	err = l.Do(func(c *nftables.Conn) error {
		failed = c
		c.AddTable(&nftables.Table{Name: "four", Family: nftables.TableFamilyINet})
		c.DelTable(&nftables.Table{Name: "absent", Family: nftables.TableFamilyINet})
		c.AddTable(&nftables.Table{Name: "four2", Family: nftables.TableFamilyINet})
		return c.Flush()
	})
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("batch deleting an absent table: %v, want ENOENT", err)
	}
	if err := l.Do(add("five")); err != nil {
		t.Fatalf("the operation after a failed batch: %v", err)
	}
	var after *nftables.Conn
	l.Do(func(c *nftables.Conn) error { after = c; return nil })
	if after == failed || after == first {
		t.Error("the connection was kept after a failed operation; want a fresh one")
	}
	// The refused batch applied nothing.
	if got, want := tables(), []string{"five", "one", "three", "two"}; !slices.Equal(got, want) {
		t.Errorf("tables = %v, want %v", got, want)
	}

	// A call that succeeded but left a reply unread: a dump request sent
	// behind the library's back.
	var leaving *nftables.Conn
	if err := l.Do(func(c *nftables.Conn) error {
		leaving = c
		_, err := l.sock.Send(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETTABLE),
				Flags: netlink.Request | netlink.Dump},
			Data: []byte{unix.NFPROTO_INET, 0, 0, 0},
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var next *nftables.Conn
	l.Do(func(c *nftables.Conn) error { next = c; return nil })
	if next == leaving {
		t.Error("the connection was kept with a reply unread on it; want a fresh one")
	}
	if got, want := tables(), []string{"five", "one", "three", "two"}; !slices.Equal(got, want) {
		t.Errorf("after an unread reply: tables = %v, want %v", got, want)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Do(add("six")); err == nil {
		t.Error("Do after Close succeeded")
	}
}
