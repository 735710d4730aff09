package experiments

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDataLossDefaults(t *testing.T) {
	minimal, err := LoadFile("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := minimal.Spec.Recovery.RPO, Duration(5*time.Minute); got != want {
		t.Errorf("recovery.rpo default = %s, want %s", got, want)
	}
	if minimal.Spec.DataLoss != nil {
		t.Errorf("dataLoss left out must stay nil, got %+v", minimal.Spec.DataLoss)
	}

	e, err := Parse([]byte(`apiVersion: chaosd.io/v1alpha1
kind: Experiment
metadata: {name: d}
spec:
  targets: [{name: t, cluster: c1}]
  faults: [{name: f, kind: partition, target: t, partition: {cidrs: [10.1.0.0/16]}}]
  duration: 30s
  steadyState: {probes: [{name: p, query: up, op: "==", threshold: 1}]}
  dataLoss:
    write: {url: "http://gw:8080/api/visit/owners/1/pets/1/visits", body: '{"description":"{{.Marker}}"}'}
    read: {url: "http://gw:8080/api/visit/pets/visits?petId=1"}
`), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := e.Spec.DataLoss
	tests := []struct {
		name      string
		got, want any
	}{
		{"interval", d.Interval, Duration(time.Second)},
		{"leadIn", d.LeadIn, Duration(10 * time.Second)},
		{"timeout", d.Timeout, Duration(2 * time.Second)},
		{"write.method", d.Write.Method, "POST"},
		{"read.method", d.Read.Method, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestDataRequestRender(t *testing.T) {
	e, err := LoadFile("testdata/dataloss.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 23, 59, 58, 0, time.FixedZone("x", -3600))
	got, err := e.Spec.DataLoss.Write.Render(NewDataLossVars("r-1", 7, at))
	if err != nil {
		t.Fatal(err)
	}
	want := DataRequest{
		Method:  "POST",
		URL:     "http://api-gateway:8080/api/visit/owners/1/pets/1/visits",
		Headers: map[string]string{"Content-Type": "application/json", "X-Request-Id": "chaosd-r-1-w7"},
		Body:    `{"date":"2026-12-01","description":"RPO check chaosd-r-1-w7 at 2026-12-01T00:59:58Z"}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Render:\n got %+v\nwant %+v", got, want)
	}
	read, err := e.Spec.DataLoss.Read.Render(NewDataLossVars("r-1", 0, at))
	if err != nil || read.URL != "http://api-gateway:8080/api/visit/pets/visits?petId=1" || read.Method != "GET" {
		t.Errorf("read Render = %+v, %v", read, err)
	}
}

func TestFindDataLossMarkers(t *testing.T) {
	body := `{"items":[{"description":"RPO check chaosd-r-1-w1 at x"},{"description":"chaosd-r-1-w12"},` +
		`{"description":"chaosd-r-2-w3"},{"description":"chaosd-r-1-w"},{"description":"chaosd-r-1-w40"}]}`
	got := FindDataLossMarkers([]byte(body), "r-1")
	want := map[int]bool{1: true, 12: true, 40: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	if m := DataLossMarker("r-1", 12); !strings.Contains(body, m) {
		t.Errorf("marker %q is not the form FindDataLossMarkers reads", m)
	}
	if got := FindDataLossMarkers([]byte("chaosd-r-1-w5"), "r-1"); !got[5] {
		t.Errorf("a marker at the end of the body is found: %v", got)
	}
}
