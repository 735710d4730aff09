package petclinic

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// writeBehind is visits-service's write-behind buffer, a knob that loses
// data on purpose (--write-behind=DELAY; off by default). A created visit
// is acknowledged (201) at once and held in memory; DELAY after its
// acknowledgement it is flushed to the store, once customers-service has
// confirmed its pet again. The planted bug: when that confirmation fails
// because customers-service cannot be reached (across the TGW, so a
// partition does it), the flush discards every visit in the buffer instead
// of retrying. Reads see the buffer (read-your-writes), so only a failed
// flush loses anything, and what is lost are the visits acknowledged in
// the DELAY before the cut. Every discarded visit is logged and served at
// GET /actuator/writebehind: the lab's ground truth for chaosd's data-loss
// (RPO) check.
type writeBehind struct {
	delay   time.Duration
	store   *visitStore
	confirm func(ctx context.Context, petID int) (found bool, err error)
	log     *zap.Logger
	now     func() time.Time

	mu      sync.Mutex
	pending []bufferedVisit // in acknowledgement order
	flushed int
	dropped []DroppedVisit
}

type bufferedVisit struct {
	visit   Visit
	ackedAt time.Time
}

// DroppedVisit is a visit the write-behind buffer acknowledged and then
// discarded.
type DroppedVisit struct {
	Visit
	AcknowledgedAt time.Time `json:"acknowledgedAt"`
	DroppedAt      time.Time `json:"droppedAt"`
	Reason         string    `json:"reason"`
}

// WriteBehindStatus is the answer of GET /actuator/writebehind.
type WriteBehindStatus struct {
	Delay   string         `json:"delay"`
	Pending int            `json:"pending"`
	Flushed int            `json:"flushed"`
	Dropped []DroppedVisit `json:"dropped"`
}

func newWriteBehind(delay time.Duration, store *visitStore, confirm func(context.Context, int) (bool, error), log *zap.Logger) *writeBehind {
	return &writeBehind{delay: delay, store: store, confirm: confirm, log: log, now: time.Now}
}

// add acknowledges v: it gets its ID now and reaches the store later.
func (w *writeBehind) add(v Visit) Visit {
	v.ID = w.store.reserveID()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, bufferedVisit{visit: v, ackedAt: w.now()})
	return v
}

// byPets returns the buffered visits of the pets ids.
func (w *writeBehind) byPets(ids []int) []Visit {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Visit
	for _, b := range w.pending {
		if slices.Contains(ids, b.visit.PetID) {
			out = append(out, b.visit)
		}
	}
	return out
}

// run flushes due visits until ctx ends.
func (w *writeBehind) run(ctx context.Context) {
	tick := time.NewTicker(min(w.delay/10, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.flush(ctx)
		}
	}
}

// flush moves the visits acknowledged at least delay ago to the store,
// after customers-service confirmed their pets; when it cannot be
// reached, the whole buffer is discarded (the bug this knob plants).
func (w *writeBehind) flush(ctx context.Context) {
	now := w.now()
	w.mu.Lock()
	due := 0
	for due < len(w.pending) && !w.pending[due].ackedAt.Add(w.delay).After(now) {
		due++
	}
	batch := slices.Clone(w.pending[:due])
	w.mu.Unlock()
	if due == 0 {
		return
	}
	gone := map[int]bool{} // pets customers-service no longer knows
	for _, b := range batch {
		pet := b.visit.PetID
		if _, seen := gone[pet]; seen {
			continue
		}
		found, err := w.confirm(ctx, pet)
		if err != nil {
			if ctx.Err() == nil {
				w.dropAll("customers-service unreachable: " + err.Error())
			}
			return
		}
		gone[pet] = !found
	}
	// Only flush (this goroutine) removes visits from the buffer, so the
	// batch is still pending[:due]; visits added meanwhile are behind it.
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range batch {
		if gone[b.visit.PetID] {
			w.dropLocked(b, "pet not found")
			continue
		}
		w.store.put(b.visit)
		w.flushed++
	}
	w.pending = slices.Delete(w.pending, 0, due)
}

func (w *writeBehind) dropAll(reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return
	}
	for _, b := range w.pending {
		w.dropLocked(b, reason)
	}
	w.log.Warn("write-behind buffer discarded", zap.Int("visits", len(w.pending)),
		zap.Time("firstAcknowledged", w.pending[0].ackedAt), zap.Time("lastAcknowledged", w.pending[len(w.pending)-1].ackedAt),
		zap.String("reason", reason))
	w.pending = nil
}

func (w *writeBehind) dropLocked(b bufferedVisit, reason string) {
	w.dropped = append(w.dropped, DroppedVisit{Visit: b.visit, AcknowledgedAt: b.ackedAt, DroppedAt: w.now(), Reason: reason})
}

// status serves GET /actuator/writebehind.
func (w *writeBehind) status(rw http.ResponseWriter, _ *http.Request) {
	w.mu.Lock()
	st := WriteBehindStatus{Delay: w.delay.String(), Pending: len(w.pending), Flushed: w.flushed, Dropped: slices.Clone(w.dropped)}
	w.mu.Unlock()
	if st.Dropped == nil {
		st.Dropped = []DroppedVisit{}
	}
	writeJSON(rw, http.StatusOK, st)
}
