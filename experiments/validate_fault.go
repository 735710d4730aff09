package experiments

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// Limits on fault parameters.
const (
	// MaxDelay bounds a latency fault's delay and an app-latency fault's
	// latencyRange.end: a longer delay is an outage, better written as a
	// partition.
	MaxDelay = time.Minute
	// MaxLevel is the largest exception and appLatency level (Chaos Monkey
	// for Spring Boot attacks 1 in level requests).
	MaxLevel = 10000
	// maxInterfaceName is the longest Linux interface name (IFNAMSIZ - 1).
	maxInterfaceName = 15
)

// knownFaultKinds lists every fault kind, for messages.
const knownFaultKinds = "partition, latency, memory, exception, app-latency"

// javaClassName is a (possibly qualified) Java class name; javaIdentifier
// one identifier.
var (
	javaClassName  = regexp.MustCompile(`^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$`)
	javaIdentifier = regexp.MustCompile(`^[A-Za-z_$][\w$]*$`)
)

// faultBlock is the parameter block of one fault kind.
type faultBlock struct {
	kind  agentapi.Kind
	field string // YAML key of the block
	set   bool
}

// blocks lists the parameter block of every fault kind and whether f has it.
func (f *Fault) blocks() []faultBlock {
	return []faultBlock{
		{agentapi.KindPartition, "partition", f.Partition != nil},
		{agentapi.KindLatency, "latency", f.Latency != nil},
		{agentapi.KindMemory, "memory", f.Memory != nil},
		{agentapi.KindException, "exception", f.Exception != nil},
		{agentapi.KindAppLatency, "appLatency", f.AppLatency != nil},
	}
}

func (v *validator) fault(path string, f *Fault, seen map[string]int, i int, targets map[string]int, s *Spec) {
	if j, dup := seen[f.Name]; dup && f.Name != "" {
		v.addf(path+".name", "duplicate fault name %q (also spec.faults[%d])", f.Name, j)
	} else {
		v.dnsName(path+".name", f.Name)
		if f.Name != "" {
			seen[f.Name] = i
		}
	}
	ti, targetOK := targets[f.Target]
	if !targetOK {
		if f.Target == "" {
			v.addf(path+".target", "required: the name of a target in spec.targets")
		} else {
			v.addf(path+".target", "target %q is not defined in spec.targets", f.Target)
		}
	}

	known := false
	for _, b := range f.blocks() {
		switch {
		case b.kind == f.Kind:
			known = true
			if !b.set {
				v.addf(path+"."+b.field, "required for kind %s", b.kind)
			}
		case b.set && f.Kind != "":
			v.addf(path+"."+b.field, "only allowed when kind is %s", b.kind)
		}
	}
	switch {
	case f.Kind == "":
		v.addf(path+".kind", "required (known kinds: %s)", knownFaultKinds)
	case !known:
		v.addf(path+".kind", "unknown fault kind %q (known kinds: %s)", f.Kind, knownFaultKinds)
	}

	if (f.Kind == agentapi.KindException || f.Kind == agentapi.KindAppLatency) && targetOK && s.Targets[ti].Service == "" {
		v.addf(path+".target", "kind %s needs a target with service (the Spring Boot service to attack)", f.Kind)
	}
	switch {
	case f.Kind == agentapi.KindPartition && f.Partition != nil:
		v.partition(path+".partition", f.Partition)
	case f.Kind == agentapi.KindLatency && f.Latency != nil:
		v.latency(path+".latency", f.Latency)
	case f.Kind == agentapi.KindMemory && f.Memory != nil:
		v.memory(path+".memory", f.Memory, s.Duration)
	case f.Kind == agentapi.KindException && f.Exception != nil:
		v.exception(path+".exception", f.Exception)
	case f.Kind == agentapi.KindAppLatency && f.AppLatency != nil:
		v.appLatency(path+".appLatency", f.AppLatency)
	}
}

func (v *validator) partition(path string, p *PartitionParams) {
	v.netTarget(path, p.CIDRs, p.Ports, agentapi.PartitionLimits)
	switch p.Direction {
	case DirectionBoth, DirectionEgress, DirectionIngress:
	default:
		v.addf(path+".direction", "must be egress, ingress or both, not %q", p.Direction)
	}
}

// netTarget checks the CIDRs and ports of a network fault with the rules
// the agent applies (agentapi), plus what only a hand-written spec gets
// wrong: host bits (with the masked prefix as a hint) and duplicates.
func (v *validator) netTarget(path string, list []netip.Prefix, ports []uint16, lim agentapi.NetLimits) {
	cp := path + ".cidrs"
	switch {
	case len(list) == 0:
		v.addf(cp, "at least one CIDR is required")
	case len(list) > lim.MaxCIDRs:
		v.addf(cp, "%d CIDRs, at most %d", len(list), lim.MaxCIDRs)
	}
	seen := map[netip.Prefix]int{}
	for i, c := range list {
		ip := fmt.Sprintf("%s[%d]", cp, i)
		canon, err := agentapi.CanonicalPrefix(c)
		if err != nil {
			if !c.IsValid() {
				v.addf(ip, "must be a CIDR such as 10.1.0.0/16")
			} else {
				v.addf(ip, "%v", err)
			}
			continue
		}
		switch j, dup := seen[canon]; {
		case c != c.Masked():
			v.addf(ip, "%q has host bits set; did you mean %s?", c.String(), c.Masked())
		case dup:
			v.addf(ip, "duplicate CIDR %s (also cidrs[%d])", c, j)
		default:
			seen[canon] = i
		}
	}
	if len(ports) > lim.MaxPorts {
		v.addf(path+".ports", "%d ports, at most %d", len(ports), lim.MaxPorts)
	}
	for i, port := range ports {
		if err := agentapi.CheckPort(port); err != nil {
			v.addf(fmt.Sprintf("%s.ports[%d]", path, i), "%v", err)
		}
	}
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

func (v *validator) memory(path string, m *MemoryParams, duration Duration) {
	sizeSet := m.Size != 0 || v.present(path+".size")
	fracSet := m.Fraction != 0 || v.present(path+".fraction")
	switch {
	case sizeSet && fracSet:
		v.addf(path, "set size or fraction, not both")
	case !sizeSet && !fracSet:
		v.addf(path, "one of size or fraction is required (e.g. size: 256Mi or fraction: 0.5)")
	case sizeSet && m.Size == 0:
		v.addf(path+".size", "must be > 0")
	case fracSet && !(m.Fraction > 0 && m.Fraction <= 1):
		v.addf(path+".fraction", "must be in (0, 1] (a fraction of the memory limit), not %g", m.Fraction)
	}
	switch {
	case m.Ramp < 0:
		v.addf(path+".ramp", "must be >= 0, not %s", m.Ramp)
	case duration > 0 && m.Ramp >= duration:
		v.addf(path+".ramp", "must be less than spec.duration (%s), not %s: the ramp must end before the fault does", duration, m.Ramp)
	}
}

func (v *validator) level(path string, level int) {
	if level < 1 || level > MaxLevel {
		v.addf(path, "must be between 1 and %d (1 in level requests is attacked), not %d", MaxLevel, level)
	}
}

func (v *validator) exception(path string, x *ExceptionParams) {
	v.level(path+".level", x.Level)
	if e := x.Exception; e != nil {
		ep := path + ".exception"
		v.javaClass(ep+".type", e.Type, "the Java class of the exception to throw, e.g. java.io.IOException")
		if e.Method != "" && !javaIdentifier.MatchString(e.Method) {
			v.addf(ep+".method", "%q is not a Java method name", e.Method)
		}
		for i, a := range e.Arguments {
			ap := fmt.Sprintf("%s.arguments[%d]", ep, i)
			v.javaClass(ap+".type", a.Type, "the Java class of the argument, e.g. java.lang.String")
			if a.Value == "" && !v.present(ap+".value") {
				v.addf(ap+".value", "required")
			}
		}
	}
	v.watchers(path+".watchers", x.Watchers)
}

func (v *validator) javaClass(path, name, what string) {
	switch {
	case name == "":
		v.addf(path, "required: %s", what)
	case !javaClassName.MatchString(name):
		v.addf(path, "%q is not a Java class name (want e.g. java.lang.IllegalStateException)", name)
	}
}

func (v *validator) watchers(path string, list []string) {
	seen := map[string]int{}
	for i, w := range list {
		wp := fmt.Sprintf("%s[%d]", path, i)
		j, dup := seen[w]
		switch {
		case !slices.Contains(agentapi.SpringWatchers, w):
			hint := ""
			for _, k := range agentapi.SpringWatchers {
				if strings.EqualFold(k, w) {
					hint = fmt.Sprintf("; did you mean %s?", k)
				}
			}
			v.addf(wp, "unknown watcher %q (want %s)%s", w, strings.Join(agentapi.SpringWatchers, ", "), hint)
		case dup:
			v.addf(wp, "duplicate watcher %q (also watchers[%d])", w, j)
		default:
			seen[w] = i
		}
	}
}

func (v *validator) appLatency(path string, a *AppLatencyParams) {
	v.level(path+".level", a.Level)
	v.watchers(path+".watchers", a.Watchers)
	rp := path + ".latencyRange"
	r := a.Range
	if r.Start == 0 && r.End == 0 && !v.present(rp) {
		v.addf(rp, "required: the range of the delay, e.g. {start: 100ms, end: 1s}")
		return
	}
	for _, b := range []struct {
		name string
		d    Duration
	}{{"start", r.Start}, {"end", r.End}} {
		switch {
		case b.d == 0 && !v.present(rp+"."+b.name):
			v.addf(rp+"."+b.name, "required")
		case b.d <= 0:
			v.addf(rp+"."+b.name, "must be > 0")
		}
	}
	if r.End.D() > MaxDelay {
		v.addf(rp+".end", "must be at most %s, not %s", Duration(MaxDelay), r.End)
	}
	if r.Start > 0 && r.End > 0 && r.Start > r.End {
		v.addf(rp+".start", "must be at most end (%s), not %s", r.End, r.Start)
	}
}
