// Package floodtest floods an HTTP listener with clients that send
// headers that never end, for the tests that prove chaosd's and the
// agent's listeners stay bounded. Only for loopback and unix sockets.
package floodtest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Flood keeps conns clients connected to addr until stop, each sending a
// request line and then header bytes forever (reconnecting when the
// server drops it). It returns the connections made and the bytes sent.
func Flood(network, addr, path string, conns int, stop time.Time) (dials, sent int64) {
	var wg sync.WaitGroup
	var nd, ns atomic.Int64
	pad := []byte(strings.Repeat("a", 16<<10))
	for range conns {
		wg.Go(func() {
			for time.Now().Before(stop) {
				c, err := net.DialTimeout(network, addr, time.Second)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				nd.Add(1)
				_ = c.SetDeadline(stop)
				if _, err := c.Write([]byte("POST " + path + " HTTP/1.1\r\nHost: x\r\nX-Pad: ")); err == nil {
					for time.Now().Before(stop) {
						n, err := c.Write(pad)
						ns.Add(int64(n))
						if err != nil {
							break
						}
					}
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	return nd.Load(), ns.Load()
}
