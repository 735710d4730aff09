package partition

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// Backend installs, removes and lists plans: an *Applier in production,
// a *Fake in tests without root.
type Backend interface {
	Apply(ctx context.Context, p Plan) error
	Remove(ctx context.Context, table string) error
	Exists(ctx context.Context, table string) (bool, error)
	ListTagged(ctx context.Context) ([]string, error)
	Probe(ctx context.Context) error
}

// Config configures the partition driver.
type Config struct {
	// NetNSPath is the network namespace faults act in (empty: the calling
	// thread's). Ignored when Backend is set.
	NetNSPath string
	// ExemptTCP returns the local TCP ports no partition may cut: the
	// agent's own control channel. It is called at every apply, so a port
	// learnt after the driver was built still counts. nil: none.
	ExemptTCP func() []uint16
	// Backend installs the plans; nil: an Applier in NetNSPath, closed by
	// Close.
	Backend Backend
}

// Driver is the partition fault driver: one tagged nftables table per
// fault (see the package comment). It implements the agent's Driver
// interface and is safe for concurrent use.
type Driver struct {
	be     Backend
	exempt func() []uint16
	lg     *zap.Logger
	close  func() error
}

// state is the driver's ledger state for one fault.
type state struct {
	Table string `json:"table"`
}

// New builds the driver. lg may be nil.
func New(cfg Config, lg *zap.Logger) (*Driver, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	d := &Driver{be: cfg.Backend, exempt: cfg.ExemptTCP, lg: lg, close: func() error { return nil }}
	if d.be == nil {
		ap, err := NewApplier(cfg.NetNSPath)
		if err != nil {
			return nil, err
		}
		d.be, d.close = ap, ap.Close
	}
	return d, nil
}

// Close releases the Applier New opened (not a Backend it was given). It
// reverts nothing.
func (d *Driver) Close() error { return d.close() }

// Kind returns agentapi.KindPartition.
func (d *Driver) Kind() agentapi.Kind { return agentapi.KindPartition }

// Probe checks that nftables works in the namespace (a throwaway table).
func (d *Driver) Probe(ctx context.Context) error { return d.be.Probe(ctx) }

// Prepare validates the fault and fills in the effective direction (the
// default is both), so the ledger and the fault's status say what is cut.
// It changes nothing in the kernel.
func (d *Driver) Prepare(_ context.Context, f *agentapi.Fault) (json.RawMessage, error) {
	spec, err := Parse(f.Partition)
	if err != nil {
		return nil, err
	}
	p := *f.Partition
	p.Direction = spec.Direction
	f.Partition = &p
	return json.Marshal(state{Table: TableName(f.ID)})
}

// Apply installs the fault's table in one netlink transaction, exempting
// the control channel's TCP ports as they are now.
func (d *Driver) Apply(ctx context.Context, f agentapi.Fault, _ json.RawMessage) (json.RawMessage, error) {
	spec, err := Parse(f.Partition)
	if err != nil {
		return nil, err
	}
	var exempt []uint16
	if d.exempt != nil {
		exempt = d.exempt()
	}
	if err := d.be.Apply(ctx, PlanFault(f.ID, spec, exempt)); err != nil {
		return nil, fmt.Errorf("apply partition: %w", err)
	}
	return nil, nil
}

func (d *Driver) table(f agentapi.Fault, raw json.RawMessage) string {
	var st state
	if json.Unmarshal(raw, &st) == nil && st.Table != "" {
		return st.Table
	}
	return TableName(f.ID)
}

// Revert deletes the fault's table; a table already gone is success.
func (d *Driver) Revert(ctx context.Context, f agentapi.Fault, raw json.RawMessage) error {
	return d.be.Remove(ctx, d.table(f, raw))
}

// Remaining names the fault's table if it still exists.
func (d *Driver) Remaining(ctx context.Context, f agentapi.Fault, raw json.RawMessage) (string, error) {
	t := d.table(f, raw)
	exists, err := d.be.Exists(ctx, t)
	if err != nil || !exists {
		return "", err
	}
	return "nftables table " + t, nil
}

// Prune deletes every tagged table no kept fault owns.
func (d *Driver) Prune(ctx context.Context, keep []json.RawMessage) ([]string, error) {
	owned := map[string]bool{}
	for _, raw := range keep {
		var st state
		if json.Unmarshal(raw, &st) == nil {
			owned[st.Table] = true
		}
	}
	tables, err := d.be.ListTagged(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leftover tables: %w", err)
	}
	var removed []string
	for _, t := range tables {
		if owned[t] {
			continue
		}
		if err := d.be.Remove(ctx, t); err != nil {
			return removed, fmt.Errorf("remove leftover table %s: %w", t, err)
		}
		removed = append(removed, "nftables table "+t)
	}
	return removed, nil
}
