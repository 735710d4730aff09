package experiments

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// SuiteKind is the kind of a suite file.
const SuiteKind = "Suite"

// MaxSuiteEntries bounds spec.experiments of a suite.
const MaxSuiteEntries = 50

// Suite is a game day: experiments of the library run one after the
// other as one unit (one record, one verdict), in the file format of
// experiments (apiVersion chaosd.io/v1alpha1, kind Suite).
//
// Between two experiments the suite pauses at least the next
// experiment's steady-state baseline: that experiment judges its steady
// state over the baseline window before its inject, and a window that
// reached back into the previous experiment's fault would judge that
// fault instead of the system's steady state. spec.pause left out is
// therefore automatic: each gap is the next experiment's baseline plus
// one of its probe intervals. An explicit pause shorter than some next
// experiment's baseline is refused at load (with the library known) —
// never silently raised, so the suite runs as written or not at all.
type Suite struct {
	APIVersion string    `yaml:"apiVersion" json:"apiVersion"`
	Kind       string    `yaml:"kind" json:"kind"`
	Metadata   Metadata  `yaml:"metadata" json:"metadata"`
	Spec       SuiteSpec `yaml:"spec" json:"spec"`

	// Source is where the suite was read from (file path), set by the loader.
	Source string `yaml:"-" json:"source,omitempty"`

	// ix keeps the file's positions for CheckLibrary's messages.
	ix *docIndex
}

// SuiteSpec is what a suite runs.
type SuiteSpec struct {
	// Experiments run in this order, each after the previous ended and
	// the pause passed. One experiment may appear more than once.
	Experiments []SuiteEntry `yaml:"experiments" json:"experiments"`
	// StopOnFailure (default true) ends the suite at the first
	// experiment whose verdict is not pass; the rest are recorded as
	// skipped. false runs every experiment whatever the verdicts (an
	// aborted suite, a halt or a freeze still stop it).
	StopOnFailure *bool `yaml:"stopOnFailure,omitempty" json:"stopOnFailure"`
	// Pause is the wait between the end of one experiment and the start
	// of the next; at least the next one's steady-state baseline. Left
	// out: each next experiment's baseline plus one probe interval.
	Pause *Duration `yaml:"pause,omitempty" json:"pause,omitempty"`
	// Schedule, when set, runs the suite on a cron schedule, like an
	// experiment's (time zone, freeze windows, missed runs).
	Schedule *Schedule `yaml:"schedule,omitempty" json:"schedule,omitempty"`
}

// SuiteEntry is one experiment of a suite.
type SuiteEntry struct {
	// Experiment names an experiment of chaosd's library.
	Experiment string `yaml:"experiment" json:"experiment"`
}

// StopsOnFailure reports spec.stopOnFailure (true when left out).
func (s *Suite) StopsOnFailure() bool {
	return s.Spec.StopOnFailure == nil || *s.Spec.StopOnFailure
}

// Gap is how long the suite waits before starting next, the experiment
// that follows another one: spec.pause, or when left out next's
// steady-state baseline plus one probe interval.
func (s *Suite) Gap(next *Experiment) time.Duration {
	if s.Spec.Pause != nil {
		return s.Spec.Pause.D()
	}
	if next == nil {
		return DefaultBaseline * time.Second
	}
	return next.Spec.SteadyState.Baseline.D() + next.Spec.ProbeInterval.D()
}

// Names returns the suite's experiment names in order.
func (s *Suite) Names() []string {
	out := make([]string, len(s.Spec.Experiments))
	for i, e := range s.Spec.Experiments {
		out[i] = e.Experiment
	}
	return out
}

// ParseSuite decodes, defaults and validates one suite from YAML (see
// [Parse] for the rules of a file). Experiment names are checked against
// a library only by [Suite.CheckLibrary] (and by the library loaders).
func ParseSuite(data []byte, filename string) (*Suite, error) {
	e, s, _, err := parseAny(data, filename)
	if err == nil && s == nil {
		return nil, ErrorList{{File: filename, Line: 1, Col: 1, Path: "kind",
			Msg: fmt.Sprintf("must be %s, not %q (an experiment)", SuiteKind, e.Kind)}}
	}
	return s, err
}

// LoadSuiteFile reads and parses one suite file (see [ParseSuite]).
func LoadSuiteFile(name string) (*Suite, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("load suite: %w", err)
	}
	return ParseSuite(data, name)
}

// Validate checks a suite built in Go (defaults set by
// [Suite.SetDefaults]) against every rule the loader applies, except the
// library's ([Suite.CheckLibrary]).
func (s *Suite) Validate() error {
	issues := validateSuite(s, func(string) bool { return true })
	list := make(ErrorList, 0, len(issues))
	for _, is := range issues {
		list = append(list, FieldError{File: s.Source, Path: is.path, Msg: is.msg})
	}
	list.Sort()
	return list.Err()
}

// SetDefaults fills what the loader fills for fields left out.
func (s *Suite) SetDefaults() { suiteDefaults(s, func(string) bool { return false }) }

// CheckLibrary checks the suite against the experiments it would run:
// every name must be an experiment of lookup, and an explicit pause must
// be at least the steady-state baseline of every experiment that
// follows another. Problems carry the suite file's positions.
func (s *Suite) CheckLibrary(lookup func(name string) (*Experiment, bool), known []string) error {
	var issues []issue
	for i, en := range s.Spec.Experiments {
		path := fmt.Sprintf("spec.experiments[%d].experiment", i)
		e, ok := lookup(en.Experiment)
		if !ok {
			issues = append(issues, issue{path: path, msg: fmt.Sprintf("unknown experiment %q%s", en.Experiment, knownList(known))})
			continue
		}
		if i > 0 && s.Spec.Pause != nil {
			if base := e.Spec.SteadyState.Baseline; s.Spec.Pause.D() < base.D() {
				issues = append(issues, issue{path: "spec.pause", msg: fmt.Sprintf(
					"%s is shorter than the steady-state baseline (%s) of %s (experiments[%d]): its steady state would be judged "+
						"over the previous experiment's fault; make the pause at least %s, or leave it out (each gap is then the next experiment's baseline plus a probe interval)",
					s.Spec.Pause, base, en.Experiment, i, base)})
			}
		}
	}
	list := make(ErrorList, 0, len(issues))
	for _, is := range issues {
		fe := FieldError{File: s.Source, Path: is.path, Msg: is.msg}
		if s.ix != nil {
			fe.Line, fe.Col = s.ix.pos(is.path)
		}
		list = append(list, fe)
	}
	list.Sort()
	return list.Err()
}

func knownList(known []string) string {
	if len(known) == 0 {
		return ""
	}
	const shown = 10
	k := slices.Clone(known)
	slices.Sort(k)
	more := ""
	if len(k) > shown {
		more = fmt.Sprintf(", and %d more", len(k)-shown)
		k = k[:shown]
	}
	return " (the library has " + strings.Join(k, ", ") + more + ")"
}

func suiteDefaults(s *Suite, written func(path string) bool) {
	if s.Spec.StopOnFailure == nil {
		t := true
		s.Spec.StopOnFailure = &t
	}
	if sc := s.Spec.Schedule; sc != nil {
		scheduleDefaults(sc, written)
	}
}

func validateSuite(s *Suite, written func(string) bool) []issue {
	v := &validator{written: written, present: func(string) bool { return false }}
	switch s.APIVersion {
	case APIVersion:
	case "":
		v.addf("apiVersion", "required; want %s", APIVersion)
	default:
		v.addf("apiVersion", "%q is not supported; want %s", s.APIVersion, APIVersion)
	}
	if s.Kind != SuiteKind {
		v.addf("kind", "must be %s, not %q", SuiteKind, s.Kind)
	}
	v.dnsName("metadata.name", s.Metadata.Name)
	switch n := len(s.Spec.Experiments); {
	case n == 0:
		v.addf("spec.experiments", "at least one experiment is required, e.g. - experiment: latency-c1-c2")
	case n > MaxSuiteEntries:
		v.addf("spec.experiments", "%d experiments is too many for one suite (at most %d)", n, MaxSuiteEntries)
	}
	for i, en := range s.Spec.Experiments {
		path := fmt.Sprintf("spec.experiments[%d].experiment", i)
		if !v.written(path) && en.Experiment == "" {
			v.addf(path, "required: the name of an experiment of chaosd's library")
			continue
		}
		v.dnsName(path, en.Experiment)
	}
	if p := s.Spec.Pause; p != nil && *p < 0 {
		v.addf("spec.pause", "must be >= 0, not %s", *p)
	}
	if s.Spec.Schedule != nil {
		v.schedule(s.Spec.Schedule)
	}
	return v.issues
}

// docKind returns the kind written in a document ("" when none).
func docKind(ix *docIndex) string {
	if n, ok := ix.nodes["kind"]; ok {
		if k, ok := scalarText(n); ok {
			return k
		}
	}
	return ""
}

// parseAny parses one file holding an experiment or a suite (by its
// kind; anything but Suite is read as an experiment).
func parseAny(data []byte, filename string) (e *Experiment, s *Suite, ix *docIndex, err error) {
	defer func() {
		// The YAML library must not take the caller down on hostile
		// input; report a panic in it as an error of this file.
		if r := recover(); r != nil {
			e, s, ix = nil, nil, nil
			err = ErrorList{{File: filename, Line: 1, Col: 1, Msg: fmt.Sprintf("internal error decoding YAML: %v", r)}}
		}
	}()
	root, err := parseRoot(data, filename, "experiment or suite")
	if err != nil {
		return nil, nil, nil, err
	}
	ix = newDocIndex(root)
	if docKind(ix) == SuiteKind {
		s, err := parseSuiteRoot(ix, root, filename)
		return nil, s, ix, err
	}
	e, err = parseExperimentRoot(ix, root, filename)
	return e, nil, ix, err
}

func parseSuiteRoot(ix *docIndex, root ast.Node, filename string) (*Suite, error) {
	s, issues, ok := decodeDoc[Suite](ix, root)
	if ok {
		s.Source, s.ix = filename, ix
		suiteDefaults(s, ix.written)
		for _, is := range validateSuite(s, ix.written) {
			if !ix.underFailed(is.path) {
				issues = append(issues, is)
			}
		}
	}
	if len(issues) > 0 {
		return nil, issueList(filename, issues, ix)
	}
	return s, nil
}
