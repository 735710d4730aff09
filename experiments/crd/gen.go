package crd

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// generator turns Go types into structural OpenAPI v3 schemas by
// reflection. Field names come from one struct tag (yaml for specs
// written by users, json for what chaosd writes).
type generator struct {
	// tag is the struct tag that names fields: "yaml" or "json".
	tag string
	// required marks a field required when its tag lacks omitempty, except
	// the fields listed in optional.
	required bool
	// types gives the schema of types that marshal themselves (Duration,
	// netip.Prefix, time.Time, ...). A type that implements
	// json.Marshaler or encoding.TextMarshaler and is not listed here is
	// an error: reflection cannot know what it writes.
	types map[reflect.Type]apiextensionsv1.JSONSchemaProps
	// structs lists types that marshal themselves but whose fields the
	// generator may still walk; the patch then adjusts the result.
	structs map[reflect.Type]bool
	// enums lists the values of string types.
	enums map[reflect.Type][]string
	// fields adjusts one field's schema, keyed "pkg.Type.field".
	fields map[string]func(*apiextensionsv1.JSONSchemaProps)
	// optional lists fields, keyed "pkg.Type.field", that carry no
	// omitempty but may be left out (they have defaults).
	optional map[string]bool

	stack []reflect.Type // recursion guard
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// schema returns the schema of t.
func (g *generator) schema(t reflect.Type) (apiextensionsv1.JSONSchemaProps, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := g.types[t]; ok {
		return *s.DeepCopy(), nil
	}
	if !g.structs[t] && (t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler)) {
		return apiextensionsv1.JSONSchemaProps{}, fmt.Errorf("%s marshals itself: give its schema in the types table", t)
	}
	if slices.Contains(g.stack, t) {
		return apiextensionsv1.JSONSchemaProps{}, fmt.Errorf("%s is recursive", t)
	}
	g.stack = append(g.stack, t)
	defer func() { g.stack = g.stack[:len(g.stack)-1] }()

	switch t.Kind() {
	case reflect.String:
		s := apiextensionsv1.JSONSchemaProps{Type: "string"}
		for _, v := range g.enums[t] {
			s.Enum = append(s.Enum, apiextensionsv1.JSON{Raw: mustJSON(v)})
		}
		return s, nil
	case reflect.Bool:
		return apiextensionsv1.JSONSchemaProps{Type: "boolean"}, nil
	case reflect.Int, reflect.Int64:
		return apiextensionsv1.JSONSchemaProps{Type: "integer", Format: "int64"}, nil
	case reflect.Int8, reflect.Int16, reflect.Int32:
		lo, hi := float64(int64(-1)<<(t.Bits()-1)), float64(int64(1)<<(t.Bits()-1)-1)
		return apiextensionsv1.JSONSchemaProps{Type: "integer", Minimum: &lo, Maximum: &hi}, nil
	case reflect.Uint, reflect.Uint64:
		zero := 0.0
		return apiextensionsv1.JSONSchemaProps{Type: "integer", Minimum: &zero}, nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		zero, hi := 0.0, float64(uint64(1)<<t.Bits()-1)
		return apiextensionsv1.JSONSchemaProps{Type: "integer", Minimum: &zero, Maximum: &hi}, nil
	case reflect.Float32, reflect.Float64:
		return apiextensionsv1.JSONSchemaProps{Type: "number"}, nil
	case reflect.Slice, reflect.Array:
		items, err := g.schema(t.Elem())
		if err != nil {
			return items, fmt.Errorf("[]%w", err)
		}
		return apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &items}}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return apiextensionsv1.JSONSchemaProps{}, fmt.Errorf("%s: map keys must be strings", t)
		}
		v, err := g.schema(t.Elem())
		if err != nil {
			return v, fmt.Errorf("map[string]%w", err)
		}
		return apiextensionsv1.JSONSchemaProps{Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &v}}, nil
	case reflect.Struct:
		s := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{}}
		if err := g.fieldsOf(t, &s); err != nil {
			return s, err
		}
		if len(s.Properties) == 0 {
			s.Properties = nil
		}
		return s, nil
	}
	return apiextensionsv1.JSONSchemaProps{}, fmt.Errorf("%s: kind %s has no schema", t, t.Kind())
}

// fieldsOf adds the fields of struct t (inlined ones included) to s.
func (g *generator) fieldsOf(t reflect.Type, s *apiextensionsv1.JSONSchemaProps) error {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag, ok := f.Tag.Lookup(g.tag)
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		optList := strings.Split(opts, ",")
		inline := slices.Contains(optList, "inline") || (g.tag == "json" && f.Anonymous && name == "")
		if inline {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() != reflect.Struct {
				return fmt.Errorf("%s.%s: only structs can be inlined", t, f.Name)
			}
			if err := g.fieldsOf(ft, s); err != nil {
				return err
			}
			continue
		}
		if !ok || name == "" {
			return fmt.Errorf("%s.%s: no %s tag naming the field", t, f.Name, g.tag)
		}
		if _, dup := s.Properties[name]; dup {
			return fmt.Errorf("%s.%s: field %q named twice", t, f.Name, name)
		}
		fs, err := g.schema(f.Type)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t, f.Name, err)
		}
		key := t.String() + "." + name
		if patch := g.fields[key]; patch != nil {
			patch(&fs)
		}
		s.Properties[name] = fs
		if g.required && !slices.Contains(optList, "omitempty") && !g.optional[key] {
			s.Required = append(s.Required, name)
		}
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with strings and numbers
	}
	return b
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
