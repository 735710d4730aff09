// Package promql reads what a probe's PromQL query looks at — the
// functions it calls and the range windows it reads — with Prometheus' own
// parser, so chaosd can refuse an SLO probe that would let requests go
// unjudged, and expands the $__rate_interval variable into the window that
// covers every request at a run's judging step.
package promql

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// RateInterval is the variable a probe writes as its range window to let
// chaosd choose one (as in Grafana): see Window.
const RateInterval = "$__rate_interval"

// sentinel stands in for RateInterval while parsing: a window nobody
// writes by hand, recognised and reported as the variable.
const sentinel = "3333333ms"

// Info is what a query reads.
type Info struct {
	// Functions are the functions the query calls, sorted, once each
	// (aggregations such as sum are operators, not functions).
	Functions []string
	// Windows are the literal range windows of its range selectors and
	// subqueries, in query order.
	Windows []time.Duration
	// UsesRateInterval says the query uses $__rate_interval.
	UsesRateInterval bool
}

// Calls reports whether the query calls fn.
func (i Info) Calls(fn string) bool {
	_, found := slices.BinarySearch(i.Functions, fn)
	return found
}

// Analyze parses q (with $__rate_interval allowed wherever a window is)
// and returns what it reads. The error is Prometheus' parse error.
func Analyze(q string) (Info, error) {
	if strings.Contains(q, sentinel) {
		return Info{}, fmt.Errorf("window %s is reserved", sentinel)
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(strings.ReplaceAll(q, RateInterval, sentinel))
	if err != nil {
		return Info{}, err
	}
	var info Info
	sent := time.Duration(3333333) * time.Millisecond
	addWindow := func(d time.Duration) {
		if d == sent {
			info.UsesRateInterval = true
			return
		}
		info.Windows = append(info.Windows, d)
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.Call:
			if !slices.Contains(info.Functions, n.Func.Name) {
				info.Functions = append(info.Functions, n.Func.Name)
			}
		case *parser.MatrixSelector:
			addWindow(n.Range)
		case *parser.SubqueryExpr:
			addWindow(n.Range)
		}
		return nil
	})
	slices.Sort(info.Functions)
	return info, nil
}

// Window is the shortest range window that lets a probe judged every step
// see every request when Prometheus scrapes every scrape: each evaluation
// must reach back over the step to the last sample the previous one saw
// (step + scrape), and hold at least four scrapes so that one lost scrape
// still leaves two samples to take a rate from.
func Window(step, scrape time.Duration) time.Duration {
	return max(step+scrape, 4*scrape)
}

// Expand replaces $__rate_interval in q with window, in Prometheus'
// duration syntax.
func Expand(q string, window time.Duration) string {
	return strings.ReplaceAll(q, RateInterval, model.Duration(window).String())
}

// Lookback is how far back the query's answer at t reaches: its longest
// window (window stands for $__rate_interval); 0 for a query that reads
// only the latest samples (a gauge).
func (i Info) Lookback(window time.Duration) time.Duration {
	var l time.Duration
	if i.UsesRateInterval {
		l = window
	}
	for _, w := range i.Windows {
		l = max(l, w)
	}
	return l
}
