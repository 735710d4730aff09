package library

import (
	"io/fs"
	"reflect"
	"testing"
	"time"

	"github.com/chaosd/chaosd/experiments"
)

func TestLoad(t *testing.T) {
	exps, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(FS(), "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(exps) != len(files) || len(exps) == 0 {
		t.Fatalf("loaded %d experiments from %d files", len(exps), len(files))
	}
	// Each file is also a Kubernetes object (kubectl apply -f): its
	// description is the annotation, which the loader reads.
	for _, e := range exps {
		if e.Metadata.Description == "" || e.Metadata.Annotations[experiments.DescriptionAnnotation] != e.Metadata.Description {
			t.Errorf("%s: want a description in the annotation %s, got %q", e.Source, experiments.DescriptionAnnotation, e.Metadata.Description)
		}
	}
}

func TestPartitionC1C2(t *testing.T) {
	exps, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var e *experiments.Experiment
	for _, x := range exps {
		if x.Metadata.Name == "partition-c1-c2" {
			e = x
		}
	}
	if e == nil {
		t.Fatal("partition-c1-c2 is not in the library")
	}
	s := e.Spec
	tests := []struct {
		name      string
		got, want any
	}{
		{"source", e.Source, "partition-c1-c2.yaml"},
		{"target", s.Targets[0].Name + "@" + s.Targets[0].Cluster, "c1-nodes@c1"},
		{"mode", s.Targets[0].Mode, experiments.BlastRadius{Kind: experiments.BlastAll}},
		{"fault", s.Faults[0].Name + "/" + string(s.Faults[0].Kind) + "->" + s.Faults[0].Target, "cut-tgw/partition->c1-nodes"},
		{"cidrs", len(s.Faults[0].Partition.CIDRs), 1},
		{"cidr", s.Faults[0].Partition.CIDRs[0].String(), "10.1.0.0/16"},
		{"direction", s.Faults[0].Partition.Direction, experiments.DirectionBoth},
		{"duration", s.Duration.D(), 30 * time.Second},
		{"probeInterval", s.ProbeInterval.D(), time.Second},
		{"steady probes", len(s.SteadyState.Probes), 3},
		{"abort probes", len(s.AbortWhen), 1},
		{"abort name", s.AbortWhen[0].Name, "gateway-mostly-failing"},
		{"abort op", string(s.AbortWhen[0].Op), ">"},
		{"abort threshold", *s.AbortWhen[0].Threshold, 0.5},
		{"abort onEmpty", string(s.AbortWhen[0].OnEmpty), "pass"},
		{"abort for", s.AbortWhen[0].For.D(), 10 * time.Second},
		{"rto", s.Recovery.RTO.D(), 15 * time.Minute},
		{"holdFor", s.Recovery.HoldFor.D(), 10 * time.Second},
		{"timeout", s.Recovery.Timeout.D(), 3 * time.Minute},
		{"no schedule", s.Schedule == nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if !reflect.DeepEqual(s.Recovery.Probes, s.SteadyState.Probes) {
		t.Errorf("recovery probes = %+v, want the steady-state probes", s.Recovery.Probes)
	}
	wantProbes := []struct {
		name, query, op string
		threshold       float64
	}{
		{"owner-details-breaker-closed", `max(resilience4j_circuitbreaker_state{job="api-gateway",name="getOwnerDetails",state="closed"})`, "==", 1},
		{"gateway-to-visits-success", `sum(rate(http_client_requests_seconds_count{job="api-gateway",client_name="visits-service",outcome="SUCCESS"}[$__rate_interval])) / sum(rate(http_client_requests_seconds_count{job="api-gateway",client_name="visits-service"}[$__rate_interval]))`, ">=", 0.99},
		{"gateway-success", `sum(rate(http_server_requests_seconds_count{job="api-gateway",outcome="SUCCESS"}[$__rate_interval])) / sum(rate(http_server_requests_seconds_count{job="api-gateway"}[$__rate_interval]))`, ">=", 0.99},
	}
	for i, w := range wantProbes {
		p := s.SteadyState.Probes[i]
		if p.Name != w.name || p.Query != w.query || string(p.Op) != w.op || p.Threshold == nil || *p.Threshold != w.threshold {
			t.Errorf("steady probe %d = %+v, want %+v", i, p, w)
		}
	}
	if got, want := s.AbortWhen[0].Query, `sum(rate(http_server_requests_seconds_count{job="api-gateway",outcome="SERVER_ERROR"}[$__rate_interval])) / sum(rate(http_server_requests_seconds_count{job="api-gateway"}[$__rate_interval]))`; got != want {
		t.Errorf("abort query = %s, want %s", got, want)
	}
}
