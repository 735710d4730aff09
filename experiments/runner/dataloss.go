package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
)

// DataClient sends the requests of the data-loss (RPO) check to the system
// under test; chaosd wires an HTTP client. An answer outside 2xx is no
// error: err is for a request that got no answer (refused, timed out).
type DataClient interface {
	Do(ctx context.Context, req experiments.DataRequest) (status int, body []byte, err error)
}

// readBackAttempts is how often the read-back is tried, readBackPause
// apart, before the check gives up (verdict error).
const (
	readBackAttempts = 3
	readBackPause    = time.Second
)

// dataCheck is the data-loss check of one run (spec.dataLoss): a loop
// writes from the steady-state phase to the revert; after recovery the
// writes are read back and the lost ones measured. Only the run goroutine
// calls its methods; a nil *dataCheck (no check, or a dry run) does nothing.
type dataCheck struct {
	r     *Runner
	spec  *experiments.DataLoss
	runID string

	stopLoop context.CancelFunc
	loop     sync.WaitGroup // the write loop
	inflight sync.WaitGroup // writes sent and not yet answered
	stopped  bool
	judged   bool

	mu     sync.Mutex
	writes []dataWrite
}

// dataWrite is one write and what became of it.
type dataWrite struct {
	seq     int
	sent    time.Time
	acked   time.Time // when the acknowledgement arrived; zero: not acknowledged
	outcome string    // "HTTP 201", "timeout", ...
}

// startWrites starts the data-loss check's writes and holds the run for
// the lead-in, so that writes acknowledged before the fault exist. It
// returns a verdict when the run must end: no write was acknowledged (the
// check could measure nothing), an abort, or a shutdown.
func (r *Runner) startWrites(ctx context.Context) (*dataCheck, api.Verdict, string) {
	spec := r.exp.Spec.DataLoss
	if spec == nil || r.rec.DryRun {
		return nil, "", ""
	}
	if r.deps.Data == nil {
		return nil, api.VerdictError, "preflight: the experiment has a data-loss check but this chaosd has no client for it"
	}
	r.update(func(rec *api.Run) { rec.DataLoss = &api.DataLoss{TargetSeconds: r.exp.Spec.Recovery.RPO.D().Seconds()} })
	r.setPhase(api.PhaseSteadyState, fmt.Sprintf("data-loss check: writing every %s from %s before the inject until the revert (rpo %s)",
		spec.Interval.D(), spec.LeadIn.D(), r.exp.Spec.Recovery.RPO.D()))
	dc := &dataCheck{r: r, spec: spec, runID: r.rec.ID}
	loopCtx, stop := context.WithCancel(ctx)
	dc.stopLoop = stop
	// Writes outlive the loop (stop does not cancel one in flight: its
	// answer still counts) but not the run's context.
	dc.loop.Go(func() { dc.writeLoop(loopCtx, ctx) })

	wait := time.NewTimer(spec.LeadIn.D())
	defer wait.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			return dc, api.VerdictError, "interrupted: chaosd is shutting down"
		case <-poll.C:
			if r.aborted.Load() {
				return dc, api.VerdictAborted, "aborted by user before inject"
			}
		case <-wait.C:
			waiting = false
		}
	}
	if n, acked, last := dc.counts(); acked == 0 {
		return dc, api.VerdictError, fmt.Sprintf("data-loss check: no write was acknowledged in the %s before the inject (%d answered, last: %s); it could measure nothing",
			spec.LeadIn.D(), n, last)
	}
	return dc, "", ""
}

// writeLoop makes one write every interval until loopCtx ends; each write
// runs on its own so a slow answer does not delay the next.
func (dc *dataCheck) writeLoop(loopCtx, reqCtx context.Context) {
	tick := time.NewTicker(dc.spec.Interval.D())
	defer tick.Stop()
	for seq := 1; ; seq++ {
		dc.inflight.Go(func() { dc.write(reqCtx, seq) })
		select {
		case <-loopCtx.Done():
			return
		case <-tick.C:
		}
	}
}

func (dc *dataCheck) write(ctx context.Context, seq int) {
	w := dataWrite{seq: seq, sent: time.Now()}
	req, err := dc.spec.Write.Render(experiments.NewDataLossVars(dc.runID, seq, w.sent))
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, dc.spec.Timeout.D())
		var status int
		status, _, err = dc.r.deps.Data.Do(cctx, req)
		cancel()
		switch {
		case err == nil && status >= 200 && status <= 299:
			w.acked = time.Now()
			w.outcome = fmt.Sprintf("HTTP %d", status)
		case err == nil:
			w.outcome = fmt.Sprintf("HTTP %d", status)
		}
	}
	if err != nil {
		w.outcome = requestError(err)
	}
	dc.mu.Lock()
	dc.writes = append(dc.writes, w)
	dc.mu.Unlock()
}

func requestError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return err.Error()
}

// counts returns how many writes were answered (or gave up), how many of
// them were acknowledged and the outcome of the last one.
func (dc *dataCheck) counts() (n, acked int, last string) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	for _, w := range dc.writes {
		if !w.acked.IsZero() {
			acked++
		}
	}
	last = "none"
	if len(dc.writes) > 0 {
		last = dc.writes[len(dc.writes)-1].outcome
	}
	return len(dc.writes), acked, last
}

// stop ends the writing (at the revert). Writes in flight finish on their
// own; judge waits for them.
func (dc *dataCheck) stop() {
	if dc == nil || dc.stopped {
		return
	}
	dc.stopped = true
	dc.stopLoop()
	dc.loop.Wait()
	dc.r.event("data-loss check: writing stopped")
}

// close ends a check that was never judged (the run ended before
// recovery): its writes are counted, and the record says why nothing was
// read back.
func (dc *dataCheck) close() {
	if dc == nil || dc.judged {
		return
	}
	dc.stop()
	dc.inflight.Wait()
	dc.judged = true
	n, acked, _ := dc.counts()
	dc.r.update(func(rec *api.Run) {
		rec.DataLoss.Writes, rec.DataLoss.Acknowledged = n, acked
		rec.DataLoss.Error = "not read back: the run ended before recovery"
	})
}

// judge reads the writes back after recovery, measures the RPO and folds
// it into the verdict the recovery reached: over the target fails the
// run; a read-back that is impossible is an error (never a pass). Runs
// that did not end in pass or fail are not read back.
func (dc *dataCheck) judge(ctx context.Context, verdict api.Verdict, reason string) (api.Verdict, string) {
	if dc == nil {
		return verdict, reason
	}
	r := dc.r
	dc.stop()
	dc.inflight.Wait()
	dc.judged = true
	dc.mu.Lock()
	writes := slices.Clone(dc.writes)
	dc.mu.Unlock()
	slices.SortFunc(writes, func(a, b dataWrite) int { return a.seq - b.seq })
	dl := api.DataLoss{TargetSeconds: r.exp.Spec.Recovery.RPO.D().Seconds(), Writes: len(writes)}
	for _, w := range writes {
		if !w.acked.IsZero() {
			dl.Acknowledged++
		}
	}
	save := func() { r.update(func(rec *api.Run) { rec.DataLoss = &dl }) }

	if verdict != api.VerdictPass && verdict != api.VerdictFail {
		dl.Error = fmt.Sprintf("not read back: the run ended (%s) before recovery was judged", verdict)
		save()
		return verdict, reason
	}
	body, err := dc.readBack(ctx)
	if err != nil {
		dl.Error = "read back: " + err.Error()
		save()
		msg := "data-loss check could not be judged: " + dl.Error
		r.event(msg)
		if verdict == api.VerdictPass {
			return api.VerdictError, msg
		}
		return verdict, joinReasons(reason, msg)
	}
	found := experiments.FindDataLossMarkers(body, dc.runID)
	for _, w := range writes {
		if w.acked.IsZero() || found[w.seq] {
			continue
		}
		dl.Lost++
		at := w.acked
		if dl.FirstLost == nil {
			dl.FirstLost = &at
		}
		dl.LastLost = &at
	}
	var measured time.Duration
	if dl.Lost > 0 {
		measured = dl.LastLost.Sub(*dl.FirstLost)
	}
	secs := measured.Seconds()
	dl.MeasuredSeconds = &secs
	save()
	target, res := r.exp.Spec.Recovery.RPO.D(), dc.spec.Interval.D()
	r.event(fmt.Sprintf("data-loss check: %d writes, %d acknowledged, %d lost, RPO %s (target %s, resolution ±%s)",
		dl.Writes, dl.Acknowledged, dl.Lost, measured.Round(time.Millisecond), target, res))
	if measured > target {
		msg := fmt.Sprintf("data lost: %d of %d acknowledged writes lost, spanning %s, more than the RPO %s (resolution ±%s)",
			dl.Lost, dl.Acknowledged, measured.Round(time.Millisecond), target, res)
		if verdict == api.VerdictPass {
			return api.VerdictFail, joinReasons(msg, reason)
		}
		return verdict, joinReasons(reason, msg)
	}
	return verdict, joinReasons(reason, fmt.Sprintf("%d of %d acknowledged writes lost (RPO %s, target %s)",
		dl.Lost, dl.Acknowledged, measured.Round(time.Millisecond), target))
}

// readBack makes the read request, retrying a few times: it returns the
// body of the first 2xx answer.
func (dc *dataCheck) readBack(ctx context.Context) ([]byte, error) {
	var last error
	for attempt := range readBackAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("interrupted (last: %w)", last)
			case <-time.After(readBackPause):
			}
		}
		req, err := dc.spec.Read.Render(experiments.NewDataLossVars(dc.runID, 0, time.Now()))
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, dc.spec.Timeout.D())
		status, body, err := dc.r.deps.Data.Do(cctx, req)
		cancel()
		switch {
		case err != nil:
			last = fmt.Errorf("%s %s: %s", req.Method, req.URL, requestError(err))
		case status < 200 || status > 299:
			last = fmt.Errorf("%s %s: HTTP %d", req.Method, req.URL, status)
		default:
			return body, nil
		}
	}
	return nil, fmt.Errorf("%w (%d attempts)", last, readBackAttempts)
}
