package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/chaosd/chaosd/api"
)

// The timeline picture's geometry, in SVG user units. The template only
// places what these functions computed.
const (
	chartW      = 1000.0
	chartX0     = 74.0  // left of the plot area (gutter for labels)
	chartX1     = 984.0 // right of the plot area
	markerRowH  = 14.0
	laneH       = 28.0 // a line of text over a bar
	panelTitleH = 18.0
	panelPlotH  = 62.0
	panelStripH = 6.0
	panelGap    = 16.0
	charW       = 6.9 // average width of a character at 11px, to keep labels apart
)

type chart struct {
	Width, Height float64
	X0, X1        float64
	Top, AxisY    float64 // the plot area spans Top..AxisY
	Window        *rect   // the fault window (injected..reverted)
	Markers       []marker
	FaultLanes    []lane
	Panels        []panel
	Lanes         []lane
	Ticks         []tick
	AxisNote      string // what the offsets are measured from
	Legend        []legendItem
	Note          string // why there are no probe curves, if there are none
}

type rect struct{ X, Y, W, H float64 }

// legendItem explains one colour; Swatch is a class of the legend's CSS.
type legendItem struct{ Swatch, Text string }

type marker struct {
	Class          string
	X, Y0, Y1      float64
	Label          string
	LabelX, LabelY float64
	Anchor         string // text-anchor
}

type tick struct {
	X     float64
	Label string
}

type lane struct {
	Label string // in the gutter
	Y     float64
	Bars  []bar
	Texts []laneText
}

type bar struct {
	Class string
	X, W  float64
	Title string
}

type laneText struct {
	Class  string
	X      float64
	Anchor string
	Text   string
}

type panel struct {
	Name, Condition, Phases string
	Abort                   bool
	TitleY                  float64
	Y, H                    float64 // the plot
	HiY, LoY                float64
	Hi, Lo                  string // value labels at HiY, LoY
	Threshold               *hline
	Band                    *rect // between min and max
	Paths                   []path
	Dots                    []dot
	StripY                  float64
	Strip                   []bar
	Gaps                    []gapLabel // "no value" where the curve stops during the run
	Note                    string
}

type gapLabel struct{ X, Y float64 }

type hline struct {
	Y     float64
	Label string
}

type path struct {
	Class, D string
}

type dot struct {
	Class string
	X, Y  float64
}

// xScale maps times to x.
type xScale struct {
	lo, hi time.Time
}

func (s xScale) x(t time.Time) float64 {
	f := float64(t.Sub(s.lo)) / float64(s.hi.Sub(s.lo))
	return chartX0 + f*(chartX1-chartX0)
}

// clip returns x(t) kept inside the plot.
func (s xScale) clip(t time.Time) float64 {
	return math.Max(chartX0, math.Min(chartX1, s.x(t)))
}

// newChart lays out the timeline of a run: its faults, its probes' curves
// (when tl has them), the RTO, alerts, silences and lost writes, with the
// fault window and the measured moments marked across all of them.
func newChart(r api.Run, tl *api.Timeline) *chart {
	sc := chartScale(r, tl)
	ref, refName := reference(r)
	c := &chart{Width: chartW, X0: chartX0, X1: chartX1}
	c.AxisNote = fmt.Sprintf("seconds from %s (%s)", refName, ref.UTC().Format(time.RFC3339))

	// Marker labels first: they decide how much room the top needs.
	type mk struct {
		class, name string
		t           *time.Time
	}
	var mks []mk
	t := r.Times
	for _, m := range []mk{{"started", "started", t.Started}, {"injected", "injected", t.Injected},
		{"impact", "first impact", t.FirstImpact}, {"reverted", "reverted", t.Reverted}, {"recovered", "recovered", t.Recovered}} {
		if m.t != nil {
			mks = append(mks, m)
		}
	}
	var rowsEnd [4]float64 // right end of the last label in each row
	for i := range rowsEnd {
		rowsEnd[i] = math.Inf(-1)
	}
	rows := 0
	for _, m := range mks {
		x := sc.clip(*m.t)
		label := m.name + " " + offset(*m.t, ref)
		w := float64(len([]rune(label))) * charW
		mkr := marker{Class: m.class, X: x, Label: label, LabelX: x + 3, Anchor: "start"}
		left, right := x+3, x+3+w
		if right > chartW-4 {
			mkr.LabelX, mkr.Anchor = x-3, "end"
			left, right = x-3-w, x-3
		}
		row := 0
		for row < len(rowsEnd)-1 && left < rowsEnd[row]+8 {
			row++
		}
		rowsEnd[row] = right
		rows = max(rows, row+1)
		mkr.LabelY = 12 + float64(row)*markerRowH
		c.Markers = append(c.Markers, mkr)
	}
	y := 8 + float64(rows)*markerRowH
	c.Top = y

	// One lane per fault (all its nodes together).
	for _, f := range faultSpans(r) {
		l := lane{Label: "fault", Y: y}
		end := sc.hi
		if f.reverted != nil {
			end = *f.reverted
		}
		x0, x1 := sc.clip(f.injected), sc.clip(end)
		l.Bars = append(l.Bars, bar{Class: "fault", X: x0, W: math.Max(x1-x0, 2), Title: f.text})
		l.Texts = append(l.Texts, placeText("fault-text", x0, f.text))
		c.FaultLanes = append(c.FaultLanes, l)
		y += laneH
	}
	if len(c.FaultLanes) > 0 {
		y += 6
	}

	// One panel per probe.
	switch {
	case tl == nil:
		c.Note = "Probe curves not requested: this report was made from the run record alone."
	case tl.Error != "":
		c.Note = tl.Error
	case len(tl.Series) == 0:
		c.Note = "The run has no probes to draw."
	}
	if tl != nil && tl.Error == "" {
		step := time.Duration(tl.StepSeconds * float64(time.Second))
		from, to := runSpan(r, sc.hi)
		for _, s := range tl.Series {
			p := newPanel(s, sc, step, from, to, y)
			c.Panels = append(c.Panels, p)
			y = p.StripY + panelStripH + panelGap
		}
	}

	// Lanes under the probes: RTO, alerts, silences, lost writes.
	c.Lanes = append(c.Lanes, rtoLane(r, sc)...)
	c.Lanes = append(c.Lanes, alertLanes(r, sc)...)
	c.Lanes = append(c.Lanes, silenceLanes(r, sc)...)
	c.Lanes = append(c.Lanes, dataLossLanes(r, sc)...)
	for i := range c.Lanes {
		c.Lanes[i].Y = y
		y += laneH
	}
	c.AxisY = y + 4

	if t.Injected != nil {
		end := sc.hi
		if t.Reverted != nil {
			end = *t.Reverted
		}
		x0, x1 := sc.clip(*t.Injected), sc.clip(end)
		c.Window = &rect{X: x0, Y: c.Top, W: math.Max(x1-x0, 1), H: c.AxisY - c.Top}
	}
	for i := range c.Markers {
		c.Markers[i].Y0 = c.Markers[i].LabelY + 3
		c.Markers[i].Y1 = c.AxisY
	}
	c.Ticks = ticks(sc, *ref)
	c.Height = c.AxisY + 34
	c.Legend = c.legend()
	return c
}

// legend explains the colours the picture uses, and only those.
func (c *chart) legend() []legendItem {
	used := map[string]bool{}
	if c.Window != nil {
		used["window"] = true
	}
	for _, p := range c.Panels {
		for _, x := range p.Paths {
			used[x.Class] = true
		}
		for _, x := range p.Dots {
			used[x.Class] = true
		}
		for _, x := range p.Strip {
			used["strip-"+x.Class] = true
		}
		if p.Threshold != nil {
			used["threshold"] = true
		}
		if p.Band != nil {
			used["band"] = true
		}
	}
	for _, l := range c.Lanes {
		for _, b := range l.Bars {
			if strings.HasPrefix(b.Class, "rto") {
				used[b.Class] = true // "rto", "rto over", "rto open"
				continue
			}
			for _, class := range strings.Fields(b.Class) { // "firing silenced"
				used[class] = true
			}
		}
	}
	var out []legendItem
	for _, it := range []struct{ key, swatch, text string }{
		{"window", "window", "fault window"},
		{"ok", "curve-ok", "probe value, healthy"},
		{"fail", "curve-fail", "probe value, not healthy"},
		{"strip-fail", "strip-fail", "not healthy (strip under each probe)"},
		{"strip-none", "strip-none", "no value"},
		{"threshold", "threshold", "threshold"},
		{"band", "band", "healthy range"},
		{"rto", "rto", "measured RTO (first impact to recovered)"},
		{"rto over", "rto-bad", "RTO over its target"},
		{"rto open", "rto-bad", "not recovered (yet)"},
		{"pending", "pending", "alert pending"},
		{"firing", "firing", "alert firing"},
		{"silenced", "silenced", "firing, silenced"},
		{"silence", "silence", "Alertmanager silence"},
		{"loss", "loss", "lost writes"},
	} {
		if used[it.key] {
			out = append(out, legendItem{Swatch: it.swatch, Text: it.text})
		}
	}
	return out
}

// chartScale is the time range the picture shows: the timeline's window,
// widened to every moment of the record.
func chartScale(r api.Run, tl *api.Timeline) xScale {
	var lo, hi time.Time
	see := func(t *time.Time) {
		if t == nil || t.IsZero() {
			return
		}
		if lo.IsZero() || t.Before(lo) {
			lo = *t
		}
		if hi.IsZero() || t.After(hi) {
			hi = *t
		}
	}
	if tl != nil && !tl.Start.IsZero() && tl.End.After(tl.Start) {
		see(&tl.Start)
		see(&tl.End)
	}
	see(&r.CreatedAt)
	t := r.Times
	for _, p := range []*time.Time{t.Started, t.Injected, t.FirstImpact, t.Reverted, t.Recovered, r.FinishedAt} {
		see(p)
	}
	for _, f := range r.Faults {
		see(f.InjectedAt)
		see(f.RevertedAt)
	}
	for _, e := range r.Events {
		see(&e.Time)
	}
	if tl == nil || tl.Start.IsZero() {
		// No query window: a little room on both sides.
		pad := max(2*time.Second, hi.Sub(lo)/25)
		lo, hi = lo.Add(-pad), hi.Add(pad)
	}
	if !hi.After(lo) {
		hi = lo.Add(time.Second)
	}
	return xScale{lo: lo, hi: hi}
}

// faultSpan is one fault over all its nodes.
type faultSpan struct {
	injected time.Time
	reverted *time.Time // nil while one node still has it
	text     string
}

func faultSpans(r api.Run) []faultSpan {
	type agg struct {
		span  faultSpan
		kind  string
		nodes int
		open  bool
	}
	var order []string
	by := map[string]*agg{}
	for _, f := range r.Faults {
		if f.InjectedAt == nil {
			continue
		}
		a, ok := by[f.Name]
		if !ok {
			a = &agg{span: faultSpan{injected: *f.InjectedAt}, kind: f.Kind}
			by[f.Name] = a
			order = append(order, f.Name)
		}
		a.nodes++
		if f.InjectedAt.Before(a.span.injected) {
			a.span.injected = *f.InjectedAt
		}
		if f.RevertedAt == nil {
			a.open = true
		} else if a.span.reverted == nil || f.RevertedAt.After(*a.span.reverted) {
			t := *f.RevertedAt
			a.span.reverted = &t
		}
	}
	var out []faultSpan
	for _, name := range order {
		a := by[name]
		if a.open {
			a.span.reverted = nil
		}
		nodes := "1 node"
		if a.nodes != 1 {
			nodes = fmt.Sprintf("%d nodes", a.nodes)
		}
		a.span.text = fmt.Sprintf("%s · %s · %s", name, a.kind, nodes)
		if a.span.reverted != nil {
			a.span.text += " · " + Seconds(a.span.reverted.Sub(a.span.injected).Seconds())
		}
		out = append(out, a.span)
	}
	return out
}

// placeText puts a lane's text over its bar, from the bar's start, or
// ending at the plot's right edge when it would run past it.
func placeText(class string, x0 float64, text string) laneText {
	w := float64(len([]rune(text))) * charW
	if x0+w > chartX1 {
		return laneText{Class: class, X: chartX1, Anchor: "end", Text: text}
	}
	return laneText{Class: class, X: x0, Anchor: "start", Text: text}
}

// phaseNames are how the picture names the phases a probe served in.
var phaseNames = map[api.Phase]string{
	api.PhaseSteadyState: "steady state",
	api.PhaseEffects:     "effects",
	api.PhaseObserving:   "during the fault",
	api.PhaseAbort:       "abort condition: fires when it holds",
	api.PhaseRecovering:  "recovery",
}

func seriesPhases(s api.ProbeSeries) string {
	var out []string
	for _, p := range s.Phases {
		if n, ok := phaseNames[p]; ok {
			out = append(out, n)
		} else {
			out = append(out, string(p))
		}
	}
	return strings.Join(out, " · ")
}

// runSpan is when the run judged the system: from its start to its end
// (or until).
func runSpan(r api.Run, until time.Time) (time.Time, time.Time) {
	from := r.CreatedAt
	if r.Times.Started != nil {
		from = *r.Times.Started
	}
	if r.FinishedAt != nil {
		until = *r.FinishedAt
	}
	return from, until
}

// newPanel draws one probe's values; from..to is the run (outside it, a
// missing value is only missing, not a failure).
func newPanel(s api.ProbeSeries, sc xScale, step time.Duration, from, to time.Time, y float64) panel {
	p := panel{Name: s.Name, Condition: s.Condition, Phases: seriesPhases(s), Abort: s.Abort(),
		TitleY: y + 12, Y: y + panelTitleH, H: panelPlotH}
	p.StripY = p.Y + p.H + 3

	// The value range: every finite value, and the condition's bounds.
	lo, hi := math.Inf(1), math.Inf(-1)
	see := func(v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	values := 0
	for _, pt := range s.Points {
		if !math.IsNaN(pt.Value) && !math.IsInf(pt.Value, 0) {
			values++
		}
		see(pt.Value)
	}
	for _, b := range []*float64{s.Threshold, s.Min, s.Max} {
		if b != nil {
			see(*b)
		}
	}
	switch {
	case s.Error != "":
		p.Note = "query failed: " + s.Error
	case values == 0 && allOK(s.Points) && s.Abort():
		p.Note = "empty result throughout: counted as not firing (onEmpty: pass)"
	case values == 0 && allOK(s.Points):
		p.Note = "empty result throughout: counted as healthy (onEmpty: pass)"
	case values == 0:
		p.Note = "no values in Prometheus for this window"
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	dataLo, dataHi := lo, hi
	if hi == lo {
		d := math.Max(math.Abs(lo)*0.5, 0.5)
		lo, hi = lo-d, hi+d
	}
	pad := (hi - lo) * 0.08
	lo, hi = lo-pad, hi+pad
	yOf := func(v float64) float64 {
		v = math.Max(lo, math.Min(hi, v))
		return p.Y + p.H - (v-lo)/(hi-lo)*p.H
	}
	p.HiY, p.LoY = yOf(dataHi), yOf(dataLo)
	p.Hi, p.Lo = FormatValue(dataHi), FormatValue(dataLo)
	if dataHi == dataLo {
		p.Lo = "" // one value: one label
	}
	switch {
	case s.Op == "between" && s.Min != nil && s.Max != nil:
		y0, y1 := yOf(*s.Max), yOf(*s.Min)
		p.Band = &rect{X: chartX0, Y: y0, W: chartX1 - chartX0, H: math.Max(y1-y0, 1)}
	case s.Threshold != nil:
		p.Threshold = &hline{Y: yOf(*s.Threshold), Label: s.Condition}
	}

	// The curve, split where there is no value, red where the probe was
	// not healthy.
	finite := func(pt api.Point) bool { return !math.IsNaN(pt.Value) && !math.IsInf(pt.Value, 0) }
	var cur *path
	var b strings.Builder
	flush := func() {
		if cur != nil {
			cur.D = b.String()
			p.Paths = append(p.Paths, *cur)
			cur = nil
		}
		b.Reset()
	}
	for i, pt := range s.Points {
		if !finite(pt) {
			flush()
			continue
		}
		x, yv := sc.x(pt.Time), yOf(pt.Value)
		class := curveClass(pt.OK)
		prevOK := i > 0 && finite(s.Points[i-1])
		nextOK := i+1 < len(s.Points) && finite(s.Points[i+1])
		if !prevOK && !nextOK {
			p.Dots = append(p.Dots, dot{Class: class, X: x, Y: yv})
			continue
		}
		if cur != nil && cur.Class != class {
			// Continue the line from the last point in the new colour.
			lastX, lastY := sc.x(s.Points[i-1].Time), yOf(s.Points[i-1].Value)
			flush()
			cur = &path{Class: class}
			fmt.Fprintf(&b, "M%s %sL%s %s", num(lastX), num(lastY), num(x), num(yv))
			continue
		}
		if cur == nil {
			cur = &path{Class: class}
			fmt.Fprintf(&b, "M%s %s", num(x), num(yv))
			continue
		}
		fmt.Fprintf(&b, "L%s %s", num(x), num(yv))
	}
	flush()

	// Long stretches without a value while the run judged the probe:
	// say so where the curve stops.
	gapStart := -1
	for i := 0; i <= len(s.Points); i++ {
		inGap := i < len(s.Points) && !finite(s.Points[i]) && !s.Points[i].OK &&
			!s.Points[i].Time.Before(from) && !s.Points[i].Time.After(to)
		switch {
		case inGap && gapStart < 0:
			gapStart = i
		case !inGap && gapStart >= 0:
			x0, x1 := sc.x(s.Points[gapStart].Time), sc.x(s.Points[i-1].Time)
			if x1-x0 > 110 && p.Note == "" {
				p.Gaps = append(p.Gaps, gapLabel{X: (x0 + x1) / 2, Y: p.Y + p.H/2 + 4})
			}
			gapStart = -1
		}
	}

	// The health strip: healthy, not healthy, or no value, per step.
	half := step / 2
	for _, pt := range s.Points {
		class := "ok"
		switch {
		case pt.OK:
		case finite(pt) || (!pt.Time.Before(from) && !pt.Time.After(to)):
			class = "fail"
		default:
			class = "none"
		}
		x0, x1 := sc.clip(pt.Time.Add(-half)), sc.clip(pt.Time.Add(half))
		if n := len(p.Strip); n > 0 && p.Strip[n-1].Class == class && math.Abs(p.Strip[n-1].X+p.Strip[n-1].W-x0) < 0.5 {
			p.Strip[n-1].W = x1 - p.Strip[n-1].X
			continue
		}
		p.Strip = append(p.Strip, bar{Class: class, X: x0, W: x1 - x0})
	}
	return p
}

func allOK(pts []api.Point) bool {
	for _, p := range pts {
		if !p.OK {
			return false
		}
	}
	return true
}

func curveClass(ok bool) string {
	if ok {
		return "ok"
	}
	return "fail"
}

// num formats a coordinate with one decimal.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func rtoLane(r api.Run, sc xScale) []lane {
	t := r.Times
	if t.FirstImpact == nil {
		return nil
	}
	l := lane{Label: "RTO"}
	x0 := sc.clip(*t.FirstImpact)
	switch {
	case t.Recovered != nil:
		x1 := sc.clip(*t.Recovered)
		class := "rto"
		if m := r.RTO.MeasuredSeconds; m != nil && *m > r.RTO.TargetSeconds {
			class = "rto over"
		}
		text := "RTO " + RTOLine(r)
		if m := r.RTO.MeasuredSeconds; m != nil {
			text = fmt.Sprintf("RTO %s (target %s)", Seconds(*m), secondsDuration(r.RTO.TargetSeconds))
		}
		l.Bars = append(l.Bars, bar{Class: class, X: x0, W: math.Max(x1-x0, 2), Title: text})
		l.Texts = append(l.Texts, placeText("rto-text", x0, text))
	default:
		x1 := sc.clip(sc.hi)
		text := "not recovered"
		if r.Verdict == "" {
			text = "recovering…"
		}
		l.Bars = append(l.Bars, bar{Class: "rto open", X: x0, W: math.Max(x1-x0, 2), Title: text})
		l.Texts = append(l.Texts, placeText("rto-text", x0, text))
	}
	return []lane{l}
}

func alertLanes(r api.Run, sc xScale) []lane {
	ref, _ := reference(r)
	var out []lane
	for _, a := range r.Alerts {
		l := lane{Label: "alert"}
		kind := "forbidden"
		if a.Expected {
			kind = "expected"
		}
		name := alertName(a) + " (" + kind + ")"
		if a.Silenced {
			name += " · silenced"
		}
		var x0, x1 float64
		if a.PendingAt != nil {
			end := sc.hi
			if a.FiredAt != nil {
				end = *a.FiredAt
			} else if a.ResolvedAt != nil {
				end = *a.ResolvedAt
			}
			x0, x1 = sc.clip(*a.PendingAt), sc.clip(end)
			l.Bars = append(l.Bars, bar{Class: "pending", X: x0, W: math.Max(x1-x0, 2), Title: name + ": pending"})
		}
		text := name + ": never fired"
		if a.FiredAt != nil {
			end := sc.hi
			if a.ResolvedAt != nil {
				end = *a.ResolvedAt
			}
			fx0, fx1 := sc.clip(*a.FiredAt), sc.clip(end)
			class := "firing"
			if a.Silenced {
				class += " silenced"
			}
			l.Bars = append(l.Bars, bar{Class: class, X: fx0, W: math.Max(fx1-fx0, 2), Title: name + ": firing"})
			if a.PendingAt == nil {
				x0 = fx0
			}
			x1 = fx1
			text = name + ": fired at " + offset(*a.FiredAt, ref)
			if a.TTASeconds != nil {
				text += ", " + Seconds(*a.TTASeconds) + " after the first impact"
			}
		}
		class := "alert-text"
		if !a.OK {
			class += " bad"
		}
		if len(l.Bars) == 0 {
			l.Texts = append(l.Texts, laneText{Class: class, X: chartX0 + 4, Anchor: "start", Text: text})
		} else {
			l.Texts = append(l.Texts, placeText(class, x0, text))
		}
		out = append(out, l)
	}
	return out
}

func silenceLanes(r api.Run, sc xScale) []lane {
	var out []lane
	for _, s := range r.Silences {
		l := lane{Label: "silence"}
		end := s.EndsAt
		if s.ExpiredAt != nil {
			end = *s.ExpiredAt
		}
		text := "silence " + strings.Join(s.Matchers, ", ")
		if s.Error != "" {
			text += ": " + s.Error
		}
		if s.CreatedAt.IsZero() {
			l.Texts = append(l.Texts, laneText{Class: "silence-text", X: chartX0 + 4, Anchor: "start", Text: text})
			out = append(out, l)
			continue
		}
		x0, x1 := sc.clip(s.CreatedAt), sc.clip(end)
		l.Bars = append(l.Bars, bar{Class: "silence", X: x0, W: math.Max(x1-x0, 2), Title: text})
		l.Texts = append(l.Texts, placeText("silence-text", x0, text))
		out = append(out, l)
	}
	return out
}

func dataLossLanes(r api.Run, sc xScale) []lane {
	d := r.DataLoss
	if d == nil || d.Lost == 0 || d.FirstLost == nil {
		return nil
	}
	last := d.FirstLost
	if d.LastLost != nil {
		last = d.LastLost
	}
	x0, x1 := sc.clip(*d.FirstLost), sc.clip(*last)
	text := fmt.Sprintf("%d acknowledged writes lost", d.Lost)
	l := lane{Label: "RPO", Bars: []bar{{Class: "loss", X: x0, W: math.Max(x1-x0, 2), Title: text}}}
	l.Texts = append(l.Texts, placeText("loss-text", x0, text))
	return []lane{l}
}

// tickSteps are the distances between axis ticks, in seconds.
var tickSteps = []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400}

// ticks places about 8–12 ticks at whole offsets from ref.
func ticks(sc xScale, ref time.Time) []tick {
	span := sc.hi.Sub(sc.lo).Seconds()
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if span/s <= 12 {
			step = s
			break
		}
	}
	first := math.Ceil(sc.lo.Sub(ref).Seconds()/step) * step
	var out []tick
	for o := first; o <= sc.hi.Sub(ref).Seconds()+1e-9; o += step {
		t := ref.Add(time.Duration(o * float64(time.Second)))
		out = append(out, tick{X: sc.x(t), Label: tickLabel(o)})
	}
	return out
}

// tickLabel is "+30s", "-1m", "+2m30s", "+1h", "0".
func tickLabel(o float64) string {
	if o == 0 {
		return "0"
	}
	sign := "+"
	if o < 0 {
		sign = "-"
	}
	total := int(math.Round(math.Abs(o)))
	h, m, sec := total/3600, total/60%60, total%60
	var b strings.Builder
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if sec > 0 {
		fmt.Fprintf(&b, "%ds", sec)
	}
	return sign + b.String()
}
