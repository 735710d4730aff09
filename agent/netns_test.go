package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"go.uber.org/zap"
)

// Child mode: the test binary re-executes itself as a standalone agent so
// crash tests can SIGKILL a real agent process.
const (
	childEnv    = "CHAOSD_AGENT_TEST_CHILD"
	childCfgEnv = "CHAOSD_AGENT_TEST_CONFIG"
)

func childMain() int {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(childCfgEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	lg, _ := zap.NewDevelopment()
	if err := Run(ctx, cfg, lg); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		return 1
	}
	return 0
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and nftables tables inside them")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2) to build test namespaces")
	}
}

var nsSeq atomic.Int64

// testNS is a network namespace the test created; it is deleted at cleanup.
type testNS struct{ name, path string }

func newNS(t testing.TB) testNS {
	t.Helper()
	name := fmt.Sprintf("cdagt-%d-%d", os.Getpid(), nsSeq.Add(1))
	mustIP(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns := testNS{name: name, path: "/run/netns/" + name}
	mustIP(t, "-n", name, "link", "set", "lo", "up")
	return ns
}

func mustIP(t testing.TB, args ...string) {
	t.Helper()
	// Every call is either "netns add/del" or runs with -n inside a test
	// namespace: nothing touches the host's own network namespace.
	if args[0] != "netns" && args[0] != "-n" {
		t.Fatalf("refusing ip command outside a test namespace: %v", args)
	}
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// link joins a and b with a veth pair carrying addrA/addrB (CIDR form).
func link(t testing.TB, a, b testNS, ifA, ifB string, addrs ...[2]string) {
	t.Helper()
	mustIP(t, "-n", a.name, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b.name)
	for _, p := range addrs {
		extra := []string{}
		if strings.Contains(p[0], ":") {
			extra = []string{"nodad"}
		}
		mustIP(t, append([]string{"-n", a.name, "addr", "add", p[0], "dev", ifA}, extra...)...)
		mustIP(t, append([]string{"-n", b.name, "addr", "add", p[1], "dev", ifB}, extra...)...)
	}
	mustIP(t, "-n", a.name, "link", "set", ifA, "up")
	mustIP(t, "-n", b.name, "link", "set", ifB, "up")
}

// inNS runs fn on a locked OS thread switched into ns. The thread is never
// unlocked, so the runtime discards it when the goroutine ends and no
// other goroutine ever runs in the wrong namespace.
func inNS(ns testNS, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromPath(ns.path)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

const dialTimeout = 300 * time.Millisecond

// tcpServer listens in ns on addr and accepts until cleanup.
func tcpServer(t testing.TB, ns testNS, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns.name, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

func tcpReach(ns testNS, addr string) error {
	return inNS(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, dialTimeout)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(dialTimeout))
		buf := make([]byte, 2)
		if _, err := c.Read(buf); err != nil {
			return err
		}
		return nil
	})
}

// udpServer echoes datagrams and counts those it received.
type udpServer struct{ got atomic.Int64 }

func newUDPServer(t testing.TB, ns testNS, addr string) *udpServer {
	t.Helper()
	var pc net.PacketConn
	if err := inNS(ns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatalf("listen udp %s in %s: %v", addr, ns.name, err)
	}
	s := &udpServer{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.got.Add(1)
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return s
}

// udpEcho sends one datagram from ns to addr; it reports whether the echo
// came back. A send refused locally (EPERM from an output drop) is "no".
func udpEcho(ns testNS, addr string) bool {
	return inNS(ns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(dialTimeout))
		buf := make([]byte, 8)
		_, err = c.Read(buf)
		return err
	}) == nil
}

// nsHTTP is an HTTP client whose connections are dialled from inside ns.
func nsHTTP(ns testNS) *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = inNS(ns, func() error {
				d := net.Dialer{Timeout: time.Second}
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

var errNotGone = errors.New("still present")
