package api

import (
	"slices"
	"time"
)

// ProbeResult is one evaluation of a probe as the run record keeps it.
// Value is NaN when there was none; JSON spells NaN and ±Inf as the
// strings "NaN", "+Inf" and "-Inf".
type ProbeResult struct {
	Probe string    `json:"probe"`
	Time  time.Time `json:"time"`
	// OK reports whether the probe's condition held.
	OK bool `json:"ok"`
	// Value is the value compared (for all/any the worst/best series).
	Value  float64       `json:"value"`
	Series []SeriesValue `json:"series,omitempty"`
	// Error says why the probe could not be judged (query error, empty,
	// NaN, ambiguous); empty when the value was compared.
	Error string `json:"error,omitempty"`
}

// SeriesValue is one series of a result.
type SeriesValue struct {
	Labels string  `json:"labels"` // Prometheus text form, e.g. {job="x"}
	Value  float64 `json:"value"`
	OK     bool    `json:"ok"`
}

// DeepCopy returns a copy of r that shares no memory with it.
func (r ProbeResult) DeepCopy() ProbeResult {
	r.Series = slices.Clone(r.Series)
	return r
}
