package experiments

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// ParseBlastRadius parses a blast-radius mode: "all", "one", "fixed:N"
// (N >= 1) or "percent:P" (0 < P <= 100).
func ParseBlastRadius(s string) (BlastRadius, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch BlastRadiusKind(kind) {
	case BlastAll, BlastOne:
		if hasArg {
			return BlastRadius{}, fmt.Errorf("%q takes no argument (want all, one, fixed:N or percent:P)", s)
		}
		return BlastRadius{Kind: BlastRadiusKind(kind)}, nil
	case BlastFixed:
		n, err := strconv.Atoi(arg)
		if !hasArg || err != nil || n < 1 {
			return BlastRadius{}, fmt.Errorf("%q: fixed:N needs a whole number N >= 1, e.g. fixed:2", s)
		}
		return BlastRadius{Kind: BlastFixed, N: n}, nil
	case BlastPercent:
		p, err := strconv.ParseFloat(arg, 64)
		if !hasArg || err != nil || math.IsNaN(p) || p <= 0 || p > 100 {
			return BlastRadius{}, fmt.Errorf("%q: percent:P needs a number 0 < P <= 100, e.g. percent:50", s)
		}
		return BlastRadius{Kind: BlastPercent, Percent: p}, nil
	}
	return BlastRadius{}, fmt.Errorf("unknown mode %q (want all, one, fixed:N or percent:P)", s)
}

// String returns the mode as written in a spec ("all", "fixed:3",
// "percent:25"); the zero value prints as "".
func (b BlastRadius) String() string {
	switch b.Kind {
	case BlastFixed:
		return "fixed:" + strconv.Itoa(b.N)
	case BlastPercent:
		return "percent:" + strconv.FormatFloat(b.Percent, 'g', -1, 64)
	}
	return string(b.Kind)
}

// Validate reports whether a BlastRadius built in Go is one that
// [ParseBlastRadius] could have returned.
func (b BlastRadius) Validate() error {
	_, err := ParseBlastRadius(b.String())
	return err
}

// MarshalText implements encoding.TextMarshaler (used by encoding/json).
func (b BlastRadius) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (used by encoding/json).
func (b *BlastRadius) UnmarshalText(text []byte) error {
	v, err := ParseBlastRadius(string(text))
	if err != nil {
		return fmt.Errorf("parse blast radius: %w", err)
	}
	*b = v
	return nil
}

// MarshalYAML writes the mode as its string form.
func (b BlastRadius) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalYAML reads a mode string from a YAML scalar. Errors carry the
// node so the loader can report its position.
func (b *BlastRadius) UnmarshalYAML(node ast.Node) error {
	s, ok := scalarText(node)
	if !ok {
		return nodeErrorf(node, nil, "must be a mode string (all, one, fixed:N or percent:P), not %s", nodeKind(node))
	}
	v, err := ParseBlastRadius(s)
	if err != nil {
		return nodeErrorf(node, err, "%s", err.Error())
	}
	*b = v
	return nil
}
