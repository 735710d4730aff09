package daemon

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"
)

// lead is what the leader does until ctx ends (after recovering the runs
// an earlier leader left: recoverInterrupted): run schedules and accept
// runs; at the end, stop schedules and let every run revert. ready, when
// not nil, is closed once runs are accepted.
func (d *Daemon) lead(ctx context.Context, ready chan<- struct{}) {
	d.lg.Info("leading")
	// Runs get their own context: cancelled when leading ends, and then
	// they revert on contexts of their own.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	d.runs.setContext(runCtx)
	d.startSchedules(ctx)
	if ready != nil {
		close(ready)
	}
	<-ctx.Done()
	d.runs.setContext(nil)
	d.stopSchedules()
	cancelRuns()
	if !d.runs.wait(shutdownRuns) {
		d.lg.Warn("runs did not finish reverting in time; agents revert on lease expiry", zap.Duration("waited", shutdownRuns))
	}
	d.leader.set(false, "")
	d.lg.Info("no longer leading")
}

// leadership says whether this chaosd leads and, if not, who does.
type leadership struct {
	mu      sync.Mutex
	leading bool
	leader  string
}

func (l *leadership) set(leading bool, leader string) {
	l.mu.Lock()
	l.leading, l.leader = leading, leader
	l.mu.Unlock()
}

func (l *leadership) get() (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading, l.leader
}

// notLeading explains why this chaosd does not accept runs.
func (d *Daemon) notLeading() string {
	leading, leader := d.leader.get()
	if !leading && leader == "" && d.kube != nil {
		leader = d.kube.leaseHolder()
	}
	switch {
	case leading:
		return "chaosd is shutting down"
	case leader == "":
		return "this chaosd is not the leader and no leader is elected yet; retry shortly"
	}
	return fmt.Sprintf("this chaosd is not the leader; %s leads: send the request to it", leader)
}
