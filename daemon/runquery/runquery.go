// Package runquery is the filter of GET /v1/runs: a Kubernetes-style
// label selector over a run's fields, a since duration and a limit. chaosd
// applies it (so a long history is not shipped to filter it client-side)
// and chaosctl parses it with the same code first, so a bad selector is
// refused before anything is sent.
package runquery

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/chaosd/chaosd/api"
)

// Keys a selector may use: each is a field of the run record.
var Keys = []string{"experiment", "verdict", "trigger", "phase", "adhoc", "dryRun", "interrupted", "suiteRun"}

// Bounds on what a query takes.
const (
	MaxSelectorBytes = 1024
	// MaxLimit bounds limit; more is refused rather than clamped, so a
	// typo does not silently mean something else.
	MaxLimit = 100000
	// MaxSince bounds since (longer is all runs anyway).
	MaxSince = 100 * 365 * 24 * time.Hour
)

// Query is a parsed filter. The zero value keeps every run.
type Query struct {
	Selector labels.Selector // nil: every run
	Since    time.Duration   // 0: no bound
	Limit    int             // 0: no bound
}

// Error is a bad parameter; Param names it.
type Error struct {
	Param string
	Msg   string
}

func (e *Error) Error() string { return e.Param + ": " + e.Msg }

func errorf(param, format string, args ...any) error {
	return &Error{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// ParseSelector parses a label selector ("experiment=x,verdict!=pass",
// "verdict in (fail,aborted)", "!adhoc") and checks that it names only
// Keys.
func ParseSelector(s string) (labels.Selector, error) {
	if len(s) > MaxSelectorBytes {
		return nil, errorf(api.QuerySelector, "%d bytes is too long (at most %d)", len(s), MaxSelectorBytes)
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, errorf(api.QuerySelector, "%v", err)
	}
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if !slices.Contains(Keys, r.Key()) {
			return nil, errorf(api.QuerySelector, "unknown key %q: use %s", clip(r.Key()), strings.Join(Keys, ", "))
		}
	}
	return sel, nil
}

// ParseSince parses a duration such as "90m", "24h" or "7d" (Prometheus
// style, as in experiment files; Go's "1h30m" works too).
func ParseSince(s string) (time.Duration, error) {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, errorf(api.QuerySince, "%q is not a duration such as 30m, 24h or 7d", clip(s))
	}
	switch {
	case d <= 0:
		return 0, errorf(api.QuerySince, "must be more than 0 (got %q)", clip(s))
	case time.Duration(d) > MaxSince || time.Duration(d) < 0:
		return 0, errorf(api.QuerySince, "%q is too long (at most %s)", clip(s), model.Duration(MaxSince))
	}
	return time.Duration(d), nil
}

// ParseLimit parses a limit: a whole number from 1 to MaxLimit.
func ParseLimit(s string) (int, error) {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return 0, errorf(api.QueryLimit, "%q is not a whole number", clip(s))
	case n < 1:
		return 0, errorf(api.QueryLimit, "must be at least 1 (got %d)", n)
	case n > MaxLimit:
		return 0, errorf(api.QueryLimit, "%d is too many (at most %d)", n, MaxLimit)
	}
	return n, nil
}

// FromValues parses the query parameters of GET /v1/runs. Each may be
// given once; unknown parameters are refused.
func FromValues(v url.Values) (Query, error) {
	var q Query
	for k, vs := range v {
		if k != api.QuerySelector && k != api.QuerySince && k != api.QueryLimit {
			return q, errorf(clip(k), "unknown parameter: use %s, %s or %s", api.QuerySelector, api.QuerySince, api.QueryLimit)
		}
		if len(vs) > 1 {
			return q, errorf(k, "given %d times: give it once", len(vs))
		}
	}
	var err error
	if s := v.Get(api.QuerySelector); s != "" {
		if q.Selector, err = ParseSelector(s); err != nil {
			return q, err
		}
	}
	if s := v.Get(api.QuerySince); s != "" {
		if q.Since, err = ParseSince(s); err != nil {
			return q, err
		}
	}
	if s := v.Get(api.QueryLimit); s != "" {
		if q.Limit, err = ParseLimit(s); err != nil {
			return q, err
		}
	}
	return q, nil
}

// Values returns q as query parameters (the inverse of FromValues).
func (q Query) Values() url.Values {
	v := url.Values{}
	if q.Selector != nil && !q.Selector.Empty() {
		v.Set(api.QuerySelector, q.Selector.String())
	}
	if q.Since > 0 {
		v.Set(api.QuerySince, model.Duration(q.Since).String())
	}
	if q.Limit > 0 {
		v.Set(api.QueryLimit, strconv.Itoa(q.Limit))
	}
	return v
}

// Labels are the fields of a run a selector sees.
func Labels(r api.Run) labels.Set {
	return labels.Set{
		"experiment":  r.Experiment,
		"verdict":     string(r.Verdict),
		"trigger":     string(r.Trigger),
		"phase":       string(r.Phase),
		"adhoc":       strconv.FormatBool(r.AdHoc != nil),
		"dryRun":      strconv.FormatBool(r.DryRun),
		"interrupted": strconv.FormatBool(r.Interrupted),
		"suiteRun":    r.SuiteRun,
	}
}

// Apply returns the runs q keeps, in their order (newest first), at most
// Limit of them. It reuses runs' backing array.
func (q Query) Apply(runs []api.Run, now time.Time) []api.Run {
	out := runs[:0]
	for _, r := range runs {
		if q.Since > 0 && r.CreatedAt.Before(now.Add(-q.Since)) {
			continue
		}
		if q.Selector != nil && !q.Selector.Matches(Labels(r)) {
			continue
		}
		out = append(out, r)
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out
}

// clip bounds what a message echoes of the input.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}
