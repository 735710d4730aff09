package daemon

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

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

// suiteObject is testSuite as a Suite object in namespace chaosd.
func suiteObject(t *testing.T, name, pause string, exps ...string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	body := strings.Replace(fmt.Sprintf(testSuite, name, suiteEntries(exps...), ""), "pause: 2s", "pause: "+pause, 1)
	if err := yaml.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetNamespace("chaosd")
	return u
}

func TestSuiteFromObject(t *testing.T) {
	lib := map[string]*experiments.Experiment{}
	for _, n := range []string{"cut", "slow"} {
		e, err := ExperimentFromObject(experimentObject(t, "chaosd", n, "4s", ""))
		if err != nil {
			t.Fatal(err)
		}
		lib[n] = e
	}
	lookup := func(n string) (*experiments.Experiment, bool) { e, ok := lib[n]; return e, ok }
	known := []string{"cut", "slow"}

	u := suiteObject(t, "game-day", "2s", "cut", "slow")
	u.SetResourceVersion("7")
	u.SetAnnotations(map[string]string{experiments.DescriptionAnnotation: "the game day"})
	su, err := SuiteFromObject(u, lookup, known)
	if err != nil {
		t.Fatal(err)
	}
	if su.Metadata.Name != "game-day" || su.Metadata.Annotations[experiments.DescriptionAnnotation] != "the game day" || su.Source != "suite chaosd/game-day" ||
		strings.Join(su.Names(), ",") != "cut,slow" || !su.StopsOnFailure() {
		t.Errorf("suite %+v (source %s)", su.Metadata, su.Source)
	}
	for name, c := range map[string]struct {
		u    *unstructured.Unstructured
		want string
	}{
		"unknown experiment": {suiteObject(t, "gd", "2s", "cut", "nope"),
			`suite chaosd/gd: spec.experiments[1].experiment: unknown experiment "nope" (the library has cut, slow)`},
		// testExperiment's baseline is 1s.
		"pause shorter than the baseline": {suiteObject(t, "gd", "500ms", "cut", "slow"), "suite chaosd/gd: spec.pause: 500ms is shorter than the steady-state baseline (1s) of slow"},
		"negative pause":                  {suiteObject(t, "gd", "-1s", "cut"), "spec.pause:"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := SuiteFromObject(c.u, lookup, known)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), ":1:") {
				t.Errorf("got %v, want an error containing %q (no file positions)", err, c.want)
			}
		})
	}
}
