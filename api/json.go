package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// jsonFloat is a float64 that survives JSON: encoding/json refuses NaN and
// ±Inf, and a probe value is NaN whenever there was none. Finite values are
// plain numbers; NaN, +Inf and -Inf are the strings "NaN", "+Inf", "-Inf"
// (as in Prometheus's own API). null reads back as NaN.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte(strconv.Quote(nonFinite(v))), nil
	}
	return json.Marshal(v) // same form encoding/json gives any float64
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*f = jsonFloat(math.NaN())
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("probe value %s: %w", b, err)
	}
	*f = jsonFloat(v)
	return nil
}

// MarshalJSON encodes r with a non-finite Value as "NaN", "+Inf" or "-Inf".
func (r ProbeResult) MarshalJSON() ([]byte, error) {
	type plain ProbeResult
	return json.Marshal(struct {
		plain
		Value jsonFloat `json:"value"`
	}{plain(r), jsonFloat(r.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes (and plain numbers).
func (r *ProbeResult) UnmarshalJSON(b []byte) error {
	type plain ProbeResult
	var aux struct {
		plain
		Value jsonFloat `json:"value"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*r = ProbeResult(aux.plain)
	r.Value = float64(aux.Value)
	return nil
}

// MarshalJSON encodes s with a non-finite Value as "NaN", "+Inf" or "-Inf".
func (s SeriesValue) MarshalJSON() ([]byte, error) {
	type plain SeriesValue
	return json.Marshal(struct {
		plain
		Value jsonFloat `json:"value"`
	}{plain(s), jsonFloat(s.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes (and plain numbers).
func (s *SeriesValue) UnmarshalJSON(b []byte) error {
	type plain SeriesValue
	var aux struct {
		plain
		Value jsonFloat `json:"value"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*s = SeriesValue(aux.plain)
	s.Value = float64(aux.Value)
	return nil
}

// nonFinite spells NaN and the infinities as Prometheus does.
func nonFinite(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return "NaN"
}
