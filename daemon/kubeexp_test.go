package daemon

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/chaosd/chaosd/experiments"
)

func TestExperimentFromObject(t *testing.T) {
	u := experimentObject(t, "chaosd", "cut", "4s", "")
	u.SetResourceVersion("42") // server-set metadata is not the experiment's
	u.SetAnnotations(map[string]string{experiments.DescriptionAnnotation: "cut the TGW",
		"kubectl.kubernetes.io/last-applied-configuration": "{}"})
	e, err := ExperimentFromObject(u)
	if err != nil {
		t.Fatal(err)
	}
	if e.Metadata.Name != "cut" || e.Metadata.Description != "cut the TGW" || e.Source != "experiment chaosd/cut" {
		t.Errorf("experiment %+v (source %s)", e.Metadata, e.Source)
	}
	// The same strict validation as a file; messages name the field, not
	// a line of a file the user never wrote.
	_ = unstructured.SetNestedField(u.Object, "0s", "spec", "probeInterval")
	if _, err := ExperimentFromObject(u); err == nil || !strings.Contains(err.Error(), "experiment chaosd/cut: spec.probeInterval:") || strings.Contains(err.Error(), ":1:") {
		t.Errorf("invalid object: %v", err)
	}
}
