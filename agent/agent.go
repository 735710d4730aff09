// Package agent is the chaosd node agent: it applies faults in a network
// namespace, records them in a write-ahead ledger, reverts them on its own
// at their deadline or when chaosd stops renewing their lease, and serves
// an authenticated HTTP API (agent/agentapi) on a unix socket and
// optionally TCP. It is the only code in chaosd that touches the kernel.
package agent

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/ledger"
)

// Config configures Run.
type Config struct {
	Node       string // node name reported in status and logs
	Socket     string // unix socket path (mode 0600); optional if TCPAddr is set
	TCPAddr    string // optional host:port for the API over TCP
	TokenFile  string // file holding the bearer token (trimmed)
	LedgerPath string // write-ahead ledger file
	// NetNSPath is the network namespace faults are applied in (e.g.
	// /run/netns/x or /proc/PID/ns/net). Empty: the agent's own namespace,
	// as seen by the goroutine that calls Run.
	NetNSPath string
	Version   string
}

// Timeouts for shutdown work, taken on a fresh context: the caller's is
// already cancelled by then.
const (
	shutdownHTTP   = 5 * time.Second
	shutdownRevert = 30 * time.Second
)

type agent struct {
	cfg       Config
	lg        *zap.Logger
	drivers   map[agentapi.Kind]Driver // by kind
	led       *ledger.Ledger
	token     []byte
	exemptTCP atomic.Pointer[[]uint16] // set once the TCP listener is up
	started   time.Time
	caps      map[string]bool   // capability → available
	capErrs   map[string]string // kind → why it is unavailable

	mu       sync.Mutex
	closing  bool
	faults   map[string]*fault
	reverted []string // IDs of reverted faults, oldest first
	// sinceCompact counts reverts since the ledger was last compacted.
	sinceCompact int
}

// Run serves the agent until ctx ends, then reverts every active fault and
// returns. Start-up first reverts whatever the ledger and the kernel hold
// from an earlier life.
func Run(ctx context.Context, cfg Config, lg *zap.Logger) error {
	drivers, closeAll, err := defaultDrivers(cfg, lg)
	if err != nil {
		return err
	}
	defer closeAll()
	return runDrivers(ctx, cfg, lg, drivers)
}

// run serves with the partition driver on be only (unprivileged tests use
// a fake be).
func run(ctx context.Context, cfg Config, lg *zap.Logger, be backend) error {
	return runDrivers(ctx, cfg, lg, []Driver{&partitionDriver{be: be}})
}

func runDrivers(ctx context.Context, cfg Config, lg *zap.Logger, drivers []Driver) (err error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	lg = lg.Named("agent")
	if cfg.Socket == "" && cfg.TCPAddr == "" {
		return errors.New("agent: a unix socket or a TCP address is required")
	}
	if cfg.LedgerPath == "" {
		return errors.New("agent: a ledger path is required")
	}
	token, err := readToken(cfg.TokenFile)
	if err != nil {
		return err
	}
	a := &agent{cfg: cfg, lg: lg, token: token, started: time.Now().UTC(), faults: map[string]*fault{},
		drivers: map[agentapi.Kind]Driver{}}
	for _, d := range drivers {
		if pd, ok := d.(*partitionDriver); ok {
			pd.exempt = a.exemptPorts
		}
		a.drivers[d.Kind()] = d
	}

	led, entries, skipped, err := ledger.Open(cfg.LedgerPath)
	if err != nil {
		return err
	}
	defer led.Close()
	a.led = led
	if skipped > 0 {
		lg.Warn("ledger lines skipped", zap.Int("lines", skipped), zap.String("path", cfg.LedgerPath))
	}
	if err := a.recover(entries); err != nil {
		return fmt.Errorf("agent: start-up recovery: %w", err)
	}
	a.caps, a.capErrs = a.probeCapabilities()

	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	if cfg.Socket != "" {
		ln, err := listenUnix(cfg.Socket)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		defer os.Remove(cfg.Socket)
	}
	if cfg.TCPAddr != "" {
		ln, err := net.Listen("tcp", cfg.TCPAddr)
		if err != nil {
			return fmt.Errorf("agent: listen on %s: %w", cfg.TCPAddr, err)
		}
		lns = append(lns, ln)
		// The control channel is exempt from every partition.
		if _, p, err := net.SplitHostPort(ln.Addr().String()); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				a.exemptTCP.Store(&[]uint16{uint16(n)})
			}
		}
	}

	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(lg.Named("http")),
	}
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func(ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("agent: serve %s: %w", ln.Addr(), err)
			}
		}(ln)
	}
	lg.Info("agent serving", zap.String("node", cfg.Node), zap.String("socket", cfg.Socket),
		zap.String("tcp", cfg.TCPAddr), zap.String("netns", cfg.NetNSPath), zap.Any("capabilities", a.caps))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}

	// Stop taking requests, then revert everything: fresh contexts, since
	// ctx is done.
	hctx, cancel := context.WithTimeout(context.Background(), shutdownHTTP)
	if err := srv.Shutdown(hctx); err != nil {
		srv.Close()
	}
	cancel()
	revertErr := a.shutdown()
	return errors.Join(serveErr, revertErr)
}

// shutdown reverts every active fault (reason shutdown) within
// shutdownRevert and compacts the ledger.
func (a *agent) shutdown() error {
	done := make(chan error, 1)
	go func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.closing = true
		for _, fl := range a.faults {
			if fl.timer != nil {
				fl.timer.Stop()
			}
		}
		_, err := a.revertAllLocked("shutdown")
		if err == nil {
			err = a.led.Compact(nil)
		}
		done <- err
	}()
	t := time.NewTimer(shutdownRevert)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("agent: revert at shutdown: %w", err)
		}
		return nil
	case <-t.C:
		return errors.New("agent: revert at shutdown timed out; the ledger keeps the faults for the next start")
	}
}

func readToken(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("agent: a token file is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: read token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, fmt.Errorf("agent: token file %s is empty", path)
	}
	return []byte(tok), nil
}

// listenUnix removes a stale socket file (refusing if an agent still
// answers on it) and listens with mode 0600.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("agent: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("agent: another process serves %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("agent: remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("agent: listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent: chmod socket: %w", err)
	}
	return ln, nil
}

// probeCapabilities asks every driver whether this node can run its kind
// and records what is missing, so faults that cannot work are refused
// with the reason before anything is applied.
func (a *agent) probeCapabilities() (map[string]bool, map[string]string) {
	caps := map[string]bool{}
	errs := map[string]string{}
	for _, kind := range a.kinds() {
		if err := a.drivers[kind].Probe(); err != nil {
			errs[string(kind)] = err.Error()
			caps[string(kind)] = false
			a.lg.Warn("fault kind unavailable on this node", zap.String("kind", string(kind)), zap.Error(err))
			continue
		}
		caps[string(kind)] = true
	}
	caps["nftables"] = caps[string(agentapi.KindPartition)]
	// netem: known when the module is loaded or built in.
	_, err := os.Stat("/sys/module/sch_netem")
	caps["netem"] = err == nil
	return caps, errs
}

// exemptPorts are the TCP ports of the agent's own control channel. It
// takes no lock: drivers call it while the agent's lock is held.
func (a *agent) exemptPorts() []uint16 {
	if p := a.exemptTCP.Load(); p != nil {
		return append([]uint16(nil), (*p)...)
	}
	return nil
}

func (a *agent) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(h[len(p):])), a.token) == 1
}
