package probes

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Judge compares the series of one evaluation against p and fills r
// (which carries the probe name and time):
//
//   - no series fails with Error "empty result" unless OnEmpty is pass
//     (then OK, Value NaN);
//   - NaN fails with Error "NaN" (0/0 means there was nothing to
//     measure); ±Inf compares like any number;
//   - more than one series needs Match: without it the result is not OK
//     and Error asks for all or any; with all every series must hold and
//     Value is the worst series, with any one series must hold and Value
//     is the best.
//
// It is the pure half of every backend's evaluation: the backend turns its
// answer into series, Judge decides.
func Judge(p Probe, series []SeriesValue, r Result) Result {
	r.OK = false
	r.Value = math.NaN()
	r.Series = series
	slices.SortFunc(r.Series, func(a, b SeriesValue) int { return cmp.Compare(a.Labels, b.Labels) })
	for i := range r.Series {
		r.Series[i].OK = p.Holds(r.Series[i].Value)
	}

	n := len(r.Series)
	if n == 0 {
		r.Series = nil
		if p.OnEmpty == OnEmptyPass {
			r.OK = true
		} else {
			r.Error = "empty result"
		}
		return r
	}
	if p.Match == MatchSingle && n > 1 {
		r.Error = fmt.Sprintf("%d series: set match: all or any", n)
		return r
	}

	// pick is the series that decides: the only one, the worst (all) or
	// the best (any). Ties go to the first in label order.
	pick := 0
	for i := 1; i < n; i++ {
		mi, mp := p.margin(r.Series[i].Value), p.margin(r.Series[pick].Value)
		if (p.Match == MatchAny && mi > mp) || (p.Match != MatchAny && mi < mp) {
			pick = i
		}
	}
	s := r.Series[pick]
	r.Value = s.Value
	r.OK = s.OK
	if math.IsNaN(s.Value) {
		switch {
		case n == 1 || p.Match == MatchAny:
			r.Error = "NaN"
		default:
			r.Error = "NaN in series " + s.Labels
		}
	}
	return r
}
