package probes

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Validate reports the first problem that keeps p from being evaluated: a
// missing query, an unknown op, a missing threshold (or Min/Max for
// between), Min > Max, or an unknown match or onEmpty value. Field names in
// the messages are the YAML names, so callers can prefix a field path.
func (p Probe) Validate() error {
	if p.Query == "" {
		return errors.New("query: must not be empty")
	}
	switch p.Op {
	case OpLT, OpLE, OpGT, OpGE, OpEQ, OpNE:
		if p.Threshold == nil {
			return fmt.Errorf("threshold: required for op %q", p.Op)
		}
		if math.IsNaN(*p.Threshold) {
			return errors.New("threshold: must not be NaN")
		}
		if p.Min != nil || p.Max != nil {
			return fmt.Errorf("min/max: only for op between, not %q", p.Op)
		}
	case OpBetween:
		if p.Min == nil || p.Max == nil {
			return errors.New("min, max: both required for op between")
		}
		if math.IsNaN(*p.Min) || math.IsNaN(*p.Max) {
			return errors.New("min, max: must not be NaN")
		}
		if *p.Min > *p.Max {
			return fmt.Errorf("min, max: min %s is greater than max %s", fmtFloat(*p.Min), fmtFloat(*p.Max))
		}
		if p.Threshold != nil {
			return errors.New("threshold: not used by op between (use min and max)")
		}
	case "":
		return errors.New("op: required (one of <, <=, >, >=, ==, !=, between)")
	default:
		return fmt.Errorf("op: unknown %q (want one of <, <=, >, >=, ==, !=, between)", p.Op)
	}
	switch p.Match {
	case MatchSingle, MatchAll, MatchAny:
	default:
		return fmt.Errorf("match: unknown %q (want all or any, or leave it out for a single series)", p.Match)
	}
	switch p.OnEmpty {
	case "", OnEmptyFail, OnEmptyPass:
	default:
		return fmt.Errorf("onEmpty: unknown %q (want fail or pass)", p.OnEmpty)
	}
	return nil
}

// Condition returns the condition in the form reports show, e.g. ">= 0.99"
// or "between 0.1 and 0.5". A missing bound is written as "?".
func (p Probe) Condition() string {
	if p.Op == OpBetween {
		return fmt.Sprintf("between %s and %s", fmtPtr(p.Min), fmtPtr(p.Max))
	}
	return fmt.Sprintf("%s %s", p.Op, fmtPtr(p.Threshold))
}

// Holds reports whether v meets the condition. NaN never holds (not even
// for !=): a NaN value means the query computed nothing meaningful, such as
// 0/0. ±Inf compares like any other number. A probe with a missing bound or
// an unknown op never holds.
func (p Probe) Holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if p.Op == OpBetween {
		return p.Min != nil && p.Max != nil && *p.Min <= v && v <= *p.Max
	}
	if p.Threshold == nil {
		return false
	}
	t := *p.Threshold
	switch p.Op {
	case OpLT:
		return v < t
	case OpLE:
		return v <= t
	case OpGT:
		return v > t
	case OpGE:
		return v >= t
	case OpEQ:
		return v == t
	case OpNE:
		return v != t
	}
	return false
}

// margin orders values by how well they meet the condition: larger is
// better, and the condition holds iff the margin is >= 0 (> 0 for the
// strict ops, == 0 is on the edge). NaN is the worst of all. It picks the
// worst series for match all and the best for match any.
func (p Probe) margin(v float64) float64 {
	if math.IsNaN(v) {
		return math.Inf(-1)
	}
	if p.Op == OpBetween {
		if p.Min == nil || p.Max == nil {
			return math.Inf(-1)
		}
		return math.Min(v-*p.Min, *p.Max-v)
	}
	if p.Threshold == nil {
		return math.Inf(-1)
	}
	t := *p.Threshold
	var m float64
	switch p.Op {
	case OpLT, OpLE:
		m = t - v
	case OpGT, OpGE:
		m = v - t
	case OpEQ:
		m = -math.Abs(v - t)
	case OpNE:
		m = math.Abs(v - t)
	default:
		return math.Inf(-1)
	}
	if math.IsNaN(m) { // Inf - Inf
		m = 0
	}
	return m
}

func fmtPtr(f *float64) string {
	if f == nil {
		return "?"
	}
	return fmtFloat(*f)
}

func fmtFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
