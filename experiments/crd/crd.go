// Package crd generates the CustomResourceDefinitions of chaosd's custom
// resources, chaosd.io/v1alpha1 Experiment, ExperimentRun, Suite and
// SuiteRun, from the Go types that chaosd reads and writes: an
// Experiment's spec schema comes from experiments.Spec and a Suite's from
// experiments.SuiteSpec (field names from the yaml tags, as in experiment
// and suite files), an ExperimentRun's status schema from api.Run and a
// SuiteRun's from api.SuiteRun (json tags, as chaosd writes them). So the API server refuses what chaosd could not
// decode (unknown fields, wrong types) and `kubectl explain` shows the
// real fields.
//
// The generated YAML is checked in as manifests/base/crds.yaml; a test
// fails when it differs from what this package generates, and
// `go test ./experiments/crd -update` rewrites it.
//
// The schema is a superset of what the experiment loader accepts, never a
// subset: types, enums, required fields and "at least one" lists are
// checked by the API server; value rules (durations that parse, CIDRs
// without host bits, cross-field rules) stay with the loader, which
// chaosd runs on every Experiment it reads.
package crd

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments"
	"github.com/chaosd/chaosd/probes"
)

// Names of the API group and its resources.
const (
	Group   = "chaosd.io"
	Version = "v1alpha1"

	ExperimentKind        = "Experiment"
	ExperimentPlural      = "experiments"
	ExperimentRunKind     = "ExperimentRun"
	ExperimentRunPlural   = "experimentruns"
	SuiteKind             = "Suite"
	SuitePlural           = "suites"
	SuiteRunKind          = "SuiteRun"
	SuiteRunPlural        = "suiteruns"
	experimentShortName   = "exp"
	experimentRunShort    = "run"
	suiteRunShort         = "srun"
	category              = "chaosd"
	experimentNamePattern = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
)

// String types that marshal themselves, as users write them.
var specTypes = map[reflect.Type]apiextensionsv1.JSONSchemaProps{
	reflect.TypeFor[experiments.Duration](): {
		Type:        "string",
		Description: `A duration such as "500ms", "30s", "15m", "1h30m" (Prometheus style: ms, s, m, h, d, w, y).`,
	},
	reflect.TypeFor[experiments.ByteRate](): {
		XIntOrString: true,
		Description:  `A rate written the tc way: "10mbit", "512kbit", "100kbps" (bytes); 0 alone is 0.`,
	},
	reflect.TypeFor[experiments.ByteSize](): {
		XIntOrString: true,
		Description:  `A size in bytes, or with a suffix: "256Mi", "1Gi" (powers of 1024), "512M", "1G" (powers of 1000).`,
	},
	reflect.TypeFor[experiments.BlastRadius](): {
		Type:        "string",
		Description: `How many of the selected nodes or instances a fault hits: "all" (default), "one", "fixed:N" or "percent:P".`,
	},
	reflect.TypeFor[netip.Prefix](): {
		Type:        "string",
		Format:      "cidr",
		Description: `A CIDR without host bits, e.g. 10.1.0.0/16.`,
	},
}

// Types of what chaosd writes (run records, conditions).
var statusTypes = map[reflect.Type]apiextensionsv1.JSONSchemaProps{
	reflect.TypeFor[time.Time]():   {Type: "string", Format: "date-time"},
	reflect.TypeFor[metav1.Time](): {Type: "string", Format: "date-time"},
	// An agent's undo document: its shape is the agent's (per kind).
	reflect.TypeFor[json.RawMessage](): {Type: "object", XPreserveUnknownFields: ptr(true)},
}

// probeValue is the schema of a probe value in a run record: a number, or
// "NaN", "+Inf", "-Inf" as a string (JSON has no such numbers).
var probeValue = func(s *apiextensionsv1.JSONSchemaProps) {
	*s = apiextensionsv1.JSONSchemaProps{
		XPreserveUnknownFields: ptr(true),
		Description:            `A number, or "NaN", "+Inf" or "-Inf".`,
	}
}

func enumOf[T ~string](vs ...T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func minItems(n int64) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) { s.MinItems = &n }
}

// specGenerator generates the schema of experiments.Spec.
func specGenerator() *generator {
	return &generator{
		tag:      "yaml",
		required: true,
		types:    specTypes,
		enums: map[reflect.Type][]string{
			reflect.TypeFor[agentapi.Kind](): enumOf(experiments.Kinds()...),
			reflect.TypeFor[probes.Op](): enumOf(probes.OpLT, probes.OpLE, probes.OpGT, probes.OpGE,
				probes.OpEQ, probes.OpNE, probes.OpBetween),
			reflect.TypeFor[probes.Match]():          enumOf(probes.MatchSingle, probes.MatchAll, probes.MatchAny),
			reflect.TypeFor[probes.OnEmpty]():        enumOf(probes.OnEmptyFail, probes.OnEmptyPass),
			reflect.TypeFor[experiments.Direction](): enumOf(experiments.DirectionBoth, experiments.DirectionEgress, experiments.DirectionIngress),
		},
		fields: map[string]func(*apiextensionsv1.JSONSchemaProps){
			"experiments.Spec.targets":       minItems(1),
			"experiments.Spec.faults":        minItems(1),
			"experiments.SteadyState.probes": minItems(1),
			"experiments.Effects.probes":     minItems(1),
		},
		optional: map[string]bool{
			// Defaults: recovery.rto 15m, holdFor, timeout, probes.
			"experiments.Spec.recovery": true,
		},
	}
}

// suiteSpecGenerator generates the schema of experiments.SuiteSpec.
func suiteSpecGenerator() *generator {
	g := specGenerator()
	g.fields = map[string]func(*apiextensionsv1.JSONSchemaProps){
		"experiments.SuiteSpec.experiments": func(s *apiextensionsv1.JSONSchemaProps) {
			minItems(1)(s)
			s.MaxItems = ptr[int64](experiments.MaxSuiteEntries)
		},
	}
	return g
}

// statusGenerator generates schemas of what chaosd writes: no field is
// required (a nil slice is written as null, which the API server drops).
func statusGenerator() *generator {
	return &generator{
		tag:     "json",
		types:   statusTypes,
		structs: map[reflect.Type]bool{reflect.TypeFor[api.ProbeResult](): true, reflect.TypeFor[api.SeriesValue](): true},
		fields: map[string]func(*apiextensionsv1.JSONSchemaProps){
			"api.ProbeResult.value": probeValue,
			"api.SeriesValue.value": probeValue,
		},
	}
}

// Schema returns the OpenAPI v3 schema of an Experiment's spec, generated
// from experiments.Spec.
func Schema() (*apiextensionsv1.JSONSchemaProps, error) {
	s, err := specGenerator().schema(reflect.TypeFor[experiments.Spec]())
	if err != nil {
		return nil, fmt.Errorf("generate the schema of experiments.Spec: %w", err)
	}
	s.Description = "What the experiment does: the fields of an experiment file's spec (see experiments/spec.go)."
	return &s, nil
}

// RunStatusSchema returns the OpenAPI v3 schema of an ExperimentRun's
// status, generated from api.Run.
func RunStatusSchema() (*apiextensionsv1.JSONSchemaProps, error) {
	s, err := statusGenerator().schema(reflect.TypeFor[api.Run]())
	if err != nil {
		return nil, fmt.Errorf("generate the schema of api.Run: %w", err)
	}
	s.Description = "The run record (api.Run), written by chaosd."
	return &s, nil
}

// SuiteSchema returns the OpenAPI v3 schema of a Suite's spec, generated
// from experiments.SuiteSpec.
func SuiteSchema() (*apiextensionsv1.JSONSchemaProps, error) {
	s, err := suiteSpecGenerator().schema(reflect.TypeFor[experiments.SuiteSpec]())
	if err != nil {
		return nil, fmt.Errorf("generate the schema of experiments.SuiteSpec: %w", err)
	}
	s.Description = "What the suite runs: the fields of a suite file's spec (see experiments/suite.go)."
	return &s, nil
}

// SuiteRunStatusSchema returns the OpenAPI v3 schema of a SuiteRun's
// status, generated from api.SuiteRun.
func SuiteRunStatusSchema() (*apiextensionsv1.JSONSchemaProps, error) {
	s, err := statusGenerator().schema(reflect.TypeFor[api.SuiteRun]())
	if err != nil {
		return nil, fmt.Errorf("generate the schema of api.SuiteRun: %w", err)
	}
	s.Description = "The suite run record (api.SuiteRun), written by chaosd."
	return &s, nil
}

// conditions is the schema of a status's conditions, from metav1.Condition.
func conditions() (apiextensionsv1.JSONSchemaProps, error) {
	g := &generator{
		tag:      "json",
		required: true,
		types:    statusTypes,
		enums: map[reflect.Type][]string{
			reflect.TypeFor[metav1.ConditionStatus](): enumOf(metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown),
		},
	}
	c, err := g.schema(reflect.TypeFor[metav1.Condition]())
	if err != nil {
		return c, fmt.Errorf("generate the schema of metav1.Condition: %w", err)
	}
	return apiextensionsv1.JSONSchemaProps{
		Type:         "array",
		Items:        &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &c},
		XListType:    ptr("map"),
		XListMapKeys: []string{"type"},
	}, nil
}

// object is the schema of a custom object around its spec and status.
func object(desc string, spec, status apiextensionsv1.JSONSchemaProps) apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: desc,
		Required:    []string{"spec"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"apiVersion": {Type: "string"},
			"kind":       {Type: "string"},
			"metadata":   {Type: "object"},
			"spec":       spec,
			"status":     status,
		},
	}
}

func definition(kind, plural, short string, schema apiextensionsv1.JSONSchemaProps, columns []apiextensionsv1.CustomResourceColumnDefinition) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		TypeMeta: metav1.TypeMeta{APIVersion: apiextensionsv1.SchemeGroupVersion.String(), Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   plural + "." + Group,
			Labels: map[string]string{"app.kubernetes.io/part-of": "chaosd"},
		},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: Group,
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Kind:       kind,
				ListKind:   kind + "List",
				Plural:     plural,
				Singular:   lower(kind),
				ShortNames: shortNames(short),
				Categories: []string{category},
			},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name:                     Version,
				Served:                   true,
				Storage:                  true,
				Schema:                   &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &schema},
				Subresources:             &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: columns,
			}},
		},
	}
}

func shortNames(short string) []string {
	if short == "" {
		return nil
	}
	return []string{short}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Experiment returns the CustomResourceDefinition of Experiment.
func Experiment() (*apiextensionsv1.CustomResourceDefinition, error) {
	spec, err := Schema()
	if err != nil {
		return nil, err
	}
	status, err := readStatus("experiment")
	if err != nil {
		return nil, err
	}
	schema := object("A chaos experiment: faults, targets, probes and recovery (chaosd.io).", *spec, status)
	// The loader wants a DNS-1123 label: a name an experiment file could carry.
	schema.XValidations = nameRule("experiment")
	return definition(ExperimentKind, ExperimentPlural, experimentShortName, schema, []apiextensionsv1.CustomResourceColumnDefinition{
		{Name: "Duration", Type: "string", JSONPath: ".spec.duration", Description: "How long the faults are held"},
		{Name: "Schedule", Type: "string", JSONPath: ".spec.schedule.cron", Description: "Cron schedule, if any"},
		{Name: "Ready", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].status`, Description: "Whether chaosd accepted the experiment"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}), nil
}

// readStatus is the status chaosd writes on an object users write (an
// Experiment, a Suite): whether it accepted it.
func readStatus(what string) (apiextensionsv1.JSONSchemaProps, error) {
	conds, err := conditions()
	if err != nil {
		return conds, err
	}
	conds.Description = "Conditions chaosd reports about the " + what + " (e.g. whether its spec is valid)."
	return apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: "Written by chaosd.",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"observedGeneration": {Type: "integer", Format: "int64", Description: "The metadata.generation chaosd last read."},
			"conditions":         conds,
		},
	}, nil
}

// nameRule asks for a DNS-1123 label as metadata.name, as the loader does.
func nameRule(what string) apiextensionsv1.ValidationRules {
	return apiextensionsv1.ValidationRules{{
		Rule:    fmt.Sprintf("size(self.metadata.name) <= 63 && self.metadata.name.matches('%s')", experimentNamePattern),
		Message: "metadata.name must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters), as in " + what + " files",
	}}
}

// triggerSchema is a run's spec.trigger.
func triggerSchema() apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "string", Description: "Who started the run.",
		Enum: []apiextensionsv1.JSON{{Raw: mustJSON(api.TriggerManual)}, {Raw: mustJSON(api.TriggerSchedule)}}}
}

// ExperimentRun returns the CustomResourceDefinition of ExperimentRun.
func ExperimentRun() (*apiextensionsv1.CustomResourceDefinition, error) {
	status, err := RunStatusSchema()
	if err != nil {
		return nil, err
	}
	spec := apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: "What to run. Immutable: a run is a record of one execution.",
		Required:    []string{"experiment"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"experiment": {Type: "string", MinLength: ptr[int64](1), Description: "Name of the Experiment (in this namespace)."},
			"trigger":    triggerSchema(),
			"dryRun":     {Type: "boolean", Description: "Resolve targets and check probes, inject nothing."},
		},
		XValidations: apiextensionsv1.ValidationRules{{Rule: "self == oldSelf", Message: "spec is immutable"}},
	}
	schema := object("One execution of an Experiment; its status is the run record (chaosd.io).", spec, *status)
	return definition(ExperimentRunKind, ExperimentRunPlural, experimentRunShort, schema, []apiextensionsv1.CustomResourceColumnDefinition{
		{Name: "Experiment", Type: "string", JSONPath: ".spec.experiment"},
		{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
		{Name: "Verdict", Type: "string", JSONPath: ".status.verdict"},
		{Name: "RTO", Type: "number", JSONPath: ".status.rto.measuredSeconds", Description: "Measured RTO in seconds"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}), nil
}

// Suite returns the CustomResourceDefinition of Suite. Its Experiments
// column is status.experimentCount, which chaosd writes with its Ready
// condition (a printer column cannot count a list).
func Suite() (*apiextensionsv1.CustomResourceDefinition, error) {
	spec, err := SuiteSchema()
	if err != nil {
		return nil, err
	}
	status, err := readStatus("suite")
	if err != nil {
		return nil, err
	}
	status.Properties["experimentCount"] = apiextensionsv1.JSONSchemaProps{Type: "integer", Format: "int64",
		Description: "How many experiments spec.experiments lists (the Experiments column)."}
	schema := object("A game day: experiments of chaosd's library run in order as one unit, with one record (chaosd.io).", *spec, status)
	schema.XValidations = nameRule("suite")
	return definition(SuiteKind, SuitePlural, "", schema, []apiextensionsv1.CustomResourceColumnDefinition{
		{Name: "Experiments", Type: "integer", JSONPath: ".status.experimentCount", Description: "How many experiments the suite runs"},
		{Name: "Schedule", Type: "string", JSONPath: ".spec.schedule.cron", Description: "Cron schedule, if any"},
		{Name: "Ready", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].status`, Description: "Whether chaosd accepted the suite"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}), nil
}

// SuiteRun returns the CustomResourceDefinition of SuiteRun.
func SuiteRun() (*apiextensionsv1.CustomResourceDefinition, error) {
	status, err := SuiteRunStatusSchema()
	if err != nil {
		return nil, err
	}
	spec := apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: "What to run. Immutable: a suite run is a record of one execution.",
		Required:    []string{"suite"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"suite":   {Type: "string", MinLength: ptr[int64](1), Description: "Name of the Suite (in this namespace)."},
			"trigger": triggerSchema(),
			"dryRun":  {Type: "boolean", Description: "Every experiment as a dry run: nothing injected, no pauses."},
		},
		XValidations: apiextensionsv1.ValidationRules{{Rule: "self == oldSelf", Message: "spec is immutable"}},
	}
	schema := object("One execution of a Suite; its status is the suite run record, each experiment's run ID and verdict (chaosd.io).", spec, *status)
	return definition(SuiteRunKind, SuiteRunPlural, suiteRunShort, schema, []apiextensionsv1.CustomResourceColumnDefinition{
		{Name: "Suite", Type: "string", JSONPath: ".spec.suite"},
		{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
		{Name: "Verdict", Type: "string", JSONPath: ".status.verdict"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}), nil
}

// CRDs returns the definitions: Experiment, ExperimentRun, Suite, SuiteRun.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, f := range []func() (*apiextensionsv1.CustomResourceDefinition, error){Experiment, ExperimentRun, Suite, SuiteRun} {
		c, err := f()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// header starts manifests/base/crds.yaml.
const header = `# Code generated by "go test ./experiments/crd -update"; DO NOT EDIT.
# The CustomResourceDefinitions of chaosd.io/v1alpha1 Experiment,
# ExperimentRun, Suite and SuiteRun, generated from experiments.Spec,
# api.Run, experiments.SuiteSpec and api.SuiteRun (package experiments/crd).
`

// YAML returns the definitions as the YAML of manifests/base/crds.yaml.
func YAML() ([]byte, error) {
	crds, err := CRDs()
	if err != nil {
		return nil, err
	}
	out := []byte(header)
	for _, c := range crds {
		// Through a map, to drop what a manifest must not carry: the
		// status and the null creationTimestamp.
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		delete(m, "status")
		delete(m["metadata"].(map[string]any), "creationTimestamp")
		y, err := yaml.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, "---\n"...)
		out = append(out, y...)
	}
	return out, nil
}
