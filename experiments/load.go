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
// subdirectories), in name order. Experiment names must be unique across
// the files. When any file has a problem, LoadDir returns no experiments
// and an [ErrorList] with the problems of every file.
func LoadDir(dir string) ([]*Experiment, error) {
	return loadFS(os.DirFS(dir), ".", func(name string) string { return filepath.Join(dir, name) })
}

// LoadFS is [LoadDir] for a file system such as an embed.FS; dir is a
// slash-separated path in fsys ("." for its root). Errors name files as
// dir/name.
func LoadFS(fsys fs.FS, dir string) ([]*Experiment, error) {
	return loadFS(fsys, dir, func(name string) string { return path.Join(dir, name) })
}

// ValidateFiles parses every file and checks that experiment names are
// unique across them. It returns nil when all are valid, otherwise an
// [ErrorList] with every problem of every file; a file that cannot be read
// is one entry whose Err is the I/O error.
func ValidateFiles(paths []string) error {
	var (
		list  ErrorList
		names = nameSet{}
	)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			list = append(list, FieldError{File: p, Msg: fmt.Sprintf("read experiment: %v", err), Err: err})
			continue
		}
		list = append(list, names.add(parse(data, p))...)
	}
	list.Sort()
	return list.Err()
}

func loadFS(fsys fs.FS, dir string, display func(name string) string) ([]*Experiment, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("load experiments from %s: %w", display(""), err)
	}
	var (
		out   []*Experiment
		list  ErrorList
		names = nameSet{}
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
		e, ix, err := parse(data, file)
		list = append(list, names.add(e, ix, err)...)
		if e != nil {
			out = append(out, e)
		}
	}
	if len(list) > 0 {
		list.Sort()
		return nil, list
	}
	return out, nil
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
	line, col := ix.pos("metadata.name")
	here := FieldError{File: e.Source, Line: line, Col: col, Path: "metadata.name"}
	if first, dup := s[e.Metadata.Name]; dup {
		here.Msg = fmt.Sprintf("duplicate experiment name %q: also defined at %s:%d:%d", e.Metadata.Name, first.File, first.Line, first.Col)
		return ErrorList{here}
	}
	s[e.Metadata.Name] = here
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
func parse(data []byte, filename string) (e *Experiment, ix *docIndex, err error) {
	defer func() {
		// The YAML library must not take the caller down on hostile
		// input; report a panic in it as an error of this file.
		if r := recover(); r != nil {
			e, ix = nil, nil
			err = ErrorList{{File: filename, Line: 1, Col: 1, Msg: fmt.Sprintf("internal error decoding YAML: %v", r)}}
		}
	}()

	toList := func(issues []issue, ix *docIndex) ErrorList {
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

	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		is := issue{msg: "YAML: " + err.Error(), err: err}
		if ye, ok := err.(yaml.Error); ok {
			is.msg, is.tok = "YAML: "+ye.GetMessage(), ye.GetToken()
		}
		return nil, nil, toList([]issue{is}, nil)
	}
	var docs []ast.Node
	for _, d := range file.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d.Body)
		}
	}
	switch {
	case len(docs) == 0:
		return nil, nil, toList([]issue{{msg: "no experiment: the file is empty"}}, nil)
	case len(docs) > 1:
		line, col := nodePos(docs[1])
		return nil, nil, ErrorList{{File: filename, Line: line, Col: col,
			Msg: fmt.Sprintf("the file holds %d YAML documents; put each experiment in a file of its own", len(docs))}}
	}

	ix = newDocIndex(docs[0])
	e, issues, ok := ix.decode(docs[0])
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
		return nil, ix, toList(issues, ix)
	}
	return e, ix, nil
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
