package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/ledger"
)

// keepReverted is how many finished faults the agent keeps to report.
const keepReverted = 100

// reasonApplyFailed marks in the ledger a fault whose apply failed and
// whose partial state was removed.
const reasonApplyFailed = "apply-failed"

// phase is where a fault is in its life. Only the phase's owner calls the
// fault's driver, so calls for one fault never overlap, and nobody holds
// Agent.mu meanwhile:
//
//	injecting  the inject call owns it: Prepare, ledger intent, Apply;
//	           then, if a revert was asked for meanwhile or Apply
//	           failed, Revert and Remaining at once
//	active     applied; nobody is calling its driver; timers armed
//	reverting  one revert goroutine owns it: Revert, Remaining
//	done       reverted or failed; final
//
// A revert that fails leaves it active (with the error in its status) and
// re-arms its timer, so the lease or deadline tries again.
type phase int

const (
	phaseInjecting phase = iota
	phaseActive
	phaseReverting
	phaseDone
)

// fault is one fault's state. Every field but drv is guarded by Agent.mu.
type fault struct {
	drv    Driver
	status agentapi.FaultStatus
	state  json.RawMessage // the driver's state, as last written to the ledger
	phase  phase
	// idle is closed when the driver work of the current phase ends
	// (injecting or reverting; after a revert, once its ledger record is
	// on disk when it must be: see NodeBound); a new channel is made for
	// each.
	idle chan struct{}
	// cancel cancels the context of the inject in flight.
	cancel context.CancelFunc
	// pending is the reason of a revert asked for while injecting: the
	// inject reverts the fault as soon as Apply returns.
	pending string
	// reverting is the reason of the revert in flight.
	reverting string
	// revertErr is the outcome of the last revert attempt.
	revertErr error
	// inLedger: the intent is on disk and no revert is recorded, so every
	// compaction must keep it. applied: the ledger says applied.
	inLedger, applied bool
	timer             *time.Timer
	gen               uint64
}

// disarm stops the fault's timer; a timer already firing sees a new gen
// and does nothing.
func (fl *fault) disarm() {
	if fl.timer != nil {
		fl.timer.Stop()
	}
	fl.gen++
}

// apiError carries the HTTP status to answer with.
type apiError struct {
	code   int
	msg    string
	status *agentapi.FaultStatus // body for 409 and 410 answers that carry one
}

func (e *apiError) Error() string { return e.msg }

func errf(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// validate checks the fields every fault has, the agent's bounds on
// lease and duration, and that a partition does not cut the node off.
// Messages name the field.
func (a *Agent) validate(f agentapi.Fault, now time.Time) error {
	if err := validateCommon(f, now); err != nil {
		return err
	}
	if err := a.checkLease(f.LeaseSeconds); err != nil {
		return err
	}
	if d := f.Deadline.Sub(now); d > a.cfg.MaxFaultDuration {
		return fmt.Errorf("deadline: %s is %s away, more than this agent's maximum fault duration %s",
			f.Deadline.UTC().Format(time.RFC3339), d.Round(time.Second), a.cfg.MaxFaultDuration)
	}
	if f.Kind == agentapi.KindPartition && f.Partition != nil && !f.Partition.AllowWide {
		if err := a.checkWide(f.Partition.CIDRs); err != nil {
			return err
		}
	}
	return nil
}

// checkLease refuses a lease that is not a positive number of seconds
// within the agent's maximum (NaN, infinities and 1e308 included).
func (a *Agent) checkLease(lease float64) error {
	if !(lease > 0) || math.IsInf(lease, 0) {
		return fmt.Errorf("leaseSeconds: %v must be > 0", lease)
	}
	if lease > a.cfg.MaxLease.Seconds() {
		return fmt.Errorf("leaseSeconds: %v is more than this agent's maximum lease %s", lease, a.cfg.MaxLease)
	}
	return nil
}

// checkWide refuses partition CIDRs that would cut the node off: every
// address, or a network the agent protects. A CIDR that does not parse is
// left to the driver, which names it.
func (a *Agent) checkWide(cidrs []string) error {
	for i, c := range cidrs {
		p, err := agentapi.ParsePrefix(c)
		if err != nil {
			continue
		}
		if p.Bits() == 0 {
			return fmt.Errorf("partition.cidrs[%d]: %s is every address and would cut the node off; set allowWide: true to cut it anyway", i, p)
		}
		for _, pr := range a.protected {
			if p.Overlaps(pr) {
				return fmt.Errorf("partition.cidrs[%d]: %s overlaps the protected network %s (management or Prometheus) and would cut the node off; set allowWide: true to cut it anyway", i, p, pr)
			}
		}
	}
	return nil
}

// validateCommon checks the fields every fault has.
func validateCommon(f agentapi.Fault, now time.Time) error {
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
func (a *Agent) driverFor(kind agentapi.Kind) (Driver, error) {
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

func (a *Agent) logFields(f agentapi.Fault, reason string) []zap.Field {
	return []zap.Field{
		zap.String("run", f.RunID), zap.String("fault", f.ID),
		zap.String("node", a.cfg.Node), zap.String("reason", reason),
	}
}

// inject applies a fault: validate and capture (driver Prepare), ledger
// intent with the driver's state (fsync), apply, ledger applied. The
// fault's own context ends at its deadline or when a revert, a halt or
// the shutdown asks for it meanwhile; then it is reverted as soon as
// Apply returns, and the answer is 409 (503 at shutdown) with its status.
// A second inject of an ID in flight or active is refused with 409.
func (a *Agent) inject(f agentapi.Fault) (agentapi.FaultStatus, error) {
	if err := a.validate(f, time.Now()); err != nil {
		return agentapi.FaultStatus{}, errf(400, "%v", err)
	}
	drv, err := a.driverFor(f.Kind)
	if err != nil {
		return agentapi.FaultStatus{}, errf(400, "%v", err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), f.Deadline)
	defer cancel()
	fl := &fault{drv: drv, phase: phaseInjecting, idle: make(chan struct{}), cancel: cancel,
		status: agentapi.FaultStatus{Fault: f}}

	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		return agentapi.FaultStatus{}, errf(503, "agent is shutting down")
	}
	prev := a.faults[f.ID]
	if prev != nil && prev.phase != phaseDone {
		st := prev.status
		a.mu.Unlock()
		if prev.phase == phaseInjecting {
			return agentapi.FaultStatus{}, errf(409, "id: fault %q is being injected", f.ID)
		}
		return st, errf(409, "id: fault %q is already active", f.ID)
	}
	a.faults[f.ID] = fl
	a.mu.Unlock()

	state, err := drv.Prepare(ctx, &f)

	a.mu.Lock()
	if fl.pending != "" {
		// Reverted before anything was written or applied.
		reason := fl.pending
		st := a.finishUnappliedLocked(fl)
		a.mu.Unlock()
		return st, interrupted(st, reason)
	}
	if err != nil {
		// Nothing was written or applied: the fault never existed.
		a.dropLocked(fl, prev)
		a.mu.Unlock()
		return agentapi.FaultStatus{}, errf(400, "%v", err)
	}
	fl.status.Fault, fl.state = f, state
	// The intent is written under a.mu, so a compaction either sees the
	// fault (inLedger) or runs before its record exists; it reaches the
	// disk below, without a.mu, sharing an fsync with concurrent faults.
	intent, err := a.led.Write(ledger.Record{Op: ledger.OpIntent, ID: f.ID, Fault: &f, State: state})
	if err != nil {
		a.dropLocked(fl, prev)
		a.mu.Unlock()
		return agentapi.FaultStatus{}, errf(500, "record intent: %v", err)
	}
	fl.inLedger = true
	a.forgetLocked(f.ID) // the previous life of this ID, if any
	a.mu.Unlock()

	// Nothing is touched before the intent is on disk: only then can no
	// crash of the node, and no disk that cannot keep it, leave a fault
	// the ledger does not name.
	if err := a.led.Sync(intent); err != nil {
		a.mu.Lock()
		fl.inLedger = false // nothing was applied: nothing to revert
		if fl.pending != "" {
			reason := fl.pending
			st := a.finishUnappliedLocked(fl)
			a.mu.Unlock()
			return st, interrupted(st, reason)
		}
		a.dropLocked(fl, prev)
		a.mu.Unlock()
		return agentapi.FaultStatus{}, errf(500, "record intent: %v", err)
	}

	applied, applyErr := drv.Apply(ctx, f, state)

	now := time.Now().UTC()
	a.mu.Lock()
	if len(applied) > 0 {
		fl.state = applied
	}
	if applyErr != nil {
		fl.status.Error = applyErr.Error()
		a.mu.Unlock()
		a.lg.Error("inject failed", append(a.logFields(f, reasonApplyFailed), zap.Error(applyErr))...)
		st := a.runRevert(fl, reasonApplyFailed, applyErr)
		return st, errf(500, "apply %s: %v", f.Kind, applyErr)
	}
	fl.status.LeaseExpires = agentapi.LeaseEnd(now, f.Deadline, f.LeaseSeconds).UTC()
	if se, ok := drv.(SelfExpiring); ok {
		how, margin := se.SelfExpiry()
		fl.status.SelfExpiry, fl.status.SelfExpiresAt = how, fl.status.LeaseExpires.Add(margin)
	}
	rec := ledger.Record{Op: ledger.OpApplied, ID: f.ID, SelfExpiry: fl.status.SelfExpiry}
	if len(applied) > 0 {
		rec.State = applied
	}
	// Not synced: a revert needs only the intent (see agent/README.md).
	if _, err := a.led.Write(rec); err != nil {
		// The intent is on disk, so recovery still reverts it; carry on.
		a.lg.Error("record apply", zap.String("fault", f.ID), zap.Error(err))
	} else {
		fl.applied = true
	}
	fl.status.State = agentapi.StateActive
	fl.status.AppliedAt = now
	if u, ok := drv.(Undoer); ok {
		if doc, err := u.Undo(f, fl.state); err == nil {
			fl.status.Undo = doc
		} else {
			a.lg.Warn("no undo document for the fault", zap.String("fault", f.ID), zap.Error(err))
		}
	}
	a.lg.Info("fault injected", append(a.logFields(f, ""),
		zap.String("kind", string(f.Kind)), zap.ByteString("state", fl.state), zap.Time("leaseExpires", fl.status.LeaseExpires),
		zap.Time("deadline", f.Deadline), zap.String("selfExpiry", fl.status.SelfExpiry), zap.Time("selfExpiresAt", fl.status.SelfExpiresAt))...)
	if reason := fl.pending; reason != "" {
		// A revert was asked for while Apply ran: do it now.
		a.mu.Unlock()
		st := a.runRevert(fl, reason, nil)
		return st, interrupted(st, reason)
	}
	fl.phase = phaseActive
	a.arm(fl, time.Until(fl.status.LeaseExpires))
	close(fl.idle)
	st := fl.status
	a.mu.Unlock()
	return st, nil
}

// interrupted is the inject's answer for a fault whose revert (for
// reason) was asked for while it was being injected: 409 once reverted
// (503 at shutdown), with the fault's status; 500 if that revert failed
// (the fault is then active and its timer tries again).
func interrupted(st agentapi.FaultStatus, reason string) error {
	if st.State != agentapi.StateReverted {
		return &apiError{code: 500, status: &st, msg: fmt.Sprintf(
			"fault %q was being injected when a revert (%s) was asked for; that revert failed: %s", st.Fault.ID, reason, st.Error)}
	}
	code := 409
	if reason == agentapi.ReasonShutdown {
		code = 503
	}
	return &apiError{code: code, status: &st, msg: fmt.Sprintf("fault %q was reverted (%s) while it was being injected", st.Fault.ID, reason)}
}

// finishUnappliedLocked ends a fault whose revert was asked for before its
// intent was written: nothing was applied, so it is reverted as is.
func (a *Agent) finishUnappliedLocked(fl *fault) agentapi.FaultStatus {
	now := time.Now().UTC()
	fl.phase = phaseDone
	fl.status.State = agentapi.StateReverted
	fl.status.RevertedAt = now
	fl.status.RevertReason = fl.pending
	fl.status.Verified = true
	a.forgetLocked(fl.status.Fault.ID)
	a.reverted = append(a.reverted, fl.status.Fault.ID)
	a.trimLocked()
	close(fl.idle)
	a.lg.Info("fault reverted before it was applied", a.logFields(fl.status.Fault, fl.pending)...)
	return fl.status
}

// dropLocked forgets a fault whose inject ended before its intent was
// written, putting back the finished fault of the same ID it replaced.
func (a *Agent) dropLocked(fl, prev *fault) {
	id := fl.status.Fault.ID
	if a.faults[id] == fl {
		if prev != nil {
			a.faults[id] = prev
			if !slices.Contains(a.reverted, id) {
				a.reverted = append(a.reverted, id) // forgotten meanwhile
			}
		} else {
			delete(a.faults, id)
		}
	}
	fl.phase = phaseDone
	fl.status.State = agentapi.StateFailed
	close(fl.idle)
}

// forgetLocked drops the finished faults of an ID from the report list
// before the ID is reused.
func (a *Agent) forgetLocked(id string) {
	a.reverted = slices.DeleteFunc(a.reverted, func(r string) bool { return r == id })
}

// arm (re)starts the fault's timer to fire after d. Called with a.mu held.
func (a *Agent) arm(fl *fault, d time.Duration) {
	fl.disarm()
	gen := fl.gen
	fl.timer = time.AfterFunc(d, func() { a.expire(fl, gen) })
}

// expire runs on the fault's own timer: the agent does not wait for
// chaosd, and does not wait for the revert either.
func (a *Agent) expire(fl *fault, gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing || fl.gen != gen || fl.phase != phaseActive {
		return
	}
	reason := agentapi.ReasonLease
	if !time.Now().Before(fl.status.Fault.Deadline) {
		reason = agentapi.ReasonDeadline
	}
	a.startRevertLocked(fl, reason)
}

// renew extends an active fault's lease (never past its deadline). It
// never waits for a driver: a fault still being injected answers 409 (its
// lease starts when it is applied), one being reverted 410.
// verifyTimeout bounds the check, on each renewal, that a fault is still
// in place.
const verifyTimeout = 5 * time.Second

func (a *Agent) renew(ctx context.Context, id string, lease float64) (agentapi.FaultStatus, error) {
	if err := a.checkLease(lease); err != nil {
		return agentapi.FaultStatus{}, errf(400, "%v", err)
	}
	a.mu.Lock()
	fl, ok := a.faults[id]
	if !ok {
		a.mu.Unlock()
		return agentapi.FaultStatus{}, errf(404, "fault %q is not known", id)
	}
	if st, err := a.renewableLocked(fl); err != nil {
		a.mu.Unlock()
		return st, err
	}
	f, state := fl.status.Fault, fl.state
	a.mu.Unlock()

	// Verify the fault is still there before extending its lease, without
	// holding the lock across the driver: a fault that vanished (flushed
	// tables, a restarted service, a killed stressor) must not be reported
	// as held. A fault that ends by itself (SelfExpiring) has its own
	// expiry moved in the same call; if that fails the lease is not
	// extended either, so the agent's timer and the kernel's (or the
	// stressor's) stay in step. For other faults a check that cannot be
	// made renews anyway (the fault may well be there); it is logged.
	until := agentapi.LeaseEnd(time.Now(), f.Deadline, lease)
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	var left string
	var verr error
	se, selfExpiring := fl.drv.(SelfExpiring)
	if selfExpiring {
		left, verr = se.Renew(vctx, f, state, until)
	} else {
		left, verr = fl.drv.Remaining(vctx, f, state)
	}
	cancel()
	if verr == nil && left == "" {
		a.lg.Warn("fault vanished", a.logFields(f, agentapi.ReasonVanished)...)
		st, err := a.revertFault(ctx, fl, agentapi.ReasonVanished)
		if err != nil {
			return st, errf(500, "fault %q vanished and cleaning up after it failed: %v", id, err)
		}
		return st, &apiError{code: 410, msg: fmt.Sprintf("fault %q is %s (%s): it was no longer in place", id, st.State, st.RevertReason), status: &st}
	}
	if verr != nil && selfExpiring {
		a.lg.Warn("could not renew fault's own expiry", append(a.logFields(f, ""), zap.Error(verr))...)
		a.mu.Lock()
		st := fl.status
		a.mu.Unlock()
		return st, &apiError{code: 500, status: &st, msg: fmt.Sprintf(
			"renew fault %q: %v (its lease is unchanged: it ends at %s)", id, verr, st.LeaseExpires.Format(time.RFC3339Nano))}
	}
	if verr != nil {
		a.lg.Warn("could not verify fault on renewal", append(a.logFields(f, ""), zap.Error(verr))...)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if st, err := a.renewableLocked(fl); err != nil {
		return st, err
	}
	fl.status.LeaseExpires = until.UTC()
	if selfExpiring {
		_, margin := se.SelfExpiry()
		fl.status.SelfExpiresAt = fl.status.LeaseExpires.Add(margin)
	}
	if !a.closing {
		a.arm(fl, time.Until(fl.status.LeaseExpires))
	}
	return fl.status, nil
}

// renewableLocked says why a fault's lease cannot be renewed (nil error
// when it is active). Called with a.mu held.
func (a *Agent) renewableLocked(fl *fault) (agentapi.FaultStatus, error) {
	id := fl.status.Fault.ID
	switch fl.phase {
	case phaseInjecting:
		return agentapi.FaultStatus{}, errf(409, "fault %q is still being injected; its lease starts once it is applied", id)
	case phaseReverting:
		st := fl.status
		return st, &apiError{code: 410, msg: fmt.Sprintf("fault %q is being reverted (%s)", id, fl.reverting), status: &st}
	case phaseDone:
		st := fl.status
		return st, &apiError{code: 410, msg: fmt.Sprintf("fault %q is %s (%s)", id, st.State, st.RevertReason), status: &st}
	}
	return agentapi.FaultStatus{}, nil
}

// revert reverts one fault (DELETE /v1/faults/{id}) and waits for the
// outcome until ctx ends; the revert goes on without the caller.
func (a *Agent) revert(ctx context.Context, id, reason string) (agentapi.FaultStatus, error) {
	a.mu.Lock()
	fl, ok := a.faults[id]
	a.mu.Unlock()
	if !ok {
		return agentapi.FaultStatus{}, errf(404, "fault %q is not known", id)
	}
	st, err := a.revertFault(ctx, fl, reason)
	if err != nil {
		return st, errf(500, "%v", err)
	}
	return st, nil
}

// revertFault has fl reverted for reason and waits for the outcome until
// ctx ends:
//
//   - active: a revert goroutine starts (Revert, Remaining, ledger);
//   - injecting: the inject's context is cancelled and the revert is left
//     pending; the inject reverts the fault as soon as Apply (or Prepare)
//     returns, whatever Apply's outcome;
//   - reverting: it waits for the revert in flight;
//   - done: it answers at once with the status (idempotent).
//
// When ctx ends first, the error says which driver call is still running;
// the revert is not abandoned.
func (a *Agent) revertFault(ctx context.Context, fl *fault, reason string) (agentapi.FaultStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if fl.phase == phaseDone {
		// As it ended; its status says how. Once its revert record is
		// on disk where that is waited for (runRevert closes idle then).
		if idle := fl.idle; idle != nil {
			a.mu.Unlock()
			select {
			case <-idle:
			case <-ctx.Done():
			}
			a.mu.Lock()
		}
		return fl.status, nil
	}
	for {
		switch fl.phase {
		case phaseDone:
			// Ended while we waited: a failed apply whose cleanup failed
			// too is an error for whoever asked for the revert.
			return fl.status, fl.revertErr
		case phaseActive:
			a.startRevertLocked(fl, reason)
		case phaseInjecting:
			if fl.pending == "" {
				fl.pending = reason
				fl.cancel()
			}
		}
		phase, idle := fl.phase, fl.idle
		a.mu.Unlock()
		select {
		case <-idle:
			a.mu.Lock()
		case <-ctx.Done():
			a.mu.Lock()
			what := "its apply"
			if phase == phaseReverting {
				what = "its revert"
			}
			return fl.status, fmt.Errorf("fault %s: %s is still running; it is reverted as soon as the driver returns", fl.status.Fault.ID, what)
		}
		if fl.phase == phaseActive {
			// The attempt we waited for failed; the fault is still in
			// place and its timer will try again.
			return fl.status, fl.revertErr
		}
	}
}

// startRevertLocked moves an active fault to reverting and reverts it in
// a goroutine of its own. Called with a.mu held.
func (a *Agent) startRevertLocked(fl *fault, reason string) {
	fl.disarm()
	fl.phase = phaseReverting
	fl.reverting = reason
	fl.idle = make(chan struct{})
	a.work.Add(1)
	go func() {
		defer a.work.Done()
		a.runRevert(fl, reason, nil)
	}()
}

// runRevert removes the fault through its driver, verifies it is gone and
// records the outcome. The caller owns the fault (phase injecting or
// reverting) and does not hold a.mu. With applyErr set the fault's Apply
// failed: it ends failed (reason apply-failed) whatever the cleanup does.
// Otherwise a failed revert leaves it active and re-arms its timer.
func (a *Agent) runRevert(fl *fault, reason string, applyErr error) agentapi.FaultStatus {
	a.mu.Lock()
	f, state := fl.status.Fault, fl.state
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), revertTimeout)
	defer cancel()
	rerr := fl.drv.Revert(ctx, f, state)
	var left string
	var verr error
	if rerr == nil {
		left, verr = fl.drv.Remaining(ctx, f, state)
	}

	now := time.Now().UTC()
	a.mu.Lock()
	if rerr != nil && applyErr == nil {
		fl.phase = phaseActive
		fl.status.Error = rerr.Error()
		fl.revertErr = fmt.Errorf("revert fault %s: %w", f.ID, rerr)
		a.lg.Error("revert failed", append(a.logFields(f, reason), zap.Error(rerr))...)
		if !a.closing {
			// The lease or the deadline tries again; at once if they are
			// past, but not in a hot loop.
			a.arm(fl, max(time.Until(fl.status.LeaseExpires), time.Second))
		}
		close(fl.idle)
		st := fl.status
		a.mu.Unlock()
		return st
	}
	fl.phase = phaseDone
	fl.revertErr = nil
	fl.status.RevertedAt = now
	fl.status.RevertReason = reason
	fl.status.Verified = rerr == nil && verr == nil && left == ""
	rec := ledger.Record{Op: ledger.OpReverted, ID: f.ID, Reason: reason}
	if applyErr != nil {
		fl.status.State = agentapi.StateFailed
		fl.status.Error = applyErr.Error()
		rec.Error = applyErr.Error()
	} else {
		fl.status.State = agentapi.StateReverted
		fl.status.Error = ""
	}
	switch {
	case rerr != nil:
		// Apply failed and so did the cleanup: the ledger keeps the
		// intent, so the next start reverts it.
		fl.status.Error += "; cleanup: " + rerr.Error()
		fl.revertErr = fmt.Errorf("clean up after failed apply of fault %s: %w", f.ID, rerr)
	case verr != nil:
		fl.status.Error = joinMsg(fl.status.Error, "verify: "+verr.Error())
	case left != "":
		fl.status.Error = joinMsg(fl.status.Error, "verify: still present: "+left)
	}
	var ticket ledger.Ticket
	if rerr == nil {
		var err error
		if ticket, err = a.led.Write(rec); err != nil {
			a.lg.Error("record revert", zap.String("fault", f.ID), zap.Error(err))
		} else {
			fl.inLedger = false
		}
	}
	// A node-bound fault's revert record need not reach the disk (see
	// NodeBound); another's must before the revert answers.
	durable := ticket != 0 && !nodeBound(fl.drv)
	a.reverted = append(a.reverted, f.ID)
	a.trimLocked()
	if applyErr == nil {
		a.sinceCompact++
		if a.sinceCompact >= compactEvery {
			if err := a.compactLocked(); err != nil {
				a.lg.Warn("compact ledger", zap.Error(err))
			}
		}
		a.lg.Info("fault reverted", append(a.logFields(f, reason), zap.Bool("verified", fl.status.Verified),
			zap.Duration("active", now.Sub(fl.status.AppliedAt)))...)
	}
	st, idle := fl.status, fl.idle
	a.mu.Unlock()
	if durable {
		if err := a.led.Sync(ticket); err != nil {
			a.lg.Error("record revert", zap.String("fault", f.ID), zap.Error(err))
		}
	}
	close(idle)
	return st
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// compactEvery bounds the ledger: after this many reverts it is rewritten
// to hold only the faults not yet reverted.
const compactEvery = 256

// compactLocked rewrites the ledger with every fault whose intent is on
// disk and whose revert is not, including faults still being injected,
// and the entries start-up could not revert. Called with a.mu held, which
// every ledger append also holds, so no intent can slip past it.
func (a *Agent) compactLocked() error {
	live := append([]ledger.Entry(nil), a.unrecovered...)
	for _, fl := range a.faults {
		if fl.inLedger {
			live = append(live, ledger.Entry{Fault: fl.status.Fault, Applied: fl.applied, State: fl.state, SelfExpiry: fl.status.SelfExpiry})
		}
	}
	if err := a.led.Compact(live); err != nil {
		return err
	}
	a.sinceCompact = 0
	return nil
}

// trimLocked keeps at most keepReverted finished faults to report; a
// fault the ledger still holds is kept.
func (a *Agent) trimLocked() {
	for len(a.reverted) > keepReverted {
		id := a.reverted[0]
		a.reverted = a.reverted[1:]
		if fl, ok := a.faults[id]; ok && fl.phase == phaseDone && !fl.inLedger {
			delete(a.faults, id)
		}
	}
}

// revertAll reverts every fault not yet finished (active, being injected
// or being reverted), all in parallel, and waits until ctx ends. It
// returns their statuses and an error naming each fault not reverted,
// including those whose driver is still busy (they are reverted as soon as
// it returns).
func (a *Agent) revertAll(ctx context.Context, reason string) ([]agentapi.FaultStatus, error) {
	a.mu.Lock()
	var targets []*fault
	for _, fl := range a.sortedLocked() {
		if fl.phase != phaseDone {
			targets = append(targets, fl)
		}
	}
	a.mu.Unlock()
	out := make([]agentapi.FaultStatus, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, fl := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = a.revertFault(ctx, fl, reason)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (a *Agent) sortedLocked() []*fault {
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

// list reports the faults (active ones only with activeOnly). A fault
// still being injected is not listed: it is not in place yet.
func (a *Agent) list(activeOnly bool) []agentapi.FaultStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []agentapi.FaultStatus{}
	for _, fl := range a.sortedLocked() {
		if fl.phase == phaseInjecting || activeOnly && fl.phase == phaseDone {
			continue
		}
		out = append(out, fl.status)
	}
	return out
}

// recover replays the ledger: every fault not recorded as reverted is
// reverted through its driver, then every driver prunes tagged leftovers,
// then the ledger is compacted. Faults whose revert fails stay in the
// ledger. It runs before the API serves.
func (a *Agent) recover(ctx context.Context, entries []ledger.Entry) error {
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
		rctx, cancel := context.WithTimeout(ctx, revertTimeout)
		err := drv.Revert(rctx, f, e.State)
		var left string
		var verr error
		if err == nil {
			left, verr = drv.Remaining(rctx, f, e.State)
		}
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("recover fault %s: %w", f.ID, err))
			live = append(live, e)
			continue
		}
		now := time.Now().UTC()
		a.mu.Lock()
		// On disk with the compaction that ends start-up.
		if _, err := a.led.Write(ledger.Record{Op: ledger.OpReverted, ID: f.ID, Reason: agentapi.ReasonStartup}); err != nil {
			errs = append(errs, err)
		}
		a.faults[f.ID] = &fault{drv: drv, state: e.State, phase: phaseDone, status: agentapi.FaultStatus{
			Fault: f, State: agentapi.StateReverted, RevertedAt: now,
			RevertReason: agentapi.ReasonStartup, Verified: verr == nil && left == "", SelfExpiry: e.SelfExpiry,
		}}
		a.forgetLocked(f.ID)
		a.reverted = append(a.reverted, f.ID)
		a.mu.Unlock()
		a.lg.Info("fault reverted", append(a.logFields(f, agentapi.ReasonStartup), zap.Bool("applied", e.Applied))...)
	}
	a.mu.Lock()
	a.trimLocked()
	a.mu.Unlock()
	var keep map[agentapi.Kind][]json.RawMessage
	for _, e := range live {
		if keep == nil {
			keep = map[agentapi.Kind][]json.RawMessage{}
		}
		keep[e.Fault.Kind] = append(keep[e.Fault.Kind], e.State)
	}
	for _, kind := range a.kinds() {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		removed, err := a.drivers[kind].Prune(pctx, keep[kind])
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("prune %s leftovers: %w", kind, err))
		}
		for _, r := range removed {
			a.lg.Info("leftover removed", zap.String("kind", string(kind)), zap.String("what", r), zap.String("node", a.cfg.Node),
				zap.String("reason", agentapi.ReasonStartup))
		}
	}
	a.mu.Lock()
	a.unrecovered = live
	err := a.compactLocked()
	a.mu.Unlock()
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// kinds lists the drivers' kinds in a stable order.
func (a *Agent) kinds() []agentapi.Kind {
	out := make([]agentapi.Kind, 0, len(a.drivers))
	for k := range a.drivers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
