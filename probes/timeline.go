package probes

import "time"

// Blind returns the results that could not be evaluated at all (Err set:
// the backend did not answer or failed the query): they say nothing about
// the system under test.
func Blind(res []Result) []Result {
	var out []Result
	for _, r := range res {
		if r.Err != nil {
			out = append(out, r)
		}
	}
	return out
}

// Judged returns the results that were evaluated (Err not set), held or not.
func Judged(res []Result) []Result {
	var out []Result
	for _, r := range res {
		if r.Err == nil {
			out = append(out, r)
		}
	}
	return out
}

// Failing returns the results that did not hold.
func Failing(res []Result) []Result {
	var out []Result
	for _, r := range res {
		if !r.OK {
			out = append(out, r)
		}
	}
	return out
}

// A Grid holds, for each step between two probe rounds, the results of
// the same probes evaluated at that step (one range query per probe, see
// probes/prom's EvalRange). It lets a change seen between two rounds be
// placed to the step instead of to the round.
type Grid [][]Result

// FirstFailure returns the time of the earliest step at which some probe
// failed.
func (g Grid) FirstFailure() (time.Time, bool) {
	for _, step := range g {
		if len(step) > 0 && len(Failing(step)) > 0 {
			return step[0].Time, true
		}
	}
	return time.Time{}, false
}

// StreakStart returns the time of the earliest step from which every
// probe held at every later step of the grid: the start of the passing
// streak that runs to the grid's end.
func (g Grid) StreakStart() (time.Time, bool) {
	var at time.Time
	found := false
	for i := len(g) - 1; i >= 0 && len(g[i]) > 0 && len(Failing(g[i])) == 0; i-- {
		at, found = g[i][0].Time, true
	}
	return at, found
}
