package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// DialerIn returns a DialContext that opens sockets inside the named
// network namespace: the socket is created on an OS thread switched into
// the namespace, and keeps that namespace after the thread switches back.
// This is how the host talks to lab addresses without any route to them.
func DialerIn(nsName string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			// If switching back fails the thread stays locked and dies
			// with this goroutine instead of serving others.
			orig, err := netns.Get()
			if err != nil {
				ch <- result{err: fmt.Errorf("get current netns: %w", err)}
				runtime.UnlockOSThread()
				return
			}
			defer orig.Close()
			target, err := netns.GetFromName(nsName)
			if err != nil {
				ch <- result{err: fmt.Errorf("open netns %s: %w", nsName, err)}
				runtime.UnlockOSThread()
				return
			}
			defer target.Close()
			if err := netns.Set(target); err != nil {
				ch <- result{err: fmt.Errorf("enter netns %s: %w", nsName, err)}
				return
			}
			var d net.Dialer
			c, dialErr := d.DialContext(ctx, network, addr)
			if err := netns.Set(orig); err != nil {
				if c != nil {
					c.Close()
				}
				ch <- result{err: fmt.Errorf("leave netns %s: %w", nsName, err)}
				return
			}
			runtime.UnlockOSThread()
			ch <- result{c, dialErr}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// HTTPClientIn is an HTTP client whose connections start in nsName.
func HTTPClientIn(nsName string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: DialerIn(nsName), DisableKeepAlives: true},
	}
}

// unixHTTPClient talks HTTP over a unix socket.
func unixHTTPClient(path string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
			DisableKeepAlives: true,
		},
	}
}
