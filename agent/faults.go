package agent

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/ledger"
	"github.com/chaosd/chaosd/agent/partition"
)

// keepReverted is how many reverted faults the agent keeps to report.
const keepReverted = 100

// reasonApplyFailed marks in the ledger a fault whose apply failed and
// whose partial state was removed.
const reasonApplyFailed = "apply-failed"

// backend is the kernel seam: the nftables applier in production, a
// stateful fake in unprivileged tests.
type backend interface {
	Apply(partition.Plan) error
	Remove(table string) error
	Exists(table string) (bool, error)
	ListTagged() ([]string, error)
	Probe() error
}

type fault struct {
	status agentapi.FaultStatus
	table  string
	timer  *time.Timer
	gen    uint64
}

// apiError carries the HTTP status to answer with.
type apiError struct {
	code   int
	msg    string
	status *agentapi.FaultStatus // body for 410
}

func (e *apiError) Error() string { return e.msg }

func errf(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// validate checks a fault before anything is written. Messages name the field.
func validate(f agentapi.Fault, now time.Time) (partition.Spec, error) {
	switch {
	case f.ID == "":
		return partition.Spec{}, errors.New("id: required")
	case len(f.ID) > 200:
		return partition.Spec{}, errors.New("id: longer than 200 characters")
	case f.Kind != agentapi.KindPartition:
		return partition.Spec{}, fmt.Errorf("kind: %q is not supported (want %q)", f.Kind, agentapi.KindPartition)
	case f.Deadline.IsZero():
		return partition.Spec{}, errors.New("deadline: required")
	case !f.Deadline.After(now):
		return partition.Spec{}, fmt.Errorf("deadline: %s is in the past", f.Deadline.Format(time.RFC3339Nano))
	case !(f.LeaseSeconds > 0) || math.IsInf(f.LeaseSeconds, 0):
		return partition.Spec{}, fmt.Errorf("leaseSeconds: %v must be > 0", f.LeaseSeconds)
	}
	return partition.Parse(f.Partition)
}

func leaseDuration(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (a *agent) logFields(f agentapi.Fault, reason string) []zap.Field {
	return []zap.Field{
		zap.String("run", f.RunID), zap.String("fault", f.ID),
		zap.String("node", a.cfg.Node), zap.String("reason", reason),
	}
}

// inject applies a fault: ledger intent (fsync), kernel, ledger applied.
func (a *agent) inject(f agentapi.Fault) (agentapi.FaultStatus, error) {
	spec, err := validate(f, time.Now())
	if err != nil {
		return agentapi.FaultStatus{}, errf(400, "%v", err)
	}
	f.Partition.Direction = spec.Direction
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return agentapi.FaultStatus{}, errf(503, "agent is shutting down")
	}
	if old, ok := a.faults[f.ID]; ok && old.status.State == agentapi.StateActive {
		return old.status, errf(409, "id: fault %q is already active", f.ID)
	}
	plan := partition.PlanFault(f.ID, spec, a.exemptTCP)
	if err := a.led.Append(ledger.Record{Op: ledger.OpIntent, ID: f.ID, Fault: &f}); err != nil {
		return agentapi.FaultStatus{}, errf(500, "record intent: %v", err)
	}
	fl := &fault{table: plan.Table, status: agentapi.FaultStatus{Fault: f}}
	a.forget(f.ID)
	a.faults[f.ID] = fl
	if err := a.be.Apply(plan); err != nil {
		rerr := a.be.Remove(plan.Table)
		now := time.Now().UTC()
		fl.status.State = agentapi.StateFailed
		fl.status.Error = err.Error()
		fl.status.RevertedAt = now
		fl.status.RevertReason = reasonApplyFailed
		if rerr == nil {
			gone, verr := a.be.Exists(plan.Table)
			fl.status.Verified = verr == nil && !gone
			if lerr := a.led.Append(ledger.Record{Op: ledger.OpReverted, ID: f.ID, Reason: reasonApplyFailed, Error: err.Error()}); lerr != nil {
				a.lg.Error("record revert", zap.String("fault", f.ID), zap.Error(lerr))
			}
		} else {
			fl.status.Error += "; cleanup: " + rerr.Error()
		}
		a.reverted = append(a.reverted, f.ID)
		a.trim()
		a.lg.Error("inject failed", append(a.logFields(f, reasonApplyFailed), zap.Error(err))...)
		return fl.status, errf(500, "apply partition: %v", err)
	}
	now := time.Now().UTC()
	if err := a.led.Append(ledger.Record{Op: ledger.OpApplied, ID: f.ID}); err != nil {
		// The intent is on disk, so recovery still reverts it; carry on.
		a.lg.Error("record apply", zap.String("fault", f.ID), zap.Error(err))
	}
	fl.status.State = agentapi.StateActive
	fl.status.AppliedAt = now
	fl.status.LeaseExpires = minTime(f.Deadline, now.Add(leaseDuration(f.LeaseSeconds))).UTC()
	a.arm(fl)
	a.lg.Info("fault injected", append(a.logFields(f, ""),
		zap.String("table", plan.Table), zap.Time("leaseExpires", fl.status.LeaseExpires),
		zap.Time("deadline", f.Deadline))...)
	return fl.status, nil
}

// forget drops a reverted fault of the same ID before it is reused.
func (a *agent) forget(id string) {
	if _, ok := a.faults[id]; !ok {
		return
	}
	delete(a.faults, id)
	for i, r := range a.reverted {
		if r == id {
			a.reverted = append(a.reverted[:i], a.reverted[i+1:]...)
			break
		}
	}
}

// arm (re)starts the fault's timer for LeaseExpires. Called with a.mu held.
func (a *agent) arm(fl *fault) {
	if fl.timer != nil {
		fl.timer.Stop()
	}
	fl.gen++
	gen, id := fl.gen, fl.status.Fault.ID
	fl.timer = time.AfterFunc(time.Until(fl.status.LeaseExpires), func() { a.expire(id, gen) })
}

// expire runs on the fault's own timer: the agent does not wait for chaosd.
func (a *agent) expire(id string, gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fl := a.faults[id]
	if a.closing || fl == nil || fl.gen != gen || fl.status.State != agentapi.StateActive {
		return
	}
	reason := agentapi.ReasonLease
	if !time.Now().Before(fl.status.Fault.Deadline) {
		reason = agentapi.ReasonDeadline
	}
	if _, err := a.revertLocked(fl, reason); err != nil {
		// Keep trying: a fault must not outlive its deadline.
		fl.gen++
		gen := fl.gen
		fl.timer = time.AfterFunc(time.Second, func() { a.expire(id, gen) })
	}
}

func (a *agent) renew(id string, lease float64) (agentapi.FaultStatus, error) {
	if !(lease > 0) || math.IsInf(lease, 0) {
		return agentapi.FaultStatus{}, errf(400, "leaseSeconds: %v must be > 0", lease)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	fl, ok := a.faults[id]
	if !ok {
		return agentapi.FaultStatus{}, errf(404, "fault %q is not known", id)
	}
	if fl.status.State != agentapi.StateActive {
		st := fl.status
		return st, &apiError{code: 410, msg: fmt.Sprintf("fault %q is %s (%s)", id, st.State, st.RevertReason), status: &st}
	}
	fl.status.LeaseExpires = minTime(fl.status.Fault.Deadline, time.Now().Add(leaseDuration(lease))).UTC()
	a.arm(fl)
	return fl.status, nil
}

func (a *agent) revert(id, reason string) (agentapi.FaultStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fl, ok := a.faults[id]
	if !ok {
		return agentapi.FaultStatus{}, errf(404, "fault %q is not known", id)
	}
	if fl.status.State != agentapi.StateActive {
		return fl.status, nil
	}
	st, err := a.revertLocked(fl, reason)
	if err != nil {
		return st, errf(500, "%v", err)
	}
	return st, nil
}

// revertLocked removes the fault's kernel state, verifies it is gone and
// records the revert. Called with a.mu held.
func (a *agent) revertLocked(fl *fault, reason string) (agentapi.FaultStatus, error) {
	f := fl.status.Fault
	if err := a.be.Remove(fl.table); err != nil {
		fl.status.Error = err.Error()
		a.lg.Error("revert failed", append(a.logFields(f, reason), zap.Error(err))...)
		return fl.status, fmt.Errorf("revert fault %s: %w", f.ID, err)
	}
	if fl.timer != nil {
		fl.timer.Stop()
	}
	fl.gen++
	exists, err := a.be.Exists(fl.table)
	fl.status.Verified = err == nil && !exists
	if err != nil {
		fl.status.Error = "verify: " + err.Error()
	} else if exists {
		fl.status.Error = "verify: table " + fl.table + " still present"
	} else {
		fl.status.Error = ""
	}
	now := time.Now().UTC()
	fl.status.State = agentapi.StateReverted
	fl.status.RevertedAt = now
	fl.status.RevertReason = reason
	if err := a.led.Append(ledger.Record{Op: ledger.OpReverted, ID: f.ID, Reason: reason}); err != nil {
		a.lg.Error("record revert", zap.String("fault", f.ID), zap.Error(err))
	}
	a.reverted = append(a.reverted, f.ID)
	a.trim()
	a.sinceCompact++
	if a.sinceCompact >= compactEvery {
		a.compactLocked()
	}
	a.lg.Info("fault reverted", append(a.logFields(f, reason), zap.Bool("verified", fl.status.Verified),
		zap.Duration("active", now.Sub(fl.status.AppliedAt)))...)
	return fl.status, nil
}

// compactEvery bounds the ledger: after this many reverts it is rewritten
// to hold only the active faults.
const compactEvery = 256

// compactLocked rewrites the ledger with the active faults. Called with a.mu held.
func (a *agent) compactLocked() {
	var live []ledger.Entry
	for _, fl := range a.faults {
		if fl.status.State == agentapi.StateActive {
			live = append(live, ledger.Entry{Fault: fl.status.Fault, Applied: true})
		}
	}
	if err := a.led.Compact(live); err != nil {
		a.lg.Warn("compact ledger", zap.Error(err))
		return
	}
	a.sinceCompact = 0
}

func (a *agent) trim() {
	for len(a.reverted) > keepReverted {
		id := a.reverted[0]
		a.reverted = a.reverted[1:]
		if fl, ok := a.faults[id]; ok && fl.status.State != agentapi.StateActive {
			delete(a.faults, id)
		}
	}
}

// revertAll reverts every active fault; it returns their statuses and the
// first error.
func (a *agent) revertAll(reason string) ([]agentapi.FaultStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.revertAllLocked(reason)
}

func (a *agent) revertAllLocked(reason string) ([]agentapi.FaultStatus, error) {
	var out []agentapi.FaultStatus
	var first error
	for _, fl := range a.sortedLocked() {
		if fl.status.State != agentapi.StateActive {
			continue
		}
		st, err := a.revertLocked(fl, reason)
		if err != nil && first == nil {
			first = err
		}
		out = append(out, st)
	}
	return out, first
}

func (a *agent) sortedLocked() []*fault {
	fs := make([]*fault, 0, len(a.faults))
	for _, fl := range a.faults {
		fs = append(fs, fl)
	}
	sort.Slice(fs, func(i, j int) bool {
		if !fs[i].status.AppliedAt.Equal(fs[j].status.AppliedAt) {
			return fs[i].status.AppliedAt.Before(fs[j].status.AppliedAt)
		}
		return fs[i].status.Fault.ID < fs[j].status.Fault.ID
	})
	return fs
}

func (a *agent) list(activeOnly bool) []agentapi.FaultStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []agentapi.FaultStatus{}
	for _, fl := range a.sortedLocked() {
		if activeOnly && fl.status.State != agentapi.StateActive {
			continue
		}
		out = append(out, fl.status)
	}
	return out
}

// recover replays the ledger: every fault not recorded as reverted is
// reverted, then every tagged leftover table is removed, then the ledger
// is compacted. Faults whose revert fails stay in the ledger.
func (a *agent) recover(entries []ledger.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var live []ledger.Entry
	var errs []error
	for _, e := range entries {
		if e.Reverted {
			continue
		}
		f := e.Fault
		table := partition.TableName(f.ID)
		if err := a.be.Remove(table); err != nil {
			errs = append(errs, fmt.Errorf("recover fault %s: %w", f.ID, err))
			live = append(live, e)
			continue
		}
		exists, verr := a.be.Exists(table)
		now := time.Now().UTC()
		if err := a.led.Append(ledger.Record{Op: ledger.OpReverted, ID: f.ID, Reason: agentapi.ReasonStartup}); err != nil {
			errs = append(errs, err)
		}
		a.faults[f.ID] = &fault{table: table, status: agentapi.FaultStatus{
			Fault: f, State: agentapi.StateReverted, RevertedAt: now,
			RevertReason: agentapi.ReasonStartup, Verified: verr == nil && !exists,
		}}
		a.reverted = append(a.reverted, f.ID)
		a.lg.Info("fault reverted", append(a.logFields(f, agentapi.ReasonStartup), zap.Bool("applied", e.Applied))...)
	}
	a.trim()
	tables, err := a.be.ListTagged()
	if err != nil {
		errs = append(errs, fmt.Errorf("list leftover tables: %w", err))
	}
	for _, t := range tables {
		if err := a.be.Remove(t); err != nil {
			errs = append(errs, fmt.Errorf("remove leftover table %s: %w", t, err))
			continue
		}
		a.lg.Info("leftover removed", zap.String("table", t), zap.String("node", a.cfg.Node),
			zap.String("reason", agentapi.ReasonStartup))
	}
	if err := a.led.Compact(live); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
