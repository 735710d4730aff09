// Package probes is the pure part of chaosd's probes: a probe (a PromQL
// query and a comparator), its result, how series are judged, the abort
// and recovery trackers, RTO, and the refinement that places a change
// between two probe rounds. It imports only the standard library; the
// Prometheus-backed evaluator is probes/prom.
package probes

import "time"

// Op is a comparator.
type Op string

const (
	OpLT      Op = "<"
	OpLE      Op = "<="
	OpGT      Op = ">"
	OpGE      Op = ">="
	OpEQ      Op = "=="
	OpNE      Op = "!="
	OpBetween Op = "between" // inclusive: Min <= v <= Max
)

// Match says how a multi-series result is judged.
type Match string

const (
	// MatchSingle (the default, written as an empty field) requires exactly
	// one series; more than one is a failure that asks for all/any.
	MatchSingle Match = ""
	// MatchAll holds iff every series holds; Value is the worst series.
	MatchAll Match = "all"
	// MatchAny holds iff at least one series holds; Value is the best.
	MatchAny Match = "any"
)

// OnEmpty says what an empty result means.
type OnEmpty string

const (
	OnEmptyFail OnEmpty = "fail" // default
	OnEmptyPass OnEmpty = "pass"
)

// Probe is a PromQL instant query and the condition its value must meet.
// The condition describes the healthy state ("holds").
type Probe struct {
	Name  string `yaml:"name" json:"name"`
	Query string `yaml:"query" json:"query"`
	Op    Op     `yaml:"op" json:"op"`
	// Threshold for every op but between.
	Threshold *float64 `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	// Min and Max for between.
	Min     *float64 `yaml:"min,omitempty" json:"min,omitempty"`
	Max     *float64 `yaml:"max,omitempty" json:"max,omitempty"`
	Match   Match    `yaml:"match,omitempty" json:"match,omitempty"`
	OnEmpty OnEmpty  `yaml:"onEmpty,omitempty" json:"onEmpty,omitempty"`
}

// SeriesValue is one series of a result.
type SeriesValue struct {
	Labels string  `json:"labels"` // Prometheus text form, e.g. {job="x"}
	Value  float64 `json:"value"`
	OK     bool    `json:"ok"`
}

// Result is one evaluation of a probe.
type Result struct {
	Probe string    `json:"probe"`
	Time  time.Time `json:"time"`
	// OK reports whether the condition held. Errors, empty results (unless
	// OnEmpty is pass), NaN and an ambiguous multi-series result are not OK.
	OK bool `json:"ok"`
	// Value is the value compared (the single series' value; for all/any
	// the worst / best series). NaN when there was none.
	Value  float64       `json:"value"`
	Series []SeriesValue `json:"series,omitempty"`
	// Error says why the probe could not be judged (query error, empty, NaN,
	// ambiguous); empty when the value was compared.
	Error string `json:"error,omitempty"`
	// Err is the error behind Error when the query itself could not be
	// run: it wraps ErrUnreachable (Prometheus did not answer) or ErrQuery
	// (Prometheus rejected or failed the query), so callers can tell "the
	// tool could not measure" from "the system failed the probe" with
	// errors.Is. It is nil for judged results, including empty, NaN and
	// ambiguous ones, and it is not serialized.
	Err error `json:"-"`
}
