package serve

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		name, header, want string
		ok                 bool
	}{
		{"canonical", "Bearer abc", "abc", true},
		{"lower-case scheme", "bearer abc", "abc", true},
		{"upper-case scheme", "BEARER abc", "abc", true},
		{"extra spaces", "  Bearer   abc  ", "abc", true},
		{"empty", "", "", false},
		{"scheme only", "Bearer", "", false},
		{"scheme and spaces", "Bearer   ", "", false},
		{"basic", "Basic YWJjOmRlZg==", "", false},
		{"no space", "Bearerabc", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Bearer(tc.header)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("Bearer(%q) = %q, %v; want %q ok=%v", tc.header, got, err, tc.want, tc.ok)
			}
		})
	}
}

// serveTest serves h within lim on a loopback listener from Listen.
func serveTest(t *testing.T, h http.Handler, lim Limits) string {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", lim)
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(h, lim, nil)
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestHeaderTooLarge: a header past MaxHeaderBytes is answered 431 and
// the connection closed, instead of being buffered.
func TestHeaderTooLarge(t *testing.T) {
	addr := serveTest(t, http.NotFoundHandler(), Limits{MaxHeaderBytes: 4 << 10})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

// TestUnfinishedHeaderTimesOut: a client that never finishes its headers
// is disconnected after ReadHeaderTimeout.
func TestUnfinishedHeaderTimesOut(t *testing.T) {
	addr := serveTest(t, http.NotFoundHandler(), Limits{ReadHeaderTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nX-Pad: aaa")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("closed after %v", took)
	}
}

// TestBodyBounded: a body past MaxBodyBytes fails to read, even for a
// handler that does not bound it itself.
func TestBodyBounded(t *testing.T) {
	addr := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), Limits{MaxBodyBytes: 1 << 10})
	for _, tc := range []struct {
		size int
		want int
	}{{512, http.StatusNoContent}, {4 << 10, http.StatusRequestEntityTooLarge}} {
		resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader(strings.Repeat("x", tc.size)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("body of %d bytes: status %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}

// TestConnectionCap: past MaxConns, a connection is not served until one
// of the open ones closes.
func TestConnectionCap(t *testing.T) {
	addr := serveTest(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		Limits{MaxConns: 2})
	var hold []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nX-Pad: a") // unfinished
		hold = append(hold, c)
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan int, 1)
	go func() {
		cl := &http.Client{Timeout: 5 * time.Second}
		resp, err := cl.Get("http://" + addr + "/")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case code := <-done:
		t.Fatalf("third connection served (%d) while two were held", code)
	case <-time.After(300 * time.Millisecond):
	}
	hold[0].Close()
	select {
	case code := <-done:
		if code != http.StatusNoContent {
			t.Fatalf("status %d after a slot freed", code)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("not served after a slot freed")
	}
	hold[1].Close()
}
