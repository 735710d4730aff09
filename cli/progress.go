package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli/report"
)

// probeLineEvery bounds how often plain (non-terminal) progress prints the
// current probe values, so CI logs stay readable.
const probeLineEvery = 5 * time.Second

// ttyWidth bounds live lines on a terminal so none wraps (a wrapped line
// would break the in-place redraw).
const ttyWidth = 79

// progress shows a run's progress while chaosctl waits for it.
//
// On a terminal, phase changes are printed as lines and a small block
// below them (phase, elapsed, one line per probe) is redrawn in place. Elsewhere
// it prints one line per phase change and a compact probe line at most
// every probeLineEvery.
type progress struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	start time.Time

	phase      api.Phase
	lastProbes time.Time
	drawn      int // lines of the live block on screen (tty)
}

func newProgress(w io.Writer, tty bool, now func() time.Time) *progress {
	return &progress{w: w, tty: tty, now: now, start: now()}
}

func (p *progress) elapsed() string {
	return "+" + report.Seconds(p.now().Sub(p.start).Seconds())
}

// started announces the run.
func (p *progress) started(r api.Run) {
	dry := ""
	if r.DryRun {
		dry = " (dry run)"
	}
	fmt.Fprintf(p.w, "run %s of %s started%s; waiting for the verdict (Ctrl-C stops waiting, not the run)\n",
		r.ID, r.Experiment, dry)
	p.update(r)
}

// update shows r.
func (p *progress) update(r api.Run) {
	p.clear()
	if r.Phase != p.phase {
		p.phase = r.Phase
		line := fmt.Sprintf("%8s  phase %s", p.elapsed(), r.Phase)
		if r.Verdict != "" {
			line += "  verdict " + strings.ToUpper(string(r.Verdict))
		}
		fmt.Fprintln(p.w, line)
		// A new phase has new probes: show them soon.
		p.lastProbes = time.Time{}
	}
	if p.tty {
		p.draw(r)
		return
	}
	if len(r.Current) > 0 && p.now().Sub(p.lastProbes) >= probeLineEvery {
		p.lastProbes = p.now()
		fmt.Fprintf(p.w, "%8s  probes %s\n", p.elapsed(), compactProbes(r.Current))
	}
}

// warn prints a line above the live block.
func (p *progress) warn(msg string) {
	p.clear()
	fmt.Fprintf(p.w, "%8s  warning: %s\n", p.elapsed(), msg)
}

// finish removes the live block.
func (p *progress) finish() { p.clear() }

func (p *progress) clear() {
	if p.drawn > 0 {
		// Cursor up over the block, then clear to the end of the screen.
		fmt.Fprintf(p.w, "\x1b[%dA\r\x1b[J", p.drawn)
		p.drawn = 0
	}
}

func (p *progress) draw(r api.Run) {
	if finished(r) {
		return
	}
	lines := []string{fmt.Sprintf("… %s  %s elapsed", r.Phase, strings.TrimPrefix(p.elapsed(), "+"))}
	for _, res := range r.Current {
		mark := "✓"
		if !res.OK {
			mark = "✗"
		}
		lines = append(lines, fmt.Sprintf("  %s %s  %s", mark, res.Probe, probeValue(res)))
	}
	for _, l := range lines {
		if rs := []rune(l); len(rs) > ttyWidth {
			l = string(rs[:ttyWidth-1]) + "…"
		}
		fmt.Fprintln(p.w, l)
	}
	p.drawn = len(lines)
}

// compactProbes is "success-rate=0.998 ok, p99=0.41 FAIL".
func compactProbes(rs []api.ProbeResult) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, r.Probe+"="+probeValue(r))
	}
	return strings.Join(parts, ", ")
}

// probeValue is the value and state of one result, without the probe name.
func probeValue(r api.ProbeResult) string {
	if r.Error != "" {
		state := "FAIL"
		if r.OK {
			state = "ok"
		}
		return state + " (" + oneLine(r.Error) + ")"
	}
	return report.ProbeValue(r)
}
