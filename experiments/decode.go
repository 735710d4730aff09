package experiments

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// maxDecodeErrors bounds how many decode errors are collected from one
// document before giving up.
const maxDecodeErrors = 100

// nodeError is returned by this package's UnmarshalYAML methods. It keeps
// the offending node so the loader can turn it into a FieldError with the
// node's position and field path.
type nodeError struct {
	node ast.Node
	msg  string
	err  error
}

func (e *nodeError) Error() string { return e.msg }
func (e *nodeError) Unwrap() error { return e.err }

func nodeErrorf(node ast.Node, err error, format string, args ...any) error {
	return &nodeError{node: node, msg: fmt.Sprintf(format, args...), err: err}
}

// unwrapNode looks through anchors and tags to the node that holds the value.
func unwrapNode(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

// scalarText returns the text of a scalar node as written (without quotes).
// It reports false for null, mappings, lists and aliases.
func scalarText(n ast.Node) (string, bool) {
	switch v := unwrapNode(n).(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if tk := v.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

// nodeKind names what a node holds, for messages ("a list", "a string").
func nodeKind(n ast.Node) string {
	if n == nil {
		return "nothing"
	}
	return nodeTypeKind(unwrapNode(n).Type())
}

// goKind names what a Go type wants, in YAML terms.
func goKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a " + t.Kind().String()
}

// issue is a problem before it gets a position. Decode problems know the
// token they were found at; validation problems only know the path.
type issue struct {
	path string
	msg  string
	err  error
	tok  *token.Token // for problems without a usable path
}

// docIndex maps field paths to the AST nodes of one YAML document and back,
// so that decode errors (which know a token) get a path and validation
// errors (which know a path) get a position.
type docIndex struct {
	nodes  map[string]ast.Node     // path -> value node
	keyTok map[*token.Token]string // key token -> path of its value
	valTok map[*token.Token]string // value token -> path
	remove map[string]func()       // path -> drop the node from the AST
	failed map[string]bool         // paths that did not decode
}

func newDocIndex(root ast.Node) *docIndex {
	ix := &docIndex{
		nodes:  map[string]ast.Node{},
		keyTok: map[*token.Token]string{},
		valTok: map[*token.Token]string{},
		remove: map[string]func(){},
		failed: map[string]bool{},
	}
	ix.walk(root, "")
	return ix
}

func (ix *docIndex) walk(n ast.Node, path string) {
	if n == nil {
		return
	}
	for {
		if tk := n.GetToken(); tk != nil {
			if _, dup := ix.valTok[tk]; !dup {
				ix.valTok[tk] = path
			}
		}
		inner := unwrapNode(n)
		if inner == n {
			break
		}
		n = inner
	}
	ix.nodes[path] = n
	switch v := n.(type) {
	case *ast.MappingNode:
		for _, mv := range v.Values {
			ix.walkPair(mv, path, func() {
				for i, x := range v.Values {
					if x == mv {
						v.Values = append(v.Values[:i:i], v.Values[i+1:]...)
						return
					}
				}
			})
		}
	case *ast.MappingValueNode:
		ix.walkPair(v, path, nil)
	case *ast.SequenceNode:
		for i, e := range v.Values {
			child := fmt.Sprintf("%s[%d]", path, i)
			ix.remove[child] = func() { v.Values[i] = ast.Null(e.GetToken()) }
			ix.walk(e, child)
		}
	}
}

func (ix *docIndex) walkPair(mv *ast.MappingValueNode, parent string, remove func()) {
	if mv.Key == nil || mv.Key.Type() == ast.MergeKeyType {
		return // merged fields are reported at their anchor
	}
	key, ok := scalarText(mv.Key)
	if !ok {
		key = mv.Key.String()
	}
	child := joinPath(parent, key)
	if tk := mv.Key.GetToken(); tk != nil {
		ix.keyTok[tk] = child
	}
	if remove != nil {
		ix.remove[child] = remove
	}
	ix.walk(mv.Value, child)
}

// joinPath appends a mapping key to a field path, quoting keys that would
// make the path ambiguous (label keys such as app.kubernetes.io/name).
func joinPath(parent, key string) string {
	if strings.ContainsAny(key, ".[]\" ") || key == "" {
		return fmt.Sprintf("%s[%q]", parent, key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// parentPath drops the last element of a field path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}

// written reports whether path holds a non-null value in the file that
// decoded without error.
func (ix *docIndex) written(path string) bool {
	n, ok := ix.nodes[path]
	if !ok || n.Type() == ast.NullType {
		return false
	}
	return !ix.underFailed(path)
}

// inFile reports whether path holds a non-null value in the file, whether
// or not it decoded: a field that failed to decode was still written.
func (ix *docIndex) inFile(path string) bool {
	n, ok := ix.nodes[path]
	return ok && n.Type() != ast.NullType
}

// underFailed reports whether path or one of its ancestors failed to decode.
func (ix *docIndex) underFailed(path string) bool {
	for p := path; ; p = parentPath(p) {
		if ix.failed[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// pos returns the position of path, or of its nearest ancestor written in
// the file (for a missing field: the mapping it should be in).
func (ix *docIndex) pos(path string) (line, col int) {
	for p := path; ; p = parentPath(p) {
		if n, ok := ix.nodes[p]; ok {
			return nodePos(n)
		}
		if p == "" {
			return 1, 1
		}
	}
}

// nodePos is where a node starts: a block mapping at its first key, a
// mapping pair at its key, anything else at its first token.
func nodePos(n ast.Node) (line, col int) {
	switch v := n.(type) {
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 && v.Values[0].Key != nil {
			return tokenPos(v.Values[0].Key.GetToken())
		}
	case *ast.MappingValueNode:
		if v.Key != nil {
			return tokenPos(v.Key.GetToken())
		}
	}
	return tokenPos(n.GetToken())
}

func tokenPos(tk *token.Token) (line, col int) {
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 {
		return 1, 1
	}
	return tk.Position.Line, max(tk.Position.Column, 1)
}

// decode decodes the document strictly. goccy stops at the first error, so
// after each error the offending node is dropped from the AST (a mapping
// key) or nulled (a list item, keeping indices) and decoding is retried:
// every decode error of the file is reported, not only the first. ok is
// false when an error could not be tied to a node; the value is then not
// complete enough to validate.
func decodeDoc[T any](ix *docIndex, root ast.Node) (e *T, issues []issue, ok bool) {
	for range maxDecodeErrors {
		var out T
		err := yaml.NodeToValue(root, &out, yaml.DisallowUnknownField())
		if err == nil {
			return &out, issues, true
		}
		is, path, removable := ix.decodeIssue(err)
		issues = append(issues, is)
		if !removable || ix.failed[path] {
			return nil, issues, false
		}
		ix.failed[path] = true
		ix.remove[path]()
	}
	issues = append(issues, issue{msg: fmt.Sprintf("too many errors (more than %d); fix these first", maxDecodeErrors)})
	return nil, issues, false
}

// decodeIssue turns a goccy decode error (or one of this package's
// nodeErrors) into an issue with a field path, and says whether the node
// can be dropped to look for more errors.
func (ix *docIndex) decodeIssue(err error) (is issue, path string, removable bool) {
	var (
		ne  *nodeError
		uf  *yaml.UnknownFieldError
		te  *yaml.TypeError
		oe  *yaml.OverflowError
		ut  *yaml.UnexpectedNodeTypeError
		yer yaml.Error
	)
	var tk *token.Token
	found := false
	switch {
	case errors.As(err, &ne):
		tk = ne.node.GetToken()
		path, found = ix.valTok[tk]
		is = issue{msg: ne.msg, err: ne.err}
	case errors.As(err, &uf):
		tk = uf.Token
		path, found = ix.keyTok[tk]
		key := path
		if found {
			key = path[len(parentPath(path)):]
			key = strings.TrimPrefix(key, ".")
		}
		// Point at the key, not at its value.
		is = issue{msg: fmt.Sprintf("unknown field %q", strings.Trim(key, `[]"`)), tok: tk}
		if !found {
			is.msg = uf.GetMessage()
		}
	case errors.As(err, &te):
		tk = te.Token
		path, found = ix.valTok[tk]
		is = issue{msg: fmt.Sprintf("must be %s, not %s", goKind(te.DstType), nodeKind(ix.nodes[path]))}
	case errors.As(err, &oe):
		tk = oe.Token
		path, found = ix.valTok[tk]
		if strings.Contains(path, ".ports[") {
			is = issue{msg: fmt.Sprintf("%s is not a port number (want 1-65535)", oe.SrcNum)}
		} else {
			is = issue{msg: fmt.Sprintf("%s is out of range for %s", oe.SrcNum, oe.DstType)}
		}
	case errors.As(err, &ut):
		tk = ut.Token
		path, found = ix.valTok[tk]
		is = issue{msg: fmt.Sprintf("must be %s, not %s", nodeTypeKind(ut.Expected), nodeTypeKind(ut.Actual))}
	case errors.As(err, &yer):
		tk = yer.GetToken()
		if path, found = ix.valTok[tk]; !found {
			path, found = ix.keyTok[tk]
		}
		is = issue{msg: yer.GetMessage()}
	default:
		return issue{msg: "decode: " + err.Error(), err: err}, "", false
	}
	if !found {
		is.tok = tk
		return is, "", false
	}
	if path == "" {
		is.msg = "the document " + is.msg
	}
	is.path = path
	_, canRemove := ix.remove[path]
	return is, path, canRemove && path != ""
}

func nodeTypeKind(t ast.NodeType) string {
	switch t {
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.IntegerType:
		return "an integer"
	case ast.FloatType, ast.InfinityType, ast.NanType:
		return "a number"
	case ast.BoolType:
		return "a boolean"
	case ast.NullType:
		return "null"
	case ast.AliasType:
		return "an alias"
	}
	return "a " + strings.ToLower(t.String())
}
