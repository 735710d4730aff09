// Package agent is the chaosd node agent: it applies faults through one
// Driver per fault kind (agent/partition, agent/latency, agent/memory,
// agent/springboot), records them in a write-ahead ledger (agent/ledger),
// reverts them on its own at their deadline or when chaosd stops renewing
// their lease, and serves an authenticated HTTP API (agent/agentapi) on a
// unix socket and optionally TCP. It is the only code in chaosd that
// changes a node.
//
// Build one with New and the drivers it should serve (DefaultDrivers
// builds the production set), then call Run; or call the package-level
// Run, which does both. Faults are independent of each other: the agent
// holds no lock across a driver call, so a slow or stuck driver delays
// only its own fault (see README.md, "Concurrency").
package agent

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/ledger"
	"github.com/chaosd/chaosd/internal/secretfile"
	"github.com/chaosd/chaosd/internal/serve"
	"github.com/chaosd/chaosd/internal/tlsconf"
)

// Config configures an Agent.
type Config struct {
	Node      string // node name reported in status and logs
	Socket    string // unix socket path (mode 0600); optional if TCPAddr is set
	TCPAddr   string // optional host:port for the API over TCP
	TokenFile string // file holding the bearer token (trimmed)
	// TLS of the TCP listener: the agent's certificate and key, and the
	// CA chaosd's client certificate must chain to (mutual TLS: a caller
	// without such a certificate is refused before any HTTP). All three
	// are required with TCPAddr unless InsecurePlaintext.
	TLSCertFile, TLSKeyFile, ClientCAFile string
	// InsecurePlaintext serves TCPAddr in plain HTTP (logged as a warning).
	InsecurePlaintext bool
	LedgerPath        string // write-ahead ledger file
	// NetNSPath is the network namespace faults are applied in (e.g.
	// /run/netns/x or /proc/PID/ns/net). Empty: the agent's own namespace,
	// as seen by the goroutine that calls Run.
	NetNSPath string
	// CgroupRoot is where the host's cgroup hierarchy is (the memory
	// controller's: v2 at it, else v1 at its memory/, else v2 at its
	// unified/; see kubepod.DetectHierarchy), for memory faults and for
	// finding pods. Empty: /sys/fs/cgroup.
	CgroupRoot string
	// CgroupDriver is kubelet's cgroup driver (auto, cgroupfs or
	// systemd), for finding pods' cgroups. Empty: auto.
	CgroupDriver string
	// CgroupNS is a cgroup namespace file (e.g. /proc/1/ns/cgroup, the
	// host's, with the host's PID namespace) the memory driver starts
	// stressors in, so it can place them in cgroups outside the agent's
	// own namespace (a container's on cgroup v2). Empty: the agent's own.
	CgroupNS string
	Version  string
	// Control is where Run publishes the TCP ports of its API listener,
	// for drivers whose faults must spare the control channel
	// (DefaultDrivers gives Control.TCP to the partition driver). nil:
	// not published.
	Control *ControlPorts `json:"-"`
	// MaxLease bounds the lease of a fault, at inject and at every
	// renewal. Zero: DefaultMaxLease.
	MaxLease time.Duration `json:"maxLease,omitempty"`
	// MaxFaultDuration bounds how far in the future a fault's deadline
	// may be. Zero: DefaultMaxFaultDuration.
	MaxFaultDuration time.Duration `json:"maxFaultDuration,omitempty"`
	// ProtectedCIDRs are networks no partition may cut without
	// allowWide (the management network chaosd reaches the agent
	// through, Prometheus's): a partition CIDR that overlaps one, or that
	// covers every address (0.0.0.0/0, ::/0), is refused with 400.
	ProtectedCIDRs []string `json:"protectedCidrs,omitempty"`
	// Limits bound the API's listeners (header size, read times,
	// connections, body size); zero fields take serve.DefaultLimits.
	Limits serve.Limits `json:"limits,omitzero"`
}

// ControlPorts holds the local TCP ports of an agent's control channel,
// known once it listens. The zero value is ready to use and a nil pointer
// reports no ports. Safe for concurrent use.
type ControlPorts struct {
	tcp atomic.Pointer[[]uint16]
}

// TCP returns the ports (nil before the agent listens on TCP).
func (c *ControlPorts) TCP() []uint16 {
	if c == nil {
		return nil
	}
	if p := c.tcp.Load(); p != nil {
		return append([]uint16(nil), (*p)...)
	}
	return nil
}

func (c *ControlPorts) setTCP(ports []uint16) {
	if c != nil {
		c.tcp.Store(&ports)
	}
}

// Timeouts. Shutdown work runs on fresh contexts: the caller's is already
// cancelled by then.
const (
	shutdownHTTP   = 5 * time.Second
	shutdownRevert = 30 * time.Second
	// haltWait bounds how long POST /v1/halt waits for the reverts it
	// started; a fault still in a driver call by then is reported as an
	// error and reverted as soon as the call returns.
	haltWait = 3 * time.Second
	// revertTimeout bounds one Revert plus Remaining of a fault.
	revertTimeout = 30 * time.Second
	// probeTimeout bounds each driver's Probe and Prune at start-up.
	probeTimeout = 30 * time.Second
)

// Defaults of the bounds on faults (Config.MaxLease, MaxFaultDuration).
const (
	DefaultMaxLease         = 10 * time.Minute
	DefaultMaxFaultDuration = 24 * time.Hour
)

// Agent is a node agent. Build it with New; Run serves it once.
type Agent struct {
	cfg       Config
	protected []netip.Prefix // cfg.ProtectedCIDRs, parsed
	lg        *zap.Logger
	drivers   map[agentapi.Kind]Driver // by kind; read-only after New
	token     []byte
	tls       *tls.Config // of the TCP listener; nil: plain text
	ran       atomic.Bool

	// Set by Run before the API serves; read-only afterwards.
	led     *ledger.Ledger
	started time.Time
	caps    map[string]bool   // kind → available
	capErrs map[string]string // kind → why it is unavailable

	// work counts revert goroutines started in the background.
	work sync.WaitGroup

	// mu guards the map of faults and every fault's bookkeeping (see
	// fault). It is never held across a driver call, nor across an fsync
	// of the ledger; ledger writes and compaction happen under it, so a
	// compaction always sees every intent written.
	mu       sync.Mutex
	closing  bool
	faults   map[string]*fault
	reverted []string // IDs of finished faults, oldest first
	// sinceCompact counts reverts since the ledger was last compacted.
	sinceCompact int
	// unrecovered are ledger entries from an earlier life whose revert
	// failed at start-up: every compaction keeps them.
	unrecovered []ledger.Entry
}

// New builds an agent serving the given drivers (one per fault kind). It
// checks the configuration and reads the token; nothing is listened on,
// opened or changed until Run. The drivers stay the caller's to close,
// after Run returned.
func New(cfg Config, lg *zap.Logger, drivers ...Driver) (*Agent, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if cfg.Socket == "" && cfg.TCPAddr == "" {
		return nil, errors.New("agent: a unix socket or a TCP address is required")
	}
	if cfg.LedgerPath == "" {
		return nil, errors.New("agent: a ledger path is required")
	}
	if cfg.MaxLease < 0 || cfg.MaxFaultDuration < 0 {
		return nil, errors.New("agent: the maximum lease and fault duration must not be negative")
	}
	if cfg.MaxLease == 0 {
		cfg.MaxLease = DefaultMaxLease
	}
	if cfg.MaxFaultDuration == 0 {
		cfg.MaxFaultDuration = DefaultMaxFaultDuration
	}
	var protected []netip.Prefix
	for i, c := range cfg.ProtectedCIDRs {
		p, err := agentapi.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("agent: protected CIDR %d: %w", i, err)
		}
		protected = append(protected, p)
	}
	token, err := readToken(cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	tc, err := listenerTLS(cfg)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, protected: protected, lg: lg.Named("agent"), token: token, tls: tc, faults: map[string]*fault{},
		drivers: map[agentapi.Kind]Driver{}}
	for _, d := range drivers {
		if d == nil {
			return nil, errors.New("agent: nil driver")
		}
		kind := d.Kind()
		if kind == "" {
			return nil, fmt.Errorf("agent: driver %T has no kind", d)
		}
		if _, dup := a.drivers[kind]; dup {
			return nil, fmt.Errorf("agent: two drivers for kind %q", kind)
		}
		a.drivers[kind] = d
	}
	return a, nil
}

// Run builds the production drivers (DefaultDrivers), serves an agent with
// them until ctx ends, reverts every fault and releases the drivers.
func Run(ctx context.Context, cfg Config, lg *zap.Logger) error {
	if cfg.Control == nil {
		cfg.Control = new(ControlPorts)
	}
	drivers, closeDrivers, err := DefaultDrivers(cfg, lg)
	if err != nil {
		return err
	}
	a, err := New(cfg, lg, drivers...)
	if err != nil {
		closeDrivers()
		return err
	}
	err = a.Run(ctx)
	if a.idle() {
		// A fault whose driver is still stuck in a call keeps its driver
		// open; the process is about to exit anyway.
		closeDrivers()
	}
	return err
}

// Run serves the agent until ctx ends, then reverts every fault (waiting
// at most shutdownRevert) and returns. Start-up first reverts whatever
// the ledger and the kernel hold from an earlier life. Run may be called
// once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.ran.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	cfg, lg := a.cfg, a.lg
	a.started = time.Now().UTC()
	led, entries, skipped, err := ledger.Open(cfg.LedgerPath)
	if err != nil {
		return err
	}
	defer led.Close()
	a.led = led
	if skipped > 0 {
		lg.Warn("ledger lines skipped", zap.Int("lines", skipped), zap.String("path", cfg.LedgerPath))
	}
	if err := a.recover(ctx, entries); err != nil {
		return fmt.Errorf("agent: start-up recovery: %w", err)
	}
	a.caps, a.capErrs = a.probeCapabilities(ctx)

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
		lns = append(lns, serve.Limit(ln, cfg.Limits))
		defer os.Remove(cfg.Socket)
	}
	if cfg.TCPAddr != "" {
		ln, err := serve.Listen("tcp", cfg.TCPAddr, cfg.Limits)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		if a.tls != nil {
			ln = tls.NewListener(ln, a.tls)
		} else {
			lg.Warn("agent API served over TCP in PLAIN TEXT (--insecure-plaintext): tokens and faults cross the network unencrypted and unauthenticated by TLS", zap.String("tcp", cfg.TCPAddr))
		}
		lns = append(lns, ln)
		// The control channel is exempt from every partition.
		if _, p, err := net.SplitHostPort(ln.Addr().String()); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				cfg.Control.setTCP([]uint16{uint16(n)})
			}
		}
	}

	srv := serve.Server(a.handler(), cfg.Limits, zap.NewStdLog(lg.Named("http")))
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

	// Refuse new faults and revert everything (the API still answers
	// meanwhile, so a halt or a revert can join in), then stop the API.
	revertErr := a.shutdown()
	hctx, cancel := context.WithTimeout(context.Background(), shutdownHTTP)
	if err := srv.Shutdown(hctx); err != nil {
		srv.Close()
	}
	cancel()
	return errors.Join(serveErr, revertErr)
}

// shutdown refuses new faults, stops every timer, cancels the applies in
// flight and reverts every fault (reason shutdown), waiting at most
// shutdownRevert; then it compacts the ledger. A fault still in a driver
// call by then stays in the ledger for the next start.
func (a *Agent) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownRevert)
	defer cancel()
	a.mu.Lock()
	a.closing = true
	for _, fl := range a.faults {
		fl.disarm()
	}
	a.mu.Unlock()
	if _, err := a.revertAll(ctx, agentapi.ReasonShutdown); err != nil {
		return fmt.Errorf("agent: revert at shutdown: %w (the ledger keeps what is left for the next start)", err)
	}
	done := make(chan struct{})
	go func() { a.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.New("agent: revert at shutdown timed out; the ledger keeps the faults for the next start")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.compactLocked(); err != nil {
		return fmt.Errorf("agent: compact ledger at shutdown: %w", err)
	}
	return nil
}

// idle reports whether no driver call of any fault is in flight.
func (a *Agent) idle() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, fl := range a.faults {
		if fl.phase == phaseInjecting || fl.phase == phaseReverting {
			return false
		}
	}
	return true
}

func readToken(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("agent: a token file is required")
	}
	tok, err := secretfile.ReadToken(path)
	if err != nil {
		return nil, fmt.Errorf("agent: token file: %w", err)
	}
	return []byte(tok), nil
}

// listenerTLS is the TCP listener's mutual TLS configuration (nil: no
// TCP, or plain text on purpose).
func listenerTLS(cfg Config) (*tls.Config, error) {
	files := cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" || cfg.ClientCAFile != ""
	switch {
	case cfg.TCPAddr == "" && !files:
		return nil, nil
	case cfg.TCPAddr == "":
		return nil, errors.New("agent: TLS files given without a TCP address (the unix socket is protected by its mode)")
	case cfg.InsecurePlaintext && files:
		return nil, errors.New("agent: TLS files and insecure plain text are exclusive")
	case cfg.InsecurePlaintext:
		return nil, nil
	case cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" || cfg.ClientCAFile == "":
		return nil, errors.New("agent: the TCP listener needs mutual TLS: a certificate, its key and the CA of chaosd's client certificates (--tls-cert-file, --tls-key-file, --tls-client-ca-file), or --insecure-plaintext to serve plain HTTP")
	}
	tc, err := tlsconf.Server(tlsconf.ServerFiles{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile, ClientCAFile: cfg.ClientCAFile})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return tc, nil
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
// with the reason before anything is applied. Capabilities are keyed by
// kind and come only from the drivers' own probes.
func (a *Agent) probeCapabilities(ctx context.Context) (map[string]bool, map[string]string) {
	caps := map[string]bool{}
	errs := map[string]string{}
	for _, kind := range a.kinds() {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := a.drivers[kind].Probe(pctx)
		cancel()
		if err != nil {
			errs[string(kind)] = err.Error()
			caps[string(kind)] = false
			a.lg.Warn("fault kind unavailable on this node", zap.String("kind", string(kind)), zap.Error(err))
			continue
		}
		caps[string(kind)] = true
	}
	return caps, errs
}

// authorized checks the bearer token, parsed as chaosd parses it
// (serve.Bearer).
func (a *Agent) authorized(r *http.Request) bool {
	tok, err := serve.Bearer(r.Header.Get("Authorization"))
	return err == nil && subtle.ConstantTimeCompare([]byte(tok), a.token) == 1
}
