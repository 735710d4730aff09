package kube

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/chaosd/chaosd/experiments"
)

// BenchmarkResolve resolves a service of 1000 Ready pods on 100 nodes from
// the informers' caches (what a run does at preflight).
func BenchmarkResolve(b *testing.B) {
	var objs []runtime.Object
	http := corev1.ContainerPort{Name: "http", ContainerPort: 8081}
	for i := range 100 {
		objs = append(objs, node(fmt.Sprintf("n%d", i), "a"))
		for j := range 10 {
			objs = append(objs, pod("petclinic", fmt.Sprintf("customers-%d-%d", i, j), fmt.Sprintf("n%d", i), "customers-service",
				fmt.Sprintf("10.0.%d.%d", i, j+10), true, http))
		}
	}
	inv, err := New(fake.NewClientset(objs...), testConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); inv.Shutdown() }()
	if err := inv.Start(ctx); err != nil {
		b.Fatal(err)
	}
	t := experiments.Target{Cluster: "c1", Service: "customers-service", Mode: experiments.BlastRadius{Kind: experiments.BlastPercent, Percent: 10}}
	b.ResetTimer()
	for range b.N {
		got, err := inv.Resolve(ctx, t)
		if err != nil || len(got) != 100 {
			b.Fatalf("resolved %d (%v)", len(got), err)
		}
	}
}
