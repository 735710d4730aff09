package experiments

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// The latency kind: delay (and optionally drop) traffic toward CIDRs with
// tc netem (the agent's agent/latency driver).
var latencyKind = kind{
	name:     agentapi.KindLatency,
	field:    "latency",
	set:      func(f *Fault) bool { return f.Latency != nil },
	validate: func(v *validator, path string, f *Fault, _ *Spec) { v.latency(path, f.Latency) },
	toAgent: func(f *Fault, _ Placement, out *agentapi.Fault) error {
		l := f.Latency
		out.Latency = &agentapi.Latency{Interface: l.Interface, Ports: l.Ports, CIDRs: prefixStrings(l.CIDRs),
			DelayMs: ms(l.Delay), JitterMs: ms(l.Jitter), CorrelationPercent: l.Correlation,
			LossPercent: l.Loss, RateBytesPerSecond: uint64(l.Rate)}
		return nil
	},
}

// MaxDelay bounds a latency fault's delay and an app-latency fault's
// latencyRange.end: a longer delay is an outage, better written as a
// partition.
const MaxDelay = time.Minute

// maxInterfaceName is the longest Linux interface name (IFNAMSIZ - 1).
const maxInterfaceName = 15

// LatencyParams delay (and optionally drop) traffic toward CIDRs with tc
// netem, leaving all other traffic alone.
type LatencyParams struct {
	CIDRs []netip.Prefix `yaml:"cidrs" json:"cidrs"`
	// Ports restricts the delay to these remote ports (TCP and UDP).
	Ports []uint16 `yaml:"ports,omitempty" json:"ports,omitempty"`
	// Delay added to every matched packet (> 0).
	Delay Duration `yaml:"delay" json:"delay"`
	// Jitter varies the delay by up to this much (<= delay).
	Jitter Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// Correlation of successive delays and losses, in percent (0-100).
	Correlation float64 `yaml:"correlation,omitempty" json:"correlation,omitempty"`
	// Loss drops this percentage of matched packets (0-100).
	Loss float64 `yaml:"loss,omitempty" json:"loss,omitempty"`
	// Rate caps matched traffic, e.g. "10mbit", "512kbit", "1gbit".
	Rate ByteRate `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Interface to shape; empty: the interfaces the CIDRs are routed through.
	Interface string `yaml:"interface,omitempty" json:"interface,omitempty"`
}

// latencyYAML mirrors LatencyParams field for field (a test keeps them in
// step) with CIDRs as prefixValue, so a CIDR that does not parse is
// reported at its own position and the other CIDRs are still checked.
type latencyYAML struct {
	CIDRs       []prefixValue `yaml:"cidrs"`
	Ports       []uint16      `yaml:"ports,omitempty"`
	Delay       Duration      `yaml:"delay"`
	Jitter      Duration      `yaml:"jitter,omitempty"`
	Correlation float64       `yaml:"correlation,omitempty"`
	Loss        float64       `yaml:"loss,omitempty"`
	Rate        ByteRate      `yaml:"rate,omitempty"`
	Interface   string        `yaml:"interface,omitempty"`
}

// UnmarshalYAML decodes the latency block strictly (unknown fields are
// errors) and keeps the position of every bad CIDR.
func (p *LatencyParams) UnmarshalYAML(node ast.Node) error {
	var raw latencyYAML
	if err := yaml.NodeToValue(node, &raw, yaml.DisallowUnknownField()); err != nil {
		return err
	}
	*p = LatencyParams{
		CIDRs:       prefixes(raw.CIDRs),
		Ports:       raw.Ports,
		Delay:       raw.Delay,
		Jitter:      raw.Jitter,
		Correlation: raw.Correlation,
		Loss:        raw.Loss,
		Rate:        raw.Rate,
		Interface:   raw.Interface,
	}
	return nil
}

func (v *validator) latency(path string, l *LatencyParams) {
	v.netTarget(path, l.CIDRs, l.Ports, agentapi.LatencyLimits)
	switch {
	case l.Delay == 0 && !v.present(path+".delay"):
		v.addf(path+".delay", "required: the delay to add to each packet, e.g. 100ms")
	case l.Delay <= 0:
		v.addf(path+".delay", "must be > 0")
	case l.Delay.D() > MaxDelay:
		v.addf(path+".delay", "must be at most %s, not %s (for an outage, use kind partition)", Duration(MaxDelay), l.Delay)
	}
	switch {
	case l.Jitter < 0:
		v.addf(path+".jitter", "must be >= 0, not %s", l.Jitter)
	case l.Delay > 0 && l.Jitter > l.Delay:
		v.addf(path+".jitter", "must be at most delay (%s), not %s", l.Delay, l.Jitter)
	}
	v.percent(path+".correlation", l.Correlation)
	v.percent(path+".loss", l.Loss)
	if l.Interface != "" {
		if err := checkInterfaceName(l.Interface); err != nil {
			v.addf(path+".interface", "%s", err)
		}
	}
}

func (v *validator) percent(path string, x float64) {
	if !(x >= 0 && x <= 100) { // also NaN
		v.addf(path, "must be a percentage between 0 and 100, not %g", x)
	}
}

// checkInterfaceName applies the kernel's rules for an interface name
// (dev_valid_name): 1-15 bytes, not . or .., no '/', ':' or whitespace.
func checkInterfaceName(s string) error {
	switch {
	case len(s) > maxInterfaceName:
		return fmt.Errorf("%q is not an interface name: at most %d characters", s, maxInterfaceName)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not an interface name", s)
	case strings.ContainsAny(s, "/:") || strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return fmt.Errorf("%q is not an interface name: no '/', ':' or whitespace", s)
	}
	return nil
}

func ms(d Duration) float64 { return float64(d.D()) / float64(time.Millisecond) }
