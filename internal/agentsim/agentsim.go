// Package agentsim runs a simulated fleet of node agents for chaosd's
// fan-out tests and benchmarks: N real agent cores (agent.Agent: its HTTP
// API, ledger, lease and deadline timers, halt) serving partition faults on
// unix sockets, each with a driver that touches no kernel and only takes
// as long as a real partition does, drawn per call from a latency
// distribution (Profile). chaosd talks to them with its real agent client,
// exactly as to real agents.
//
// A fleet runs in the test's process (Start) or, for benchmarks that
// measure chaosd's own CPU and memory, in a child process (Spawn, served
// by ServeChild in the child).
package agentsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent"
	"github.com/chaosd/chaosd/agent/agentapi"
)

// Latency is the distribution of one driver call's duration: log-normal
// with this median and 99th percentile (P99 ≤ Median: always Median).
type Latency struct {
	Median, P99 time.Duration
}

// draw returns one duration of l.
func (l Latency) draw() time.Duration {
	if l.Median <= 0 {
		return 0
	}
	if l.P99 <= l.Median {
		return l.Median
	}
	sigma := math.Log(float64(l.P99)/float64(l.Median)) / 2.326 // z of the 99th percentile
	return time.Duration(float64(l.Median) * math.Exp(sigma*rand.NormFloat64()))
}

// Profile is how long a simulated agent's partition driver takes per call.
type Profile struct {
	Inject, Revert, Renew Latency
}

// Measured profiles of the partition driver on this project's 2-core
// machines (the agent's API on its unix socket, ledger included; medians
// and 99th percentiles of agent BenchmarkInjectRevert/partition).
var (
	// Before: the agent before issue 10, inject ≈15 ms (11 ms of it the
	// kernel finishing the nftables transaction when the netlink socket
	// closed), revert ≈14 ms; a renewal updates the set elements'
	// timeouts in one transaction too. Also a stand-in for agents that
	// are farther away than a unix socket.
	Before = Profile{
		Inject: Latency{Median: 15 * time.Millisecond, P99: 25 * time.Millisecond},
		Revert: Latency{Median: 14 * time.Millisecond, P99: 24 * time.Millisecond},
		Renew:  Latency{Median: 12 * time.Millisecond, P99: 20 * time.Millisecond},
	}
	// Now: one lasting nftables socket per namespace and one fsync per
	// inject (agent/README.md): inject ≈1.2 ms, revert ≈0.6 ms, renewal
	// ≈0.55 ms.
	Now = Profile{
		Inject: Latency{Median: 1200 * time.Microsecond, P99: 3 * time.Millisecond},
		Revert: Latency{Median: 600 * time.Microsecond, P99: 2 * time.Millisecond},
		Renew:  Latency{Median: 550 * time.Microsecond, P99: 2 * time.Millisecond},
	}
)

// Config describes a fleet.
type Config struct {
	// Dir holds the agents' sockets, ledgers and token. Unix socket paths
	// are short (108 bytes): keep Dir short; on a tmpfs the ledgers'
	// fsyncs cost nothing, so the Profile is the agents' whole latency.
	Dir string
	// Agents is the number of agents, named n1..nN.
	Agents  int
	Profile Profile
	// Token is the bearer token the agents require.
	Token string
	// FailInject names nodes whose injects fail (the driver's error).
	FailInject []string `json:",omitempty"`
	// HoldAfter, when positive, makes every inject after the first
	// HoldAfter ones wait until a revert, a halt or the deadline cancels
	// it (to halt a fan-out that is surely in progress).
	HoldAfter int `json:",omitempty"`
}

// Node is one simulated agent.
type Node struct {
	Name     string
	Endpoint string // unix:///…/nK.sock
}

// Fleet is a running simulated fleet.
type Fleet struct {
	nodes  []Node
	state  *state
	cancel context.CancelFunc
	errs   chan error
}

// state is what the drivers of a fleet share.
type state struct {
	cfg     Config
	fail    map[string]bool
	active  atomic.Int64 // faults applied and not reverted
	applies atomic.Int64 // applies begun
}

// Start serves cfg.Agents agents in this process until Stop.
func Start(cfg Config) (*Fleet, error) {
	if cfg.Agents <= 0 || cfg.Dir == "" || cfg.Token == "" {
		return nil, errors.New("agentsim: Dir, Agents and Token are required")
	}
	tokenFile := filepath.Join(cfg.Dir, "token")
	if err := os.WriteFile(tokenFile, []byte(cfg.Token+"\n"), 0o600); err != nil {
		return nil, err
	}
	st := &state{cfg: cfg, fail: map[string]bool{}}
	for _, n := range cfg.FailInject {
		st.fail[n] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{state: st, cancel: cancel, errs: make(chan error, cfg.Agents)}
	for i := range cfg.Agents {
		name := fmt.Sprintf("n%d", i+1)
		sock := filepath.Join(cfg.Dir, name+".sock")
		a, err := agent.New(agent.Config{Node: name, Socket: sock, TokenFile: tokenFile,
			LedgerPath: filepath.Join(cfg.Dir, name+".ledger")}, zap.NewNop(), &driver{st: st, node: name})
		if err != nil {
			f.Stop()
			return nil, err
		}
		go func() { f.errs <- a.Run(ctx) }()
		f.nodes = append(f.nodes, Node{Name: name, Endpoint: "unix://" + sock})
	}
	// Ready when every socket exists.
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range f.nodes {
		for {
			if _, err := os.Stat(n.Endpoint[len("unix://"):]); err == nil {
				break
			}
			if time.Now().After(deadline) {
				f.Stop()
				return nil, fmt.Errorf("agentsim: agent %s does not listen after 30s", n.Name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return f, nil
}

// Nodes lists the agents.
func (f *Fleet) Nodes() []Node { return f.nodes }

// Active counts the faults in place over the fleet (applied, not yet
// reverted): what a real fleet's kernels would hold.
func (f *Fleet) Active() int { return int(f.state.active.Load()) }

// Applies counts the injects that reached a driver.
func (f *Fleet) Applies() int { return int(f.state.applies.Load()) }

// Stop stops every agent (each reverts what it holds) and waits for them.
func (f *Fleet) Stop() error {
	f.cancel()
	var errs []error
	for range f.nodes {
		errs = append(errs, <-f.errs)
	}
	return errors.Join(errs...)
}

// driver is a partition driver that only waits.
type driver struct {
	st   *state
	node string

	mu      sync.Mutex
	applied map[string]bool // fault IDs in place
}

func (d *driver) Kind() agentapi.Kind         { return agentapi.KindPartition }
func (d *driver) Probe(context.Context) error { return nil }
func (d *driver) SelfExpiry() (string, time.Duration) {
	return agentapi.SelfExpiryKernel, 250 * time.Millisecond
}

func (d *driver) Prepare(context.Context, *agentapi.Fault) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

func (d *driver) Apply(ctx context.Context, f agentapi.Fault, _ json.RawMessage) (json.RawMessage, error) {
	n := d.st.applies.Add(1)
	if h := d.st.cfg.HoldAfter; h > 0 && n > int64(h) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := sleep(ctx, d.st.cfg.Profile.Inject.draw()); err != nil {
		return nil, err
	}
	if d.st.fail[d.node] {
		return nil, errors.New("nftables: add table: operation not permitted")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.applied == nil {
		d.applied = map[string]bool{}
	}
	if !d.applied[f.ID] {
		d.applied[f.ID] = true
		d.st.active.Add(1)
	}
	return nil, nil
}

func (d *driver) Revert(ctx context.Context, f agentapi.Fault, _ json.RawMessage) error {
	if err := sleep(ctx, d.st.cfg.Profile.Revert.draw()); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.applied[f.ID] {
		delete(d.applied, f.ID)
		d.st.active.Add(-1)
	}
	return nil
}

func (d *driver) Renew(ctx context.Context, _ agentapi.Fault, _ json.RawMessage, _ time.Time) (string, error) {
	if err := sleep(ctx, d.st.cfg.Profile.Renew.draw()); err != nil {
		return "", err
	}
	return "partition in place", nil
}

func (d *driver) Remaining(context.Context, agentapi.Fault, json.RawMessage) (string, error) {
	return "", nil
}

func (d *driver) Prune(context.Context, []json.RawMessage) ([]string, error) { return nil, nil }

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
