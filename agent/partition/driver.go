package partition

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// Backend installs, refreshes, removes and lists plans: an *Applier in
// production, a *Fake in tests without root.
type Backend interface {
	// Apply installs the plan, its set elements timing out after timeout.
	Apply(ctx context.Context, p Plan, timeout time.Duration) error
	// Refresh gives the plan's set elements a new timeout once it checked
	// the table is whole; an error wrapping nftexpiry.ErrMissing when it
	// is not (or the elements timed out).
	Refresh(ctx context.Context, p Plan, timeout time.Duration) error
	Remove(ctx context.Context, table string) error
	Exists(ctx context.Context, table string) (bool, error)
	ListTagged(ctx context.Context) ([]string, error)
	Probe(ctx context.Context) error
}

// PodBackends gives the driver a Backend inside a pod's network
// namespace: PodAppliers (kubepod.Finder and an Applier per namespace) in
// production, a *FakePods in tests without root. The release function
// closes what Open or Find opened.
type PodBackends interface {
	// Open returns a Backend in the pod's network namespace as it is now,
	// and that namespace's identity.
	Open(ctx context.Context, pod agentapi.Pod) (Backend, kubepod.NSID, func() error, error)
	// Find returns a Backend in the namespace id if the pod still has a
	// process in it; an error wrapping kubepod.ErrGone when the pod or that
	// namespace no longer exists.
	Find(ctx context.Context, pod agentapi.Pod, id kubepod.NSID) (Backend, func() error, error)
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
	// Pods reaches pods' network namespaces for faults with Fault.Pod
	// set; nil: such faults are refused.
	Pods PodBackends
}

// Driver is the partition fault driver: one tagged nftables table per
// fault (see the package comment). It implements the agent's Driver and
// SelfExpiring interfaces and is safe for concurrent use.
type Driver struct {
	be     Backend
	exempt func() []uint16
	pods   PodBackends
	lg     *zap.Logger
	close  func() error
}

// state is the driver's ledger state for one fault.
type state struct {
	Table string `json:"table"`
	// NetNS is the identity of the pod's network namespace the table is
	// in (pod-scoped faults only; the pod itself is in the fault). A
	// revert after a restart finds that namespace again through any live
	// process of the pod; when none is left in it, the namespace is gone
	// and the table with it.
	NetNS *kubepod.NSID `json:"netns,omitempty"`
	// ExemptTCP are the control channel's ports exempted at apply (node
	// faults), so a renewal checks the table against the plan applied.
	ExemptTCP []uint16 `json:"exemptTcp,omitempty"`
}

// New builds the driver. lg may be nil.
func New(cfg Config, lg *zap.Logger) (*Driver, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	d := &Driver{be: cfg.Backend, exempt: cfg.ExemptTCP, pods: cfg.Pods, lg: lg, close: func() error { return nil }}
	if d.be == nil {
		ap, err := NewApplier(cfg.NetNSPath)
		if err != nil {
			return nil, err
		}
		d.be, d.close = ap, ap.Close
	}
	if c, ok := d.pods.(interface{ Close() error }); ok {
		own := d.close
		d.close = func() error { return errors.Join(c.Close(), own()) }
	}
	return d, nil
}

// Close releases the Applier New opened (not a Backend it was given) and
// waits for the pods' namespaces' appliers to be closed (Config.Pods, when
// it has a Close method, as PodAppliers' has). It reverts nothing.
func (d *Driver) Close() error { return d.close() }

// Kind returns agentapi.KindPartition.
func (d *Driver) Kind() agentapi.Kind { return agentapi.KindPartition }

// NodeBound reports that a partition lives only in this node's kernel (a
// table in the node's or a pod's namespace): a crash of the node ends it.
func (d *Driver) NodeBound() bool { return true }

// Probe checks that nftables works in the namespace (a throwaway table).
func (d *Driver) Probe(ctx context.Context) error { return d.be.Probe(ctx) }

// Prepare validates the fault and fills in the effective direction (the
// default is both), so the ledger and the fault's status say what is cut.
// For a pod-scoped fault it finds the pod's network namespace and records
// its identity. It changes nothing in the kernel.
func (d *Driver) Prepare(ctx context.Context, f *agentapi.Fault) (json.RawMessage, error) {
	spec, err := Parse(f.Partition)
	if err != nil {
		return nil, err
	}
	p := *f.Partition
	p.Direction = spec.Direction
	f.Partition = &p
	st := state{Table: TableName(f.ID)}
	if f.Pod != nil {
		if err := kubepod.ValidatePod(f.Pod); err != nil {
			return nil, err
		}
		if d.pods == nil {
			return nil, errors.New("pod: this agent cannot reach pods' network namespaces (no pod lookup configured)")
		}
		_, id, release, err := d.pods.Open(ctx, *f.Pod)
		if err != nil {
			return nil, fmt.Errorf("pod: %w", err)
		}
		release()
		st.NetNS = &id
	}
	return json.Marshal(st)
}

func (d *Driver) state(f agentapi.Fault, raw json.RawMessage) state {
	var st state
	_ = json.Unmarshal(raw, &st) // a bad state still reverts by fault ID
	if st.Table == "" {
		st.Table = TableName(f.ID)
	}
	return st
}

// backend returns where the fault's table lives: the node's backend, or
// one in the pod's namespace recorded in st (an error wrapping
// kubepod.ErrGone when that namespace no longer exists).
func (d *Driver) backend(ctx context.Context, f agentapi.Fault, st state) (Backend, func() error, error) {
	if f.Pod == nil {
		return d.be, func() error { return nil }, nil
	}
	if d.pods == nil {
		return nil, nil, errors.New("pod: this agent cannot reach pods' network namespaces (no pod lookup configured)")
	}
	if st.NetNS == nil {
		// A state from before Prepare recorded it: the pod's namespace now.
		be, _, release, err := d.pods.Open(ctx, *f.Pod)
		return be, release, err
	}
	return d.pods.Find(ctx, *f.Pod, *st.NetNS)
}

func (d *Driver) fields(f agentapi.Fault, st state) []zap.Field {
	fs := []zap.Field{zap.String("run", f.RunID), zap.String("fault", f.ID), zap.String("table", st.Table)}
	if f.Pod != nil {
		fs = append(fs, zap.String("podNamespace", f.Pod.Namespace), zap.String("pod", f.Pod.Name), zap.String("podUID", f.Pod.UID))
		if st.NetNS != nil {
			fs = append(fs, zap.Stringer("netns", *st.NetNS))
		}
	}
	return fs
}

// Apply installs the fault's table in one netlink transaction, its set
// elements timing out one lease (never past the deadline) plus
// nftexpiry.Margin from now. In the node's namespace the control
// channel's TCP ports (as they are now) are exempt, and recorded in the
// state; a pod's namespace carries no control channel.
func (d *Driver) Apply(ctx context.Context, f agentapi.Fault, raw json.RawMessage) (json.RawMessage, error) {
	if f.Deadline.IsZero() || !(f.LeaseSeconds > 0) {
		return nil, errors.New("partition: the fault needs a deadline and a lease (its set elements time out)")
	}
	spec, err := Parse(f.Partition)
	if err != nil {
		return nil, err
	}
	st := d.state(f, raw)
	be, release, err := d.backend(ctx, f, st)
	if err != nil {
		return nil, fmt.Errorf("apply partition: %w", err)
	}
	defer release()
	var exempt []uint16
	if d.exempt != nil && f.Pod == nil {
		exempt = d.exempt()
	}
	now := time.Now()
	timeout := nftexpiry.Timeout(now, agentapi.LeaseEnd(now, f.Deadline, f.LeaseSeconds))
	if err := be.Apply(ctx, PlanFault(f.ID, spec, exempt), timeout); err != nil {
		return nil, fmt.Errorf("apply partition: %w", err)
	}
	if f.Pod != nil {
		d.lg.Info("partition fault applied in pod network namespace", append(d.fields(f, st), zap.Duration("elementTimeout", timeout))...)
	}
	st.ExemptTCP = exempt
	return json.Marshal(st)
}

// SelfExpiry says the kernel ends a partition by itself: its set elements
// time out nftexpiry.Margin after the lease they were set for.
func (d *Driver) SelfExpiry() (string, time.Duration) {
	return agentapi.SelfExpiryKernel, nftexpiry.Margin
}

// Renew checks the fault's table is whole (chains, rules, every set
// element) and gives its set elements a timeout of until plus
// nftexpiry.Margin, in one transaction. It returns the table's name, or
// "" when the fault is no longer in place (a flushed table or set, a
// deleted element, elements that timed out, a pod whose namespace is
// gone): then nothing was changed.
func (d *Driver) Renew(ctx context.Context, f agentapi.Fault, raw json.RawMessage, until time.Time) (string, error) {
	spec, err := Parse(f.Partition)
	if err != nil {
		return "", err
	}
	st := d.state(f, raw)
	be, release, err := d.backend(ctx, f, st)
	if kubepod.IsGone(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("renew partition: %w", err)
	}
	defer release()
	plan := PlanFault(f.ID, spec, st.ExemptTCP)
	plan.Table = st.Table
	err = be.Refresh(ctx, plan, nftexpiry.Timeout(time.Now(), until))
	if errors.Is(err, nftexpiry.ErrMissing) {
		d.lg.Warn("partition fault no longer in place", append(d.fields(f, st), zap.Error(err))...)
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("renew partition: %w", err)
	}
	return "nftables table " + st.Table, nil
}

// Revert deletes the fault's table; a table already gone is success, and
// so is a pod (or pod network namespace) that no longer exists: the table
// went with the namespace.
func (d *Driver) Revert(ctx context.Context, f agentapi.Fault, raw json.RawMessage) error {
	st := d.state(f, raw)
	be, release, err := d.backend(ctx, f, st)
	if kubepod.IsGone(err) {
		d.lg.Info("partition fault's pod network namespace is gone; nothing to revert", append(d.fields(f, st), zap.Error(err))...)
		return nil
	}
	if err != nil {
		return fmt.Errorf("revert partition: %w", err)
	}
	defer release()
	if err := be.Remove(ctx, st.Table); err != nil {
		return err
	}
	if f.Pod != nil {
		d.lg.Info("partition fault reverted in pod network namespace", d.fields(f, st)...)
	}
	return nil
}

// Remaining names the fault's table if it still exists (nothing remains
// of a pod-scoped fault whose namespace is gone).
func (d *Driver) Remaining(ctx context.Context, f agentapi.Fault, raw json.RawMessage) (string, error) {
	st := d.state(f, raw)
	be, release, err := d.backend(ctx, f, st)
	if kubepod.IsGone(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer release()
	exists, err := be.Exists(ctx, st.Table)
	if err != nil || !exists {
		return "", err
	}
	if f.Pod != nil && st.NetNS != nil {
		return fmt.Sprintf("nftables table %s in pod %s/%s network namespace %s", st.Table, f.Pod.Namespace, f.Pod.Name, st.NetNS), nil
	}
	return "nftables table " + st.Table, nil
}

// Prune deletes every tagged table in the node's namespace that no kept
// node-scoped fault owns. Pods' namespaces are not swept: a pod-scoped
// fault's intent (with its namespace) is in the ledger before its table
// exists, so start-up recovery reverts it.
func (d *Driver) Prune(ctx context.Context, keep []json.RawMessage) ([]string, error) {
	owned := map[string]bool{}
	for _, raw := range keep {
		var st state
		if json.Unmarshal(raw, &st) == nil && st.NetNS == nil {
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
