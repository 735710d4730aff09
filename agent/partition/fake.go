package partition

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
)

// Fake is a stateful stand-in for the Applier: it keeps installed plans in
// memory as the kernel would keep tables, so tests without root can run
// the partition driver (and an agent with it) and then look at what is
// "installed". Safe for concurrent use.
type Fake struct {
	mu        sync.Mutex
	tables    map[string]Plan
	failApply bool
}

// NewFake returns an empty fake.
func NewFake() *Fake { return &Fake{tables: map[string]Plan{}} }

// FailApply makes every later Apply fail after installing the plan, as a
// batch that failed half-way could leave it.
func (k *Fake) FailApply(fail bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failApply = fail
}

// Apply installs (or replaces) the plan's table.
func (k *Fake) Apply(ctx context.Context, p Plan) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tables[p.Table] = p // partial state, as a failed batch could leave
	if k.failApply {
		return errors.New("injected apply failure")
	}
	return nil
}

// Remove deletes a table; a missing one is success.
func (k *Fake) Remove(_ context.Context, table string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.tables, table)
	return nil
}

// Exists reports whether the table is installed.
func (k *Fake) Exists(_ context.Context, table string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.tables[table]
	return ok, nil
}

// ListTagged lists the installed tables carrying TablePrefix, sorted.
func (k *Fake) ListTagged(context.Context) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for t := range k.tables {
		if strings.HasPrefix(t, TablePrefix) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Probe always succeeds.
func (k *Fake) Probe(context.Context) error { return nil }

// Has reports whether the table of fault ID is installed.
func (k *Fake) Has(faultID string) bool {
	ok, _ := k.Exists(context.Background(), TableName(faultID))
	return ok
}

// Plan returns the installed plan of a table.
func (k *Fake) Plan(table string) (Plan, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.tables[table]
	return p, ok
}
