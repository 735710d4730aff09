package nftexpiry

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Lasting is one nftables netlink socket kept open in a network namespace
// and used by one caller at a time.
//
// Why: closing a netlink socket right after a commit waits in the kernel
// for nf_tables to finish cleaning up that transaction (netlink_release →
// nft_rcv_nl_event → flush_work, ~11 ms here); a socket per operation pays
// that on every apply and revert. A socket kept open never does.
//
// Safety: a batch built on an nftables.Conn is not safe for concurrent
// builders, so Do serialises its callers. After any error of fn (a failed
// Flush, a list that did not finish, an expression that would not encode
// with messages already queued) the connection is thrown away and the next
// Do dials a fresh one, so no queued message is sent with a later batch and
// no unread reply (an acknowledgement the library stopped reading after the
// first error) is ever taken for the answer to a later request. The same
// when fn succeeded but left anything unread on the socket (checked
// without blocking after every call: the kernel answers a request before
// its sendmsg returns, so whatever is not read by then never will be).
// The old socket is closed in the background; Close waits for it.
type Lasting struct {
	mu     sync.Mutex
	ns     int            // the namespace's fd, owned by the caller
	c      *nftables.Conn // nil: dial at the next Do
	sock   *netlink.Conn  // c's socket
	closed bool
	bg     sync.WaitGroup // discarded sockets being closed
}

// NewLasting returns a Lasting in the network namespace of the open
// descriptor nsFd, which the caller keeps open until Close returns. The
// socket is opened at the first Do.
func NewLasting(nsFd int) *Lasting { return &Lasting{ns: nsFd} }

// Do runs fn with the connection, opening it if needed, after the
// callers before it. (A netlink transaction cannot be interrupted: a
// caller with a context checks it before.)
func (l *Lasting) Do(fn func(c *nftables.Conn) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("nftables connection closed")
	}
	if l.c == nil {
		var sock *netlink.Conn
		c, err := nftables.New(nftables.WithNetNSFd(l.ns), nftables.AsLasting(),
			nftables.WithSockOptions(func(nc *netlink.Conn) error { sock = nc; return nil }))
		if err != nil {
			return fmt.Errorf("nftables connection: %w", err)
		}
		l.c, l.sock = c, sock
	}
	err := fn(l.c)
	if err != nil || l.unread() {
		l.discardLocked()
	}
	return err
}

// unread says whether anything waits to be read on the socket (or it
// cannot tell).
func (l *Lasting) unread() bool {
	if l.sock == nil {
		return true
	}
	rc, err := l.sock.SyscallConn()
	if err != nil {
		return true
	}
	pending := true
	cerr := rc.Control(func(fd uintptr) {
		var b [1]byte
		_, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		pending = !errors.Is(rerr, unix.EAGAIN)
	})
	return cerr != nil || pending
}

// discardLocked drops the connection; its socket is closed in the
// background, since a close right after a commit waits for the kernel.
func (l *Lasting) discardLocked() {
	old := l.c
	l.c, l.sock = nil, nil
	l.bg.Go(func() { _ = old.CloseLasting() })
}

// Close closes the socket and waits for discarded ones; later Do calls
// fail. It waits for a Do in flight.
func (l *Lasting) Close() error {
	l.mu.Lock()
	l.closed = true
	var err error
	if l.c != nil {
		err = l.c.CloseLasting()
		l.c, l.sock = nil, nil
	}
	l.mu.Unlock()
	l.bg.Wait()
	return err
}
