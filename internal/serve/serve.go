// Package serve holds what every chaosd HTTP listener shares: the bounds
// that keep an unauthenticated client from growing a daemon's memory
// (header size, read and idle times, concurrent connections, body size)
// and the parsing of the Authorization header. chaosd's API and the node
// agent's API both build their servers and listeners here, so the two
// daemons answer a flood, or a bearer token, the same way. TLS, when a
// listener has it, wraps the listener Listen returns.
package serve

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound one HTTP server and each of its listeners.
type Limits struct {
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the time to read the headers, ReadTimeout
	// the whole request including its body, IdleTimeout a keep-alive
	// connection between requests.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// MaxConns bounds the connections open at once on each listener; a
	// client beyond it waits in the kernel's accept queue.
	MaxConns int
	// MaxBodyBytes bounds a request body (Body applies it).
	MaxBodyBytes int64
}

// DefaultLimits are the bounds of both daemons' APIs: at most 256
// connections per listener, each holding at most 8 KiB of headers plus
// the server's buffers, so a flood costs a few MiB at most.
var DefaultLimits = Limits{
	MaxHeaderBytes:    8 << 10,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       30 * time.Second,
	IdleTimeout:       60 * time.Second,
	MaxConns:          256,
	MaxBodyBytes:      1 << 20,
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	return l
}

// Server returns an http.Server serving h within lim (zero fields take
// DefaultLimits). Request bodies are bounded too (Body), so a handler
// that forgets to bound its own cannot be fed without end. Serve it only
// on listeners from Listen or Limit.
func Server(h http.Handler, lim Limits, errLog *log.Logger) *http.Server {
	lim = lim.withDefaults()
	return &http.Server{
		Handler:           Body(lim.MaxBodyBytes, h),
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ErrorLog:          errLog,
	}
}

// Limit bounds the connections ln has open at once to lim.MaxConns
// (DefaultLimits' when zero).
func Limit(ln net.Listener, lim Limits) net.Listener {
	return netutil.LimitListener(ln, lim.withDefaults().MaxConns)
}

// Listen listens on network ("tcp" or "unix") at addr with the
// connection cap of lim.
func Listen(network, addr string, lim Limits) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return Limit(ln, lim), nil
}

// Body bounds every request body read through h to n bytes (a larger
// body makes the read fail, and the handler answers 400 or 413).
func Body(n int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		h.ServeHTTP(w, r)
	})
}

// ErrNoBearer means the Authorization header carries no bearer token.
var ErrNoBearer = errors.New("no bearer token")

// Bearer returns the token of an "Authorization: Bearer TOKEN" header
// value (RFC 6750): the scheme is case-insensitive, separated from the
// token by spaces, and the token is trimmed. Both daemons parse the
// header here.
func Bearer(header string) (string, error) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoBearer
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", ErrNoBearer
	}
	return tok, nil
}
