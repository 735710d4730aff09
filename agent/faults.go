package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
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

type fault struct {
	status agentapi.FaultStatus
	drv    Driver
	state  json.RawMessage // the driver's state, as last written to the ledger
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

// validate checks the fields every fault has. Messages name the field.
func validate(f agentapi.Fault, now time.Time) error {
	switch {
	case f.ID == "":
		return errors.New("id: required")
	case len(f.ID) > 200:
		return errors.New("id: longer than 200 characters")
	case f.Kind == "":
		return errors.New("kind: required")
	case f.Deadline.IsZero():
		return errors.New("deadline: required")
	case !f.Deadline.After(now):
		return fmt.Errorf("deadline: %s is in the past", f.Deadline.Format(time.RFC3339Nano))
	case !(f.LeaseSeconds > 0) || math.IsInf(f.LeaseSeconds, 0):
		return fmt.Errorf("leaseSeconds: %v must be > 0", f.LeaseSeconds)
	}
	return nil
}

// driverFor finds the driver of a kind and refuses kinds this node cannot
// run, before anything is written or applied.
func (a *agent) driverFor(kind agentapi.Kind) (Driver, error) {
	d, ok := a.drivers[kind]
	if !ok {
		kinds := make([]string, 0, len(a.drivers))
		for k := range a.drivers {
			kinds = append(kinds, string(k))
		}
		sort.Strings(kinds)
		return nil, fmt.Errorf("kind: %q is not supported (this agent knows %s)", kind, strings.Join(kinds, ", "))
	}
	if why, missing := a.capErrs[string(kind)]; missing {
		return nil, fmt.Errorf("kind: %q is unavailable on node %s: %s", kind, a.cfg.Node, why)
	}
	return d, nil
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

// inject applies a fault: validate and capture (driver Prepare), ledger
// intent with the driver's state (fsync), apply, ledger applied.
func (a *agent) inject(f agentapi.Fault) (agentapi.FaultStatus, error) {
	if err := validate(f, time.Now()); err != nil {
		return agentapi.FaultStatus{}, errf(400, "%v", err)
	}
	drv, err := a.driverFor(f.Kind)
	if err != nil {
		return agentapi.FaultStatus{}, errf(400, "%v", err)
	}
	if f.Kind == agentapi.KindPartition && f.Partition != nil {
		// Record the effective direction (default both).
		if spec, err := partition.Parse(f.Partition); err == nil {
			f.Partition.Direction = spec.Direction
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing {
		return agentapi.FaultStatus{}, errf(503, "agent is shutting down")
	}
	if old, ok := a.faults[f.ID]; ok && old.status.State == agentapi.StateActive {
		return old.status, errf(409, "id: fault %q is already active", f.ID)
	}
	state, err := drv.Prepare(f)
	if err != nil {
		return agentapi.FaultStatus{}, errf(400, "%v", err)
	}
	if err := a.led.Append(ledger.Record{Op: ledger.OpIntent, ID: f.ID, Fault: &f, State: state}); err != nil {
		return agentapi.FaultStatus{}, errf(500, "record intent: %v", err)
	}
	fl := &fault{drv: drv, state: state, status: agentapi.FaultStatus{Fault: f}}
	a.forget(f.ID)
	a.faults[f.ID] = fl
	applied, err := drv.Apply(f, state)
	if len(applied) > 0 {
		fl.state = applied
	}
	if err != nil {
		rerr := drv.Revert(f, fl.state)
		now := time.Now().UTC()
		fl.status.State = agentapi.StateFailed
		fl.status.Error = err.Error()
		fl.status.RevertedAt = now
		fl.status.RevertReason = reasonApplyFailed
		if rerr == nil {
			left, verr := drv.Remaining(f, fl.state)
			fl.status.Verified = verr == nil && left == ""
			if lerr := a.led.Append(ledger.Record{Op: ledger.OpReverted, ID: f.ID, Reason: reasonApplyFailed, Error: err.Error()}); lerr != nil {
				a.lg.Error("record revert", zap.String("fault", f.ID), zap.Error(lerr))
			}
		} else {
			fl.status.Error += "; cleanup: " + rerr.Error()
		}
		a.reverted = append(a.reverted, f.ID)
		a.trim()
		a.lg.Error("inject failed", append(a.logFields(f, reasonApplyFailed), zap.Error(err))...)
		return fl.status, errf(500, "apply %s: %v", f.Kind, err)
	}
	now := time.Now().UTC()
	rec := ledger.Record{Op: ledger.OpApplied, ID: f.ID}
	if len(applied) > 0 {
		rec.State = applied
	}
	if err := a.led.Append(rec); err != nil {
		// The intent is on disk, so recovery still reverts it; carry on.
		a.lg.Error("record apply", zap.String("fault", f.ID), zap.Error(err))
	}
	fl.status.State = agentapi.StateActive
	fl.status.AppliedAt = now
	fl.status.LeaseExpires = minTime(f.Deadline, now.Add(leaseDuration(f.LeaseSeconds))).UTC()
	a.arm(fl)
	a.lg.Info("fault injected", append(a.logFields(f, ""),
		zap.String("kind", string(f.Kind)), zap.ByteString("state", fl.state), zap.Time("leaseExpires", fl.status.LeaseExpires),
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
	if err := fl.drv.Revert(f, fl.state); err != nil {
		fl.status.Error = err.Error()
		a.lg.Error("revert failed", append(a.logFields(f, reason), zap.Error(err))...)
		return fl.status, fmt.Errorf("revert fault %s: %w", f.ID, err)
	}
	if fl.timer != nil {
		fl.timer.Stop()
	}
	fl.gen++
	left, err := fl.drv.Remaining(f, fl.state)
	fl.status.Verified = err == nil && left == ""
	switch {
	case err != nil:
		fl.status.Error = "verify: " + err.Error()
	case left != "":
		fl.status.Error = "verify: still present: " + left
	default:
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
			live = append(live, ledger.Entry{Fault: fl.status.Fault, Applied: true, State: fl.state})
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
// reverted through its driver, then every driver prunes tagged leftovers,
// then the ledger is compacted. Faults whose revert fails stay in the
// ledger.
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
		drv, ok := a.drivers[f.Kind]
		if !ok {
			errs = append(errs, fmt.Errorf("recover fault %s: no driver for kind %q", f.ID, f.Kind))
			live = append(live, e)
			continue
		}
		if err := drv.Revert(f, e.State); err != nil {
			errs = append(errs, fmt.Errorf("recover fault %s: %w", f.ID, err))
			live = append(live, e)
			continue
		}
		left, verr := drv.Remaining(f, e.State)
		now := time.Now().UTC()
		if err := a.led.Append(ledger.Record{Op: ledger.OpReverted, ID: f.ID, Reason: agentapi.ReasonStartup}); err != nil {
			errs = append(errs, err)
		}
		a.faults[f.ID] = &fault{drv: drv, state: e.State, status: agentapi.FaultStatus{
			Fault: f, State: agentapi.StateReverted, RevertedAt: now,
			RevertReason: agentapi.ReasonStartup, Verified: verr == nil && left == "",
		}}
		a.reverted = append(a.reverted, f.ID)
		a.lg.Info("fault reverted", append(a.logFields(f, agentapi.ReasonStartup), zap.Bool("applied", e.Applied))...)
	}
	a.trim()
	var keep map[agentapi.Kind][]json.RawMessage
	for _, e := range live {
		if keep == nil {
			keep = map[agentapi.Kind][]json.RawMessage{}
		}
		keep[e.Fault.Kind] = append(keep[e.Fault.Kind], e.State)
	}
	for _, kind := range a.kinds() {
		removed, err := a.drivers[kind].Prune(keep[kind])
		if err != nil {
			errs = append(errs, fmt.Errorf("prune %s leftovers: %w", kind, err))
		}
		for _, r := range removed {
			a.lg.Info("leftover removed", zap.String("kind", string(kind)), zap.String("what", r), zap.String("node", a.cfg.Node),
				zap.String("reason", agentapi.ReasonStartup))
		}
	}
	if err := a.led.Compact(live); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// kinds lists the drivers' kinds in a stable order.
func (a *agent) kinds() []agentapi.Kind {
	out := make([]agentapi.Kind, 0, len(a.drivers))
	for k := range a.drivers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
