package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/chaosd/chaosd/targets"
)

// watch is one run's interest in its target pods.
type watch struct {
	uids map[string]targets.Node // pod UID → the target
	ch   chan<- targets.Change
}

// Watch reports, on the returned channel, every targeted pod that is
// deleted or stops being Ready, once each, until ctx ends. The runner
// records it: a target that vanishes mid-run is never silently dropped.
func (inv *Inventory) Watch(ctx context.Context, nodes []targets.Node) <-chan targets.Change {
	ch := make(chan targets.Change, 16)
	w := &watch{uids: map[string]targets.Node{}, ch: ch}
	for _, n := range nodes {
		if in := n.Instance; in != nil && in.Pod != nil {
			w.uids[in.Pod.UID] = n
		}
	}
	if len(w.uids) == 0 {
		return ch
	}
	inv.mu.Lock()
	inv.watches[w] = struct{}{}
	inv.mu.Unlock()
	go func() {
		<-ctx.Done()
		inv.mu.Lock()
		delete(inv.watches, w)
		inv.mu.Unlock()
	}()
	return ch
}

// podChanged tells the watches of a pod that it is gone or unready.
func (inv *Inventory) podChanged(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	var what string
	switch {
	case deleted:
		what = "was deleted"
	case p.DeletionTimestamp != nil:
		what = "is terminating"
	case !podReady(p):
		what = fmt.Sprintf("is no longer Ready (phase %s)", p.Status.Phase)
	default:
		return
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for w := range inv.watches {
		n, ok := w.uids[string(p.UID)]
		if !ok {
			continue
		}
		delete(w.uids, string(p.UID)) // once each
		select {
		case w.ch <- targets.Change{Key: n.Key(), Message: fmt.Sprintf("target pod %s/%s on node %s %s", p.Namespace, p.Name, p.Spec.NodeName, what)}:
		default:
		}
	}
}
