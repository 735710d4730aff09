package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// leases renews the lease of every injected fault, each on its own clock:
// a fault's first renewal is due Lease/3 after its inject, the next Lease/3
// after the previous one began, so renewals start with the first fault in
// place, however long the rest of the fan-out takes. At most one renewal
// per fault is in flight, and renewals share the run's agent-call slots
// (Options.FanOut) with injects and reverts.
//
// A fault its agent no longer holds (404, 410: reverted at its lease or
// deadline, or by a restart) is reported on lost, and its renewals stop.
// So is a fault whose agent has not answered for a whole lease: what it
// does is no longer known.
type leases struct {
	r     *Runner
	every time.Duration
	// lost carries the first fault lost; observe ends the run on it.
	lost chan string

	ctx    context.Context // ends at stop: cuts renewals in flight short
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool
	timers  map[int]*time.Timer // by fault record index: the next renewal
	wg      sync.WaitGroup      // armed timers and renewals running
}

// startLeases returns the run's lease keeper; faults join it with add as
// they go in. stop ends it.
func (r *Runner) startLeases(ctx context.Context) *leases {
	l := &leases{r: r, every: r.opts.Lease / 3, lost: make(chan string, 1), timers: map[int]*time.Timer{}}
	l.ctx, l.cancel = context.WithCancel(ctx)
	return l
}

// add starts renewing lf, injected at at (when its agent answered).
func (l *leases) add(lf liveFault, at time.Time) {
	l.arm(lf, at, l.every)
}

// arm schedules lf's next renewal in d; lastOK is when its agent last
// answered (the inject, or a renewal).
func (l *leases) arm(lf liveFault, lastOK time.Time, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.wg.Add(1)
	l.timers[lf.idx] = time.AfterFunc(d, func() {
		defer l.wg.Done()
		l.renew(lf, lastOK)
	})
}

// stop ends every renewal (those in flight are cut short) and waits for
// them.
func (l *leases) stop() {
	l.mu.Lock()
	l.stopped = true
	for _, t := range l.timers {
		if t.Stop() {
			l.wg.Done()
		}
	}
	l.timers = nil
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// renew renews lf's lease once and arms the next renewal, or reports the
// fault lost.
func (l *leases) renew(lf liveFault, lastOK time.Time) {
	r := l.r
	if !r.acquire(l.ctx.Done()) {
		return
	}
	began := time.Now()
	cctx, cancel := context.WithTimeout(l.ctx, l.every)
	st, err := lf.agent.Renew(cctx, lf.fault.ID, r.opts.Lease)
	cancel()
	r.release()
	if l.ctx.Err() != nil {
		return
	}
	if err == nil {
		if !st.SelfExpiresAt.IsZero() {
			r.mu.Lock()
			r.selfExpiresAt[lf.idx] = st.SelfExpiresAt
			r.mu.Unlock()
		}
		l.arm(lf, time.Now(), time.Until(began.Add(l.every)))
		return
	}
	var ae *agentapi.APIError
	if errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 410) {
		l.report(fmt.Sprintf("agent on node %s no longer holds fault %s: %s", lf.node.Name, lf.fault.ID, ae.Message))
		return
	}
	// A transient failure: the next renewal may pass before the lease
	// runs out. An agent silent for a whole lease may be dead: what its
	// fault does is no longer known, so the run ends (and the revert
	// falls back to what chaosd can undo itself).
	if silent := time.Since(lastOK); silent >= r.opts.Lease {
		l.report(fmt.Sprintf("agent on node %s has not answered for %s (a whole lease): fault %s no longer watched: %v",
			lf.node.Name, silent.Round(time.Millisecond), lf.fault.ID, err))
		return
	}
	r.lg.Warn("lease renewal failed", zap.String("fault", lf.fault.ID), zap.String("node", lf.node.Name), zap.Error(err))
	l.arm(lf, lastOK, time.Until(began.Add(l.every)))
}

// report hands a lost fault to observe; the first one is enough to end
// the run.
func (l *leases) report(why string) {
	select {
	case l.lost <- why:
	default:
	}
}
