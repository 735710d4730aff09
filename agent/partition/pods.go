package partition

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
)

// PodNetNS opens pods' network namespaces (a *kubepod.Finder).
type PodNetNS interface {
	OpenNetNS(ctx context.Context, pod agentapi.Pod) (*kubepod.NetNS, error)
	FindNetNS(ctx context.Context, pod agentapi.Pod, id kubepod.NSID) (*kubepod.NetNS, error)
}

// PodAppliers returns the production PodBackends: each call finds the
// pod's namespace with ns, and the calls in flight on one namespace share
// one Applier in it (one lasting netlink socket), keyed by the
// namespace's identity. When the last of them releases it, the Applier
// is closed, in the background: its socket's close waits for nf_tables
// to clean up after the commit just made (~11 ms), which no caller should
// wait for. No descriptor or socket of a pod's namespace is kept between
// calls (beyond that close), so the agent never keeps a deleted pod's
// namespace alive. Close waits for the closes under way.
func PodAppliers(ns PodNetNS) *PodApplierSet {
	return &PodApplierSet{ns: ns, byNS: map[kubepod.NSID]*podApplier{}}
}

// PodApplierSet is the production PodBackends (see PodAppliers).
type PodApplierSet struct {
	ns     PodNetNS
	mu     sync.Mutex
	byNS   map[kubepod.NSID]*podApplier
	bg     sync.WaitGroup // Appliers being closed
	closed bool
}

type podApplier struct {
	ap   *Applier
	refs int
}

// Open implements PodBackends.
func (p *PodApplierSet) Open(ctx context.Context, pod agentapi.Pod) (Backend, kubepod.NSID, func() error, error) {
	n, err := p.ns.OpenNetNS(ctx, pod)
	if err != nil {
		return nil, kubepod.NSID{}, nil, err
	}
	defer n.Close()
	ap, release, err := p.acquire(n)
	if err != nil {
		return nil, kubepod.NSID{}, nil, err
	}
	return ap, n.ID, release, nil
}

// Find implements PodBackends.
func (p *PodApplierSet) Find(ctx context.Context, pod agentapi.Pod, id kubepod.NSID) (Backend, func() error, error) {
	n, err := p.ns.FindNetNS(ctx, pod, id)
	if err != nil {
		return nil, nil, err
	}
	defer n.Close()
	return p.acquire(n)
}

// acquire returns the shared Applier of the open namespace n, opening one
// if no call is using that namespace now, and the function releasing it.
func (p *PodApplierSet) acquire(n *kubepod.NetNS) (*Applier, func() error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, errors.New("pod nftables appliers closed")
	}
	pa := p.byNS[n.ID]
	if pa == nil {
		ap, err := NewApplierFd(n.Fd())
		if err != nil {
			return nil, nil, err
		}
		pa = &podApplier{ap: ap}
		p.byNS[n.ID] = pa
	}
	pa.refs++
	var once sync.Once
	release := func() error {
		once.Do(func() { p.release(n.ID, pa) })
		return nil
	}
	return pa.ap, release, nil
}

func (p *PodApplierSet) release(id kubepod.NSID, pa *podApplier) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pa.refs--; pa.refs > 0 {
		return
	}
	if p.byNS[id] == pa {
		delete(p.byNS, id)
	}
	p.bg.Go(func() { _ = pa.ap.Close() })
}

// Close waits until every Applier released is closed. Calls still
// holding one must have released it first.
func (p *PodApplierSet) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.bg.Wait()
	return nil
}

// FakePods is a stateful stand-in for pods' network namespaces: each pod
// (by UID) has a namespace identity and its own *Fake, so tests without
// root can run pod-scoped partitions and look into each namespace. A pod
// can be removed (its namespace and tables go with it) or get a new
// namespace (a recreated sandbox). Safe for concurrent use.
type FakePods struct {
	mu   sync.Mutex
	next uint64
	pods map[string]*fakePod
	// gone keeps the tables of namespaces that no longer exist, by
	// identity, so a test can check nothing was applied in them later.
	gone map[kubepod.NSID]*Fake
}

type fakePod struct {
	id kubepod.NSID
	k  *Fake
}

// NewFakePods returns a node without pods.
func NewFakePods() *FakePods {
	return &FakePods{pods: map[string]*fakePod{}, gone: map[kubepod.NSID]*Fake{}, next: 4026530000}
}

// Add gives the pod uid a fresh namespace and returns its tables.
func (p *FakePods) Add(uid string) *Fake {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.pods[uid]; old != nil {
		p.gone[old.id] = old.k
	}
	p.next++
	fp := &fakePod{id: kubepod.NSID{Dev: 4, Ino: p.next}, k: NewFake()}
	p.pods[uid] = fp
	return fp.k
}

// Remove deletes the pod uid and its namespace.
func (p *FakePods) Remove(uid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.pods[uid]; old != nil {
		p.gone[old.id] = old.k
		delete(p.pods, uid)
	}
}

// Tables returns the tables of pod uid's current namespace (nil if none).
func (p *FakePods) Tables(uid string) *Fake {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fp := p.pods[uid]; fp != nil {
		return fp.k
	}
	return nil
}

// Open implements PodBackends.
func (p *FakePods) Open(ctx context.Context, pod agentapi.Pod) (Backend, kubepod.NSID, func() error, error) {
	if err := ctx.Err(); err != nil {
		return nil, kubepod.NSID{}, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fp := p.pods[pod.UID]
	if fp == nil {
		return nil, kubepod.NSID{}, nil, fmt.Errorf("%w: no pod with uid %s", kubepod.ErrGone, pod.UID)
	}
	return fp.k, fp.id, func() error { return nil }, nil
}

// Find implements PodBackends.
func (p *FakePods) Find(ctx context.Context, pod agentapi.Pod, id kubepod.NSID) (Backend, func() error, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fp := p.pods[pod.UID]
	if fp == nil || fp.id != id {
		return nil, nil, fmt.Errorf("%w: namespace %s of pod %s", kubepod.ErrGone, id, pod.UID)
	}
	return fp.k, func() error { return nil }, nil
}

var _ PodBackends = (*FakePods)(nil)
