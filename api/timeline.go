package api

import (
	"encoding/json"
	"time"
)

// Timeline is the answer of GET /v1/runs/{id}/timeline: the values of a
// run's probes over the run, from Prometheus range queries, for the
// report's picture. chaosd asks Prometheus when the timeline is
// requested, so it shows what Prometheus holds now (a run older than
// Prometheus' retention has no points).
type Timeline struct {
	RunID string `json:"runId"`
	// Start and End bound the window queried: from 30s before the run
	// started to 5s after it finished (or now, while it goes).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// StepSeconds is the distance between points: the run's resolution,
	// widened when the window would need too many points.
	StepSeconds float64 `json:"stepSeconds"`
	// Error says why the probe curves are unavailable (Prometheus
	// unreachable, ...); Series then still lists the probes, without
	// points. A timeline with an error is still an answer (200): the
	// report renders from the run record alone and shows this.
	Error  string        `json:"error,omitempty"`
	Series []ProbeSeries `json:"series"`
}

// ProbeSeries is one probe's values over the timeline's window.
type ProbeSeries struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Condition string `json:"condition"` // e.g. ">= 0.99", "between 0.1 and 0.5"
	// Op with Threshold, or between Min and Max, is the condition in a
	// form a picture can draw (threshold line, band); nil when unknown.
	Op        string   `json:"op,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	// Phases are the phases the run evaluated the probe in (steady-state,
	// effects, observing, recovering, abort); an abort condition describes
	// the bad state (see Point.OK).
	Phases []Phase `json:"phases"`
	// Points are the probe's values at Start, Start+Step, ... (none when
	// the query failed).
	Points []Point `json:"points"`
	// Error says why this probe's query failed.
	Error string `json:"error,omitempty"`
}

// Abort reports whether s is an abort condition.
func (s ProbeSeries) Abort() bool {
	for _, p := range s.Phases {
		if p == PhaseAbort {
			return true
		}
	}
	return false
}

// Point is a probe's value at one instant, judged as the run judges it.
// Value is NaN when there was none (empty result, NaN, ambiguous
// multi-series result); JSON spells it "NaN" as in ProbeResult.
type Point struct {
	Time  time.Time `json:"t"`
	Value float64   `json:"v"`
	// OK: the probe was healthy at that instant: its condition held (for
	// an abort condition, which describes the bad state: it did not fire).
	OK bool `json:"ok"`
}

// MarshalJSON encodes p with a non-finite Value as "NaN", "+Inf" or "-Inf".
func (p Point) MarshalJSON() ([]byte, error) {
	type plain Point
	return json.Marshal(struct {
		plain
		Value jsonFloat `json:"v"`
	}{plain(p), jsonFloat(p.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes (and plain numbers).
func (p *Point) UnmarshalJSON(b []byte) error {
	type plain Point
	var aux struct {
		plain
		Value jsonFloat `json:"v"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*p = Point(aux.plain)
	p.Value = float64(aux.Value)
	return nil
}
