package daemon

import (
	"sort"
	"sync"

	"github.com/chaosd/chaosd/experiments"
)

// catalog is the experiments chaosd knows: loaded once from files
// (standalone), or kept in step with the Experiment objects (Kubernetes).
type catalog struct {
	mu   sync.RWMutex
	exps map[string]*experiments.Experiment
	// changed, when set, is called (without the lock) after every change.
	changed func()
}

func newCatalog(exps []*experiments.Experiment) *catalog {
	c := &catalog{exps: map[string]*experiments.Experiment{}}
	for _, e := range exps {
		c.exps[e.Metadata.Name] = e
	}
	return c
}

func (c *catalog) get(name string) (*experiments.Experiment, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.exps[name]
	return e, ok
}

// all returns the experiments by name order.
func (c *catalog) all() []*experiments.Experiment {
	c.mu.RLock()
	out := make([]*experiments.Experiment, 0, len(c.exps))
	for _, e := range c.exps {
		out = append(out, e)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out
}

// names returns the experiments' names.
func (c *catalog) names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.exps))
	for n := range c.exps {
		out = append(out, n)
	}
	return out
}

func (c *catalog) set(e *experiments.Experiment) {
	c.mu.Lock()
	c.exps[e.Metadata.Name] = e
	fn := c.changed
	c.mu.Unlock()
	if fn != nil {
		fn()
	}
}

func (c *catalog) remove(name string) {
	c.mu.Lock()
	_, had := c.exps[name]
	delete(c.exps, name)
	fn := c.changed
	c.mu.Unlock()
	if had && fn != nil {
		fn()
	}
}

func (c *catalog) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.exps)
}
