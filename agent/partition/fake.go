package partition

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chaosd/chaosd/agent/nftexpiry"
)

// Fake is a stateful stand-in for the Applier: it keeps installed plans in
// memory as the kernel would keep tables, with the time their set elements
// time out, so tests without root can run the partition driver (and an
// agent with it) and then look at what is "installed". As in the kernel,
// a refresh after the elements timed out, or of a table whose sets were
// emptied behind the agent's back, fails with nftexpiry.ErrMissing. Safe
// for concurrent use.
type Fake struct {
	mu          sync.Mutex
	tables      map[string]*fakeTable
	failApply   bool
	failRefresh bool
}

type fakeTable struct {
	plan    Plan
	expires time.Time // when the sets' elements time out
	emptied bool      // the sets were flushed by someone else
}

// NewFake returns an empty fake.
func NewFake() *Fake { return &Fake{tables: map[string]*fakeTable{}} }

// FailApply makes every later Apply fail after installing the plan, as a
// batch that failed half-way could leave it.
func (k *Fake) FailApply(fail bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failApply = fail
}

// FailRefresh makes every later Refresh fail (as a kernel that cannot
// commit would), changing nothing.
func (k *Fake) FailRefresh(fail bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failRefresh = fail
}

// Apply installs (or replaces) the plan's table, its elements timing out
// after timeout.
func (k *Fake) Apply(ctx context.Context, p Plan, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tables[p.Table] = &fakeTable{plan: p, expires: time.Now().Add(timeout)} // partial state, as a failed batch could leave
	if k.failApply {
		return errors.New("injected apply failure")
	}
	return nil
}

// Refresh gives the table's elements a new timeout, as the kernel would:
// it fails with nftexpiry.ErrMissing when the table is missing, differs
// from the plan, had its sets emptied, or its elements timed out.
func (k *Fake) Refresh(ctx context.Context, p Plan, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.tables[p.Table]
	switch {
	case k.failRefresh:
		return errors.New("injected refresh failure")
	case t == nil:
		return fmt.Errorf("%w: no table %s", nftexpiry.ErrMissing, p.Table)
	case t.emptied:
		return fmt.Errorf("%w: the sets of table %s are empty", nftexpiry.ErrMissing, p.Table)
	case !time.Now().Before(t.expires):
		return fmt.Errorf("%w: the elements of table %s timed out", nftexpiry.ErrMissing, p.Table)
	case t.plan.String() != p.String():
		return fmt.Errorf("%w: table %s is not as planned", nftexpiry.ErrMissing, p.Table)
	}
	t.expires = time.Now().Add(timeout)
	return nil
}

// Remove deletes a table; a missing one is success.
func (k *Fake) Remove(_ context.Context, table string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.tables, table)
	return nil
}

// Exists reports whether the table is installed (whether or not its
// elements timed out: an empty table stays until it is removed).
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
	if t := k.tables[table]; t != nil {
		return t.plan, true
	}
	return Plan{}, false
}

// ExpiresAt returns when the table's set elements time out.
func (k *Fake) ExpiresAt(table string) (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t := k.tables[table]; t != nil {
		return t.expires, true
	}
	return time.Time{}, false
}

// EmptySets flushes the table's sets, as `nft flush set` by someone else
// would: the table stays, the fault no longer cuts anything.
func (k *Fake) EmptySets(table string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t := k.tables[table]; t != nil {
		t.emptied = true
	}
}
