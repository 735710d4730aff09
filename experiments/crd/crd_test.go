package crd

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/experiments/library"
)

var update = flag.Bool("update", false, "rewrite manifests/base/crds.yaml from the Go types")

// manifest is the checked-in CRD file, relative to this package.
const manifest = "../../manifests/base/crds.yaml"

func TestManifestIsGenerated(t *testing.T) {
	want, err := YAML()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(manifest, want, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", manifest)
		return
	}
	got, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatalf("%v (run: go test ./experiments/crd -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the CRDs generated from experiments.Spec and api.Run; run: go test ./experiments/crd -update\n%s",
			manifest, firstDiff(got, want))
	}
}

// firstDiff shows the first differing line.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  checked in: %q\n  generated:  %q", i+1, gl, wl)
		}
	}
	return ""
}

func TestNamesAndColumns(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, kind, short string
		columns           []string // Name=JSONPath; each path exists in the schema
	}{
		{"experiments.chaosd.io", "Experiment", "exp", []string{"Schedule=.spec.schedule.cron", `Ready=.status.conditions[?(@.type=="Ready")].status`}},
		{"experimentruns.chaosd.io", "ExperimentRun", "run", []string{"Experiment=.spec.experiment", "Phase=.status.phase", "Verdict=.status.verdict", "RTO=.status.rto.measuredSeconds"}},
		{"suites.chaosd.io", "Suite", "", []string{"Experiments=.status.experimentCount", "Schedule=.spec.schedule.cron", `Ready=.status.conditions[?(@.type=="Ready")].status`}},
		{"suiteruns.chaosd.io", "SuiteRun", "srun", []string{"Suite=.spec.suite", "Phase=.status.phase", "Verdict=.status.verdict"}},
	}
	if len(crds) != len(want) {
		t.Fatalf("%d CRDs, want %d", len(crds), len(want))
	}
	for i, w := range want {
		c := crds[i]
		if c.Name != w.name || c.Spec.Names.Kind != w.kind || (w.short != "" && !slices.Contains(c.Spec.Names.ShortNames, w.short)) ||
			c.Spec.Scope != apiextensionsv1.NamespaceScoped || len(c.Spec.Versions) != 1 || c.Spec.Versions[0].Name != "v1alpha1" ||
			c.Spec.Versions[0].Subresources == nil || c.Spec.Versions[0].Subresources.Status == nil {
			t.Errorf("%s: names %+v scope %s versions %d: want %s/%s, namespaced, v1alpha1 with a status subresource",
				c.Name, c.Spec.Names, c.Spec.Scope, len(c.Spec.Versions), w.kind, w.short)
		}
		var cols []string
		for _, col := range c.Spec.Versions[0].AdditionalPrinterColumns {
			cols = append(cols, col.Name+"="+col.JSONPath)
		}
		for _, wc := range append(w.columns, "Age=.metadata.creationTimestamp") {
			if !slices.Contains(cols, wc) {
				t.Errorf("%s: no printer column %s (have %v)", w.kind, wc, cols)
				continue
			}
			// The column's path exists in the schema.
			_, path, _ := strings.Cut(wc, "=.")
			path, _, _ = strings.Cut(path, "[")
			if strings.HasPrefix(path, "metadata") {
				continue
			}
			s := c.Spec.Versions[0].Schema.OpenAPIV3Schema
			for _, k := range strings.Split(path, ".") {
				next, ok := s.Properties[k]
				if !ok {
					t.Errorf("%s: the schema has no %s (column %s)", w.kind, path, wc)
					break
				}
				s = &next
			}
		}
	}
}

// The Suite schema is never stricter than the suite loader: the example
// game day passes both, and what the schema requires the loader requires.
func TestSuiteSchemaMatchesTheLoader(t *testing.T) {
	data, err := os.ReadFile("../../examples/game-day.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := experiments.ParseSuite(data, "game-day.yaml"); err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	s, err := SuiteSchema()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    func(m map[string]any)
	}{
		{"no experiments", func(m map[string]any) { delete(m["spec"].(map[string]any), "experiments") }},
		{"empty experiments", func(m map[string]any) { m["spec"].(map[string]any)["experiments"] = []any{} }},
		{"entry without experiment", func(m map[string]any) { m["spec"].(map[string]any)["experiments"] = []any{map[string]any{}} }},
		{"51 experiments", func(m map[string]any) {
			var l []any
			for range experiments.MaxSuiteEntries + 1 {
				l = append(l, map[string]any{"experiment": "latency-c1-c2"})
			}
			m["spec"].(map[string]any)["experiments"] = l
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := mutate(t, doc, nil, func(any) {})
			c.f(m)
			if _, err := experiments.ParseSuite(mustYAML(t, m), "game-day.yaml"); err == nil {
				t.Errorf("the loader accepts it; the schema must not refuse it")
			}
		})
	}
	if e := s.Properties["experiments"]; e.MinItems == nil || *e.MinItems != 1 || e.MaxItems == nil || *e.MaxItems != experiments.MaxSuiteEntries ||
		!slices.Equal(s.Required, []string{"experiments"}) || !slices.Equal(e.Items.Schema.Required, []string{"experiment"}) {
		t.Errorf("spec schema: experiments %d..%v items, required %v / %v; want 1..%d, [experiments] / [experiment]",
			e.MinItems, e.MaxItems, s.Required, e.Items.Schema.Required, experiments.MaxSuiteEntries)
	}
}

func TestSpecSchemaShape(t *testing.T) {
	s, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	at := func(path ...string) apiextensionsv1.JSONSchemaProps {
		t.Helper()
		cur := *s
		for _, k := range path {
			if k == "[]" {
				cur = *cur.Items.Schema
				continue
			}
			next, ok := cur.Properties[k]
			if !ok {
				t.Fatalf("no %s in the spec schema", strings.Join(path, "."))
			}
			cur = next
		}
		return cur
	}
	for _, c := range []struct {
		path []string
		typ  string
		ios  bool
	}{
		{[]string{"duration"}, "string", false},
		{[]string{"targets", "[]", "mode"}, "string", false},
		{[]string{"faults", "[]", "partition", "cidrs", "[]"}, "string", false},
		{[]string{"faults", "[]", "latency", "rate"}, "", true},
		{[]string{"faults", "[]", "memory", "size"}, "", true},
		{[]string{"faults", "[]", "latency", "ports", "[]"}, "integer", false},
		{[]string{"abortWhen", "[]", "for"}, "string", false},
		{[]string{"abortWhen", "[]", "query"}, "string", false}, // AbortProbe inlines probes.Probe
		{[]string{"steadyState", "probes", "[]", "threshold"}, "number", false},
		{[]string{"targets", "[]", "selector"}, "object", false},
	} {
		got := at(c.path...)
		if got.Type != c.typ || got.XIntOrString != c.ios {
			t.Errorf("%s: type %q int-or-string %v, want %q %v", strings.Join(c.path, "."), got.Type, got.XIntOrString, c.typ, c.ios)
		}
	}
	if p := at("faults", "[]", "latency", "ports", "[]"); p.Maximum == nil || *p.Maximum != 65535 {
		t.Errorf("ports: want maximum 65535 (uint16), got %v", p.Maximum)
	}
	var kinds []string
	for _, e := range at("faults", "[]", "kind").Enum {
		kinds = append(kinds, strings.Trim(string(e.Raw), `"`))
	}
	for _, k := range experiments.Kinds() {
		if !slices.Contains(kinds, string(k)) {
			t.Errorf("faults[].kind enum %v lacks %s", kinds, k)
		}
	}
}

// The generator refuses what it cannot know instead of guessing.
func TestGeneratorRefusesUnknownShapes(t *testing.T) {
	type untagged struct{ A string }
	type selfMarshaling struct {
		When time.Time `json:"when"`
	}
	type recursive struct {
		Next *recursive `json:"next"`
	}
	type prefix struct {
		P netip.Prefix `yaml:"p"`
	}
	for name, c := range map[string]struct {
		g    *generator
		t    reflect.Type
		want string
	}{
		"untagged field":       {&generator{tag: "yaml"}, reflect.TypeFor[untagged](), "no yaml tag"},
		"marshaler not listed": {&generator{tag: "json"}, reflect.TypeFor[selfMarshaling](), "marshals itself"},
		"recursive":            {&generator{tag: "json"}, reflect.TypeFor[recursive](), "recursive"},
		"text marshaler":       {&generator{tag: "yaml"}, reflect.TypeFor[prefix](), "marshals itself"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.g.schema(c.t); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
}

// libraryDocs returns the built-in experiment files as generic values.
func libraryDocs(t *testing.T) map[string]map[string]any {
	t.Helper()
	docs := map[string]map[string]any{}
	err := fs.WalkDir(library.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" {
			return err
		}
		b, err := fs.ReadFile(library.FS(), p)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		docs[p] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no library experiments")
	}
	return docs
}

// The schema is never stricter than the loader: every field the schema
// requires, and every list it wants non-empty, is one the loader rejects
// the experiment without. Checked on every such field the built-in
// library uses.
func TestSchemaRequiresOnlyWhatTheLoaderRequires(t *testing.T) {
	s, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{}
	for file, doc := range libraryDocs(t) {
		if _, err := experiments.Parse(mustYAML(t, doc), file); err != nil {
			t.Fatalf("%s does not load as it is: %v", file, err)
		}
		var walk func(schema *apiextensionsv1.JSONSchemaProps, v any, path []any, name string)
		walk = func(schema *apiextensionsv1.JSONSchemaProps, v any, path []any, name string) {
			switch v := v.(type) {
			case map[string]any:
				for _, req := range schema.Required {
					if _, ok := v[req]; !ok {
						continue
					}
					key := name + "." + req
					checked[key] = true
					mutated := mutate(t, doc, path, func(m any) { delete(m.(map[string]any), req) })
					if _, err := experiments.Parse(mustYAML(t, mutated), file); err == nil {
						t.Errorf("%s: the schema requires %s but the loader accepts the experiment without it", file, key)
					}
				}
				for k, child := range v {
					if ps, ok := schema.Properties[k]; ok {
						walk(&ps, child, append(slices.Clone(path), k), name+"."+k)
					}
				}
			case []any:
				if schema.MinItems != nil && *schema.MinItems == 1 && len(path) > 0 {
					checked[name+"(minItems)"] = true
					parent, last := path[:len(path)-1], path[len(path)-1].(string)
					mutated := mutate(t, doc, parent, func(m any) { m.(map[string]any)[last] = []any{} })
					if _, err := experiments.Parse(mustYAML(t, mutated), file); err == nil {
						t.Errorf("%s: the schema wants %s non-empty but the loader accepts an empty list", file, name)
					}
				}
				if schema.Items != nil && schema.Items.Schema != nil {
					for i, child := range v {
						walk(schema.Items.Schema, child, append(slices.Clone(path), i), name+"[]")
					}
				}
			}
		}
		spec := *s
		walk(&spec, doc["spec"], []any{"spec"}, "spec")
	}
	keys := make([]string, 0, len(checked))
	for k := range checked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("checked %d required fields and lists: %s", len(keys), strings.Join(keys, " "))
}

// mutate returns a deep copy of doc with f applied to the value at path.
func mutate(t *testing.T, doc map[string]any, path []any, f func(any)) map[string]any {
	t.Helper()
	var cp map[string]any
	if err := yaml.Unmarshal(mustYAML(t, doc), &cp); err != nil {
		t.Fatal(err)
	}
	var cur any = cp
	for _, p := range path {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	f(cur)
	return cp
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
