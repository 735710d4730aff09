package experiments

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem found in an experiment file. It prints as
//
//	FILE:LINE:COL: field.path: message
//
// Path is empty when the problem is not about one field (a YAML syntax
// error, a second document in the file); Line and Col are 0 when there is
// no position (the file could not be read, or the experiment was built in
// Go and checked with [Experiment.Validate]).
type FieldError struct {
	File string // file the experiment was read from ("" when unknown)
	Line int    // 1-based line, 0 when unknown
	Col  int    // 1-based column, 0 when unknown
	Path string // field path, e.g. spec.faults[0].partition.cidrs[1]
	Msg  string // what is wrong, e.g. "required"
	// Err is the underlying error when there is one (an I/O error, a
	// duration parse error); it is reachable with errors.Is / errors.As.
	Err error
}

// Error formats the error as FILE:LINE:COL: path: message, leaving out the
// parts that are unknown.
func (e FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e FieldError) Unwrap() error { return e.Err }

// ErrorList is every problem found while loading or validating one or more
// experiment files, sorted by file and position. Loading functions return
// it (as an error) so callers can get at each entry with errors.As:
//
//	var list experiments.ErrorList
//	if errors.As(err, &list) { for _, fe := range list { ... } }
type ErrorList []FieldError

// Error prints one error per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the entries so errors.Is and errors.As look into them.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Sort orders the list by file, line, column, path and message.
func (l ErrorList) Sort() {
	slices.SortStableFunc(l, func(a, b FieldError) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
}

// Err returns the list as an error, or nil when it is empty. Use it instead
// of returning an empty ErrorList, which would be a non-nil error.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
