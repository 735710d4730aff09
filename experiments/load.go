package experiments

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	// Time zones are checked with time.LoadLocation; carry the zone
	// database so that works in minimal containers without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Parse decodes, defaults and validates one experiment from YAML. filename
// is used only in error messages and as Experiment.Source.
//
// A file holds exactly one experiment: a file with more than one YAML
// document ("---") is rejected, as is an empty one. Decoding is strict:
// unknown fields, wrong types and values that do not parse are errors. All
// problems of the file are returned together as an [ErrorList] sorted by
// position, each reading FILE:LINE:COL: field.path: message.
func Parse(data []byte, filename string) (*Experiment, error) {
	e, _, err := parse(data, filename)
	return e, err
}

// LoadFile reads and parses one experiment file (see [Parse]).
func LoadFile(name string) (*Experiment, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("load experiment: %w", err)
	}
	return Parse(data, name)
}

// LoadDir loads every *.yaml and *.yml file directly in dir (not in
// subdirectories), in name order, and returns its experiments. Experiment
// names must be unique across the files. Suite files in dir are loaded
// and checked too ([LoadLibraryDir] returns them). When any file has a
// problem, LoadDir returns no experiments and an [ErrorList] with the
// problems of every file.
func LoadDir(dir string) ([]*Experiment, error) {
	lib, err := LoadLibraryDir(dir)
	if err != nil {
		return nil, err
	}
	return lib.Experiments, nil
}

// LoadFS is [LoadDir] for a file system such as an embed.FS; dir is a
// slash-separated path in fsys ("." for its root). Errors name files as
// dir/name.
func LoadFS(fsys fs.FS, dir string) ([]*Experiment, error) {
	lib, err := LoadLibraryFS(fsys, dir)
	if err != nil {
		return nil, err
	}
	return lib.Experiments, nil
}

// Library is the experiments and suites of one directory: what chaosd
// loads from its experiments directory.
type Library struct {
	Experiments []*Experiment
	Suites      []*Suite
}

// Experiment returns the experiment named name.
func (l *Library) Experiment(name string) (*Experiment, bool) {
	for _, e := range l.Experiments {
		if e.Metadata.Name == name {
			return e, true
		}
	}
	return nil, false
}

// ExperimentNames returns the experiments' names.
func (l *Library) ExperimentNames() []string {
	out := make([]string, len(l.Experiments))
	for i, e := range l.Experiments {
		out[i] = e.Metadata.Name
	}
	return out
}

// LoadLibraryDir loads every *.yaml and *.yml file directly in dir, in
// name order: experiments (kind Experiment) and suites (kind Suite).
// Names must be unique among the experiments and among the suites, and
// every suite is checked against the experiments ([Suite.CheckLibrary]).
// When any file has a problem, it returns nil and an [ErrorList] with
// the problems of every file.
func LoadLibraryDir(dir string) (*Library, error) {
	return loadFS(os.DirFS(dir), ".", func(name string) string { return filepath.Join(dir, name) })
}

// LoadLibraryFS is [LoadLibraryDir] for a file system (see [LoadFS]).
func LoadLibraryFS(fsys fs.FS, dir string) (*Library, error) {
	return loadFS(fsys, dir, func(name string) string { return path.Join(dir, name) })
}

// ValidateFiles parses every file (experiments and suites) and checks
// that names are unique across them. Suites are checked against the
// experiments among the files; when there are none, their experiment
// names are not checked (see [ValidateFilesAgainst]). It returns nil when
// all are valid, otherwise an [ErrorList] with every problem of every
// file; a file that cannot be read is one entry whose Err is the I/O
// error.
func ValidateFiles(paths []string) error { return ValidateFilesAgainst(paths, nil) }

// ValidateFilesAgainst is [ValidateFiles] that checks suites against the
// experiments library returns when no experiment is among the files (the
// library a suite would run with: chaosctl passes the built-in one).
// library is called only then; nil leaves such suites' names unchecked.
func ValidateFilesAgainst(paths []string, library func() ([]*Experiment, error)) error {
	lib := &Library{}
	var (
		list   ErrorList
		names  = nameSet{}
		suites = nameSet{}
	)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			list = append(list, FieldError{File: p, Msg: fmt.Sprintf("read experiment: %v", err), Err: err})
			continue
		}
		list = append(list, lib.add(data, p, names, suites)...)
	}
	if len(lib.Suites) > 0 {
		against := lib
		if len(lib.Experiments) == 0 && library != nil {
			exps, err := library()
			if err != nil {
				return err
			}
			against = &Library{Experiments: exps}
		}
		if len(against.Experiments) > 0 {
			list = append(list, against.checkSuites(lib.Suites)...)
		}
	}
	list.Sort()
	return list.Err()
}

// add parses one file into l and returns its problems.
func (l *Library) add(data []byte, file string, names, suites nameSet) ErrorList {
	e, s, ix, err := parseAny(data, file)
	switch {
	case err != nil:
		return names.add(nil, ix, err)
	case s != nil:
		l.Suites = append(l.Suites, s)
		return suites.addName(s.Metadata.Name, "suite", file, ix)
	default:
		l.Experiments = append(l.Experiments, e)
		return names.add(e, ix, nil)
	}
}

// checkSuites checks suites against l's experiments.
func (l *Library) checkSuites(suites []*Suite) ErrorList {
	var list ErrorList
	known := l.ExperimentNames()
	for _, s := range suites {
		var sl ErrorList
		if asErrorList(s.CheckLibrary(l.Experiment, known), &sl) {
			list = append(list, sl...)
		}
	}
	return list
}

func loadFS(fsys fs.FS, dir string, display func(name string) string) (*Library, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("load experiments from %s: %w", display(""), err)
	}
	var (
		lib    = &Library{}
		list   ErrorList
		names  = nameSet{}
		suites = nameSet{}
	)
	for _, ent := range entries { // fs.ReadDir sorts by name
		ext := strings.ToLower(path.Ext(ent.Name()))
		if ent.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		file := display(ent.Name())
		data, err := fs.ReadFile(fsys, path.Join(dir, ent.Name()))
		if err != nil {
			list = append(list, FieldError{File: file, Msg: fmt.Sprintf("read experiment: %v", err), Err: err})
			continue
		}
		list = append(list, lib.add(data, file, names, suites)...)
	}
	list = append(list, lib.checkSuites(lib.Suites)...)
	if len(list) > 0 {
		list.Sort()
		return nil, list
	}
	return lib, nil
}

// nameSet finds experiment names defined in more than one file.
type nameSet map[string]FieldError

// add records the name of a parsed experiment and returns the parse errors
// plus a duplicate-name error when the name was seen before.
func (s nameSet) add(e *Experiment, ix *docIndex, err error) ErrorList {
	var list ErrorList
	if err != nil {
		if !asErrorList(err, &list) {
			return ErrorList{{Msg: err.Error(), Err: err}}
		}
		return list
	}
	return s.addName(e.Metadata.Name, "experiment", e.Source, ix)
}

// addName records a name of what ("experiment", "suite") defined in file.
func (s nameSet) addName(name, what, file string, ix *docIndex) ErrorList {
	line, col := ix.pos("metadata.name")
	here := FieldError{File: file, Line: line, Col: col, Path: "metadata.name"}
	if first, dup := s[name]; dup {
		here.Msg = fmt.Sprintf("duplicate %s name %q: also defined at %s:%d:%d", what, name, first.File, first.Line, first.Col)
		return ErrorList{here}
	}
	s[name] = here
	return nil
}

func asErrorList(err error, list *ErrorList) bool {
	l, ok := err.(ErrorList)
	if ok {
		*list = l
	}
	return ok
}

// numericScope reports whether path is inside a probe or a fault, where
// threshold, min, max, ports, correlation, loss, fraction and level are
// numbers (and not, say, a label key that happens to be called "min").
func numericScope(p string) bool {
	for _, prefix := range []string{"spec.steadyState.probes[", "spec.effects.probes[", "spec.abortWhen[", "spec.recovery.probes[", "spec.faults["} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// parse is Parse that also returns the document index (for positions).
// A suite file is an error of its kind.
func parse(data []byte, filename string) (*Experiment, *docIndex, error) {
	e, s, ix, err := parseAny(data, filename)
	if err == nil && s != nil {
		line, col := ix.pos("kind")
		return nil, ix, ErrorList{{File: filename, Line: line, Col: col, Path: "kind",
			Msg: fmt.Sprintf("must be %s, not %q: a suite is loaded with the library (chaosd's experiments directory, chaosctl validate)", Kind, SuiteKind)}}
	}
	return e, ix, err
}

// parseExperimentRoot decodes, defaults and validates the experiment of
// a parsed document.
func parseExperimentRoot(ix *docIndex, root ast.Node, filename string) (*Experiment, error) {
	e, issues, ok := decodeDoc[Experiment](ix, root)
	issues = append(issues, ix.numberChecks()...)
	if ok {
		e.Source = filename
		applyDefaults(e, ix.written)
		for _, is := range validateExperiment(e, ix.written, ix.inFile) {
			if !ix.underFailed(is.path) {
				issues = append(issues, is)
			}
		}
	}
	if len(issues) > 0 {
		return nil, issueList(filename, issues, ix)
	}
	return e, nil
}

// issueList turns issues into a sorted ErrorList of filename, with the
// position of each issue's token or, failing that, of its path.
func issueList(filename string, issues []issue, ix *docIndex) ErrorList {
	list := make(ErrorList, 0, len(issues))
	for _, is := range issues {
		fe := FieldError{File: filename, Path: is.path, Msg: is.msg, Err: is.err}
		if is.tok != nil || ix == nil {
			fe.Line, fe.Col = tokenPos(is.tok)
		} else {
			fe.Line, fe.Col = ix.pos(is.path)
		}
		list = append(list, fe)
	}
	list.Sort()
	return list
}

// parseRoot parses data as YAML holding exactly one document and returns
// its body. what names the document in messages ("experiment", "suite").
func parseRoot(data []byte, filename, what string) (ast.Node, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		is := issue{msg: "YAML: " + err.Error(), err: err}
		if ye, ok := err.(yaml.Error); ok {
			is.msg, is.tok = "YAML: "+ye.GetMessage(), ye.GetToken()
		}
		return nil, issueList(filename, []issue{is}, nil)
	}
	var docs []ast.Node
	for _, d := range file.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d.Body)
		}
	}
	switch {
	case len(docs) == 0:
		return nil, issueList(filename, []issue{{msg: "no " + what + ": the file is empty"}}, nil)
	case len(docs) > 1:
		line, col := nodePos(docs[1])
		return nil, ErrorList{{File: filename, Line: line, Col: col,
			Msg: fmt.Sprintf("the file holds %d YAML documents; put each %s in a file of its own", len(docs), what)}}
	}
	return docs[0], nil
}

// numericFields are the fields (in numericScope) that hold numbers.
var numericFields = []string{".threshold", ".min", ".max", ".correlation", ".loss", ".fraction", ".level"}

// numberChecks rejects quoted numbers where the spec wants a number (probe
// thresholds, ports, percentages, levels): the decoder would accept "0.5"
// for a float.
func (ix *docIndex) numberChecks() []issue {
	var issues []issue
	for p, n := range ix.nodes {
		if ix.underFailed(p) || n.Type() != ast.StringType || !numericScope(p) {
			continue
		}
		last := p[len(parentPath(p)):]
		if slices.Contains(numericFields, last) ||
			(strings.HasSuffix(parentPath(p), ".ports") && strings.HasPrefix(last, "[")) {
			s, _ := scalarText(n)
			issues = append(issues, issue{path: p, msg: fmt.Sprintf("must be a number, not a string (%q); remove the quotes", s)})
		}
	}
	slices.SortFunc(issues, func(a, b issue) int { return strings.Compare(a.path, b.path) })
	return issues
}
