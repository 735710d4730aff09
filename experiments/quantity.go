package experiments

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// rateUnit is one unit a ByteRate can be written in.
type rateUnit struct {
	name string
	bits bool  // bits per second (else bytes per second)
	exp  int64 // the unit is 10^exp bits or bytes per second
}

// rateUnits are the tc units accepted, in the order preferred when two
// forms are equally short (bits first, as tc and most specs write rates).
var rateUnits = []rateUnit{
	{"tbit", true, 12}, {"gbit", true, 9}, {"mbit", true, 6}, {"kbit", true, 3}, {"bit", true, 0},
	{"gbps", false, 9}, {"mbps", false, 6}, {"kbps", false, 3}, {"bps", false, 0},
}

const rateUnitsHelp = "bit, kbit, mbit, gbit, tbit (bits per second) or bps, kbps, mbps, gbps (bytes per second)"

// quantityText splits "1.5mbit" into its number and unit. The number is
// digits with at most one decimal point; the unit is the rest.
var quantityText = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)$`)

var maxUint64 = new(big.Int).SetUint64(^uint64(0))

// ParseByteRate parses a bandwidth written the tc way: a number (whole or
// decimal) and a unit, case-insensitive: bit, kbit, mbit, gbit, tbit (SI
// multiples of bits per second) or bps, kbps, mbps, gbps (SI multiples of
// bytes per second). "0" alone is 0. The rate must be a whole number of
// bytes per second.
func ParseByteRate(s string) (ByteRate, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q: rates cannot be negative", s)
	}
	m := quantityText.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a rate (want a number and a unit, e.g. 10mbit; units: %s)", s, rateUnitsHelp)
	}
	num, unitText := m[1], m[2]
	if unitText == "" {
		if z, ok := new(big.Rat).SetString(num); ok && z.Sign() == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("%q needs a unit, e.g. %smbit (units: %s)", s, num, rateUnitsHelp)
	}
	var unit *rateUnit
	for i := range rateUnits {
		if strings.EqualFold(unitText, rateUnits[i].name) {
			unit = &rateUnits[i]
		}
	}
	if unit == nil {
		return 0, fmt.Errorf("%q has an unknown unit %q (want %s)", s, unitText, rateUnitsHelp)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a rate (want a number and a unit, e.g. 10mbit)", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(unit.exp), nil)))
	if unit.bits {
		r.Quo(r, big.NewRat(8, 1))
	}
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of bytes per second (bits must come in multiples of 8)", s)
	}
	if r.Num().Cmp(maxUint64) > 0 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteRate(r.Num().Uint64()), nil
}

// BytesPerSecond returns the rate in bytes per second.
func (r ByteRate) BytesPerSecond() uint64 { return uint64(r) }

// BitsPerSecond returns the rate in bits per second (saturating).
func (r ByteRate) BitsPerSecond() uint64 {
	if uint64(r) > ^uint64(0)/8 {
		return ^uint64(0)
	}
	return uint64(r) * 8
}

// String writes the rate in its shortest exact tc form ("10mbit",
// "1.5mbit", "64kbps"); of equally short forms it prefers one without a
// decimal point, then bits. 0 is "0bit".
func (r ByteRate) String() string {
	bytes := new(big.Int).SetUint64(uint64(r))
	bits := new(big.Int).Mul(bytes, big.NewInt(8))
	best := ""
	better := func(s string) bool {
		if len(s) != len(best) {
			return len(s) < len(best)
		}
		return !strings.Contains(s, ".") && strings.Contains(best, ".")
	}
	for _, u := range rateUnits {
		n := bytes
		if u.bits {
			n = bits
		}
		s := decimalShift(n.String(), int(u.exp)) + u.name
		if best == "" || better(s) {
			best = s
		}
	}
	return best
}

// decimalShift returns the decimal digits n divided by 10^k, exactly, with
// no trailing zeros after the point.
func decimalShift(n string, k int) string {
	if k == 0 {
		return n
	}
	if len(n) <= k {
		n = strings.Repeat("0", k-len(n)+1) + n
	}
	i := len(n) - k
	whole, frac := n[:i], strings.TrimRight(n[i:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// MarshalText implements encoding.TextMarshaler (used by encoding/json).
func (r ByteRate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (used by encoding/json).
func (r *ByteRate) UnmarshalText(b []byte) error {
	v, err := ParseByteRate(string(b))
	if err != nil {
		return fmt.Errorf("parse rate: %w", err)
	}
	*r = v
	return nil
}

// MarshalYAML writes the rate as its string form.
func (r ByteRate) MarshalYAML() (any, error) { return r.String(), nil }

// UnmarshalYAML reads a rate from a YAML scalar. Errors carry the node so
// the loader can report its position.
func (r *ByteRate) UnmarshalYAML(node ast.Node) error {
	s, ok := scalarText(node)
	if !ok {
		return nodeErrorf(node, nil, "must be a rate such as 10mbit, not %s", nodeKind(node))
	}
	v, err := ParseByteRate(s)
	if err != nil {
		return nodeErrorf(node, err, "%s", err.Error())
	}
	*r = v
	return nil
}

// sizeSuffix is one suffix a ByteSize can be written with.
type sizeSuffix struct {
	name string
	mult uint64
}

// sizeSuffixes are the accepted suffixes, binary then decimal, largest
// first (the order String tries them in).
var sizeSuffixes = []sizeSuffix{
	{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10},
	{"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"k", 1e3}, {"K", 1e3},
}

const sizeSuffixHelp = "Ki, Mi, Gi, Ti (powers of 1024), k, M, G, T (powers of 1000), or none for bytes"

// ParseByteSize parses a size the way Kubernetes writes memory quantities:
// a whole number with an optional suffix, binary (Ki, Mi, Gi, Ti) or
// decimal (k or K, M, G, T). A number without a suffix is bytes.
func ParseByteSize(s string) (ByteSize, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q: sizes cannot be negative", s)
	}
	m := quantityText.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (want a whole number and a suffix, e.g. 256Mi or 1G)", s)
	}
	num, suffix := m[1], m[2]
	mult := uint64(0)
	if suffix == "" {
		mult = 1
	}
	for _, x := range sizeSuffixes {
		if suffix == x.name {
			mult = x.mult
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("%q has an unknown suffix %q (want %s)", s, suffix, sizeSuffixHelp)
	}
	if strings.Contains(num, ".") {
		msg := fmt.Sprintf("%q is not a whole number; write the size with a smaller suffix", s)
		if r, ok := new(big.Rat).SetString(num); ok {
			r.Mul(r, new(big.Rat).SetUint64(mult))
			if r.IsInt() && r.Num().Cmp(maxUint64) <= 0 {
				msg = fmt.Sprintf("%q is not a whole number; write %s", s, ByteSize(r.Num().Uint64()))
			}
		}
		return 0, fmt.Errorf("%s", msg)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || (n != 0 && n > ^uint64(0)/mult) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// Bytes returns the size in bytes.
func (b ByteSize) Bytes() uint64 { return uint64(b) }

// String writes the size in its shortest exact form, preferring a binary
// suffix when it is as short as a decimal one: "256Mi", "1Gi", "512M"
// (not "500000Ki"), "1k", "1001".
func (b ByteSize) String() string {
	best := strconv.FormatUint(uint64(b), 10)
	if b == 0 {
		return best
	}
	// Binary suffixes come first, so a decimal form must be shorter to win.
	for _, x := range sizeSuffixes {
		if uint64(b)%x.mult == 0 {
			if s := strconv.FormatUint(uint64(b)/x.mult, 10) + x.name; len(s) < len(best) {
				best = s
			}
		}
	}
	return best
}

// MarshalText implements encoding.TextMarshaler (used by encoding/json).
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (used by encoding/json).
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return fmt.Errorf("parse size: %w", err)
	}
	*b = v
	return nil
}

// MarshalYAML writes the size as its string form.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalYAML reads a size from a YAML scalar. Errors carry the node so
// the loader can report its position.
func (b *ByteSize) UnmarshalYAML(node ast.Node) error {
	s, ok := scalarText(node)
	if !ok {
		return nodeErrorf(node, nil, "must be a size such as 256Mi or 1G, not %s", nodeKind(node))
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return nodeErrorf(node, err, "%s", err.Error())
	}
	*b = v
	return nil
}

// ByteRate is a bandwidth written the tc way ("10mbit", "512kbit",
// "1gbit", "100kbps" (bytes)), held in bytes per second.
type ByteRate uint64

// ByteSize is a size written with binary or decimal suffixes ("256Mi",
// "1Gi", "512M", "1000000"), held in bytes.
type ByteSize uint64
