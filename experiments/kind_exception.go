package experiments

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// The exception kind: Chaos Monkey for Spring Boot throws in 1 of level
// requests of each instance of the target service (the agent's
// agent/springboot driver).
var exceptionKind = kind{
	name:         agentapi.KindException,
	field:        "exception",
	needsService: true,
	set:          func(f *Fault) bool { return f.Exception != nil },
	defaults: func(f *Fault, written func(string) bool) {
		if x := f.Exception; x.Level == 0 && !written("level") {
			x.Level = DefaultLevel
		}
	},
	validate: func(v *validator, path string, f *Fault, _ *Spec) { v.exception(path, f.Exception) },
	toAgent: func(f *Fault, p Placement, out *agentapi.Fault) error {
		e := f.Exception
		sb := &agentapi.SpringBoot{URL: p.URL, Level: e.Level, Deterministic: e.Deterministic, Watchers: e.Watchers}
		if e.Exception != nil {
			se := &agentapi.SpringException{Type: e.Exception.Type, Method: e.Exception.Method}
			for _, a := range e.Exception.Arguments {
				se.Arguments = append(se.Arguments, agentapi.SpringExceptionArg{Type: a.Type, Value: a.Value})
			}
			sb.Exception = se
		}
		out.SpringBoot = sb
		return nil
	},
}

// MaxLevel is the largest exception and appLatency level (Chaos Monkey
// for Spring Boot attacks 1 in level requests).
const MaxLevel = agentapi.MaxSpringLevel

// javaClassName is a (possibly qualified) Java class name; javaIdentifier
// one identifier.
var (
	javaClassName  = regexp.MustCompile(`^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$`)
	javaIdentifier = regexp.MustCompile(`^[A-Za-z_$][\w$]*$`)
)

// ExceptionParams make Chaos Monkey for Spring Boot throw in 1 of Level
// requests of the target service.
type ExceptionParams struct {
	// Level: 1 in Level requests is attacked (1-10000, default 1).
	Level         int  `yaml:"level,omitempty" json:"level"`
	Deterministic bool `yaml:"deterministic,omitempty" json:"deterministic,omitempty"`
	// Exception thrown; default Chaos Monkey's (java.lang.RuntimeException).
	Exception *SpringException `yaml:"exception,omitempty" json:"exception,omitempty"`
	// Watchers are the Spring component types attacked (controller,
	// restController, service, repository, component); default
	// restController and service.
	Watchers []string `yaml:"watchers,omitempty" json:"watchers,omitempty"`
}

// SpringException is an exception for Chaos Monkey to throw.
type SpringException struct {
	Type      string               `yaml:"type" json:"type"`
	Method    string               `yaml:"method,omitempty" json:"method,omitempty"`
	Arguments []SpringExceptionArg `yaml:"arguments,omitempty" json:"arguments,omitempty"`
}

// SpringExceptionArg is one constructor argument.
type SpringExceptionArg struct {
	Type  string `yaml:"type" json:"type"`
	Value string `yaml:"value" json:"value"`
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

func (v *validator) level(path string, level int) {
	if level < 1 || level > MaxLevel {
		v.addf(path, "must be between 1 and %d (1 in level requests is attacked), not %d", MaxLevel, level)
	}
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
