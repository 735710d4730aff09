package probes

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

// A Grid holds, for each judging step, the results of the same probes
// evaluated at that step (one range query per probe, see probes/prom's
// EvalRange): the scrapes between two probe rounds, or a baseline window.
type Grid [][]Result
