package experiments

import (
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/prometheus/common/model"
)

// Duration is a time.Duration written as a Prometheus-style duration
// string ("500ms", "30s", "15m", "1h30m", "1d") in specs and JSON. It is
// parsed with [model.ParseDuration]; negative values cannot be written.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration parses a Prometheus-style duration string.
func ParseDuration(s string) (Duration, error) {
	md, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("parse duration %q: %w", s, err)
	}
	return Duration(md), nil
}

// String formats the duration the way Prometheus does ("1h30m", "0s").
func (d Duration) String() string { return model.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler (used by encoding/json).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (used by encoding/json).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as its string form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string from a YAML scalar. Errors carry
// the node so the loader can report its position.
func (d *Duration) UnmarshalYAML(node ast.Node) error {
	s, ok := scalarText(node)
	if !ok {
		return nodeErrorf(node, nil, "must be a duration such as 30s or 15m, not %s", nodeKind(node))
	}
	v, err := model.ParseDuration(s)
	if err != nil && strings.HasPrefix(s, "-") {
		return nodeErrorf(node, err, "%q: durations cannot be negative", s)
	}
	if err != nil {
		return nodeErrorf(node, err, "%q is not a duration (want a number and a unit ms, s, m, h, d, w or y, e.g. 30s or 1h30m)", s)
	}
	*d = Duration(v)
	return nil
}
