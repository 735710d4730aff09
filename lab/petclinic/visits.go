package petclinic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Reconnect is visits-service's policy after a failed call to
// customers-service (a knob that makes it misbehave on purpose).
type Reconnect struct {
	// Never: once customers-service failed, never call it again.
	Never bool
	// After: once customers-service failed, answer 500 without calling it
	// until this much time has passed. Zero (and !Never) is "immediate":
	// every request calls customers-service.
	After time.Duration
}

// ParseReconnect parses immediate|never|after:DURATION.
func ParseReconnect(s string) (Reconnect, error) {
	switch {
	case s == "" || s == "immediate":
		return Reconnect{}, nil
	case s == "never":
		return Reconnect{Never: true}, nil
	case strings.HasPrefix(s, "after:"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "after:"))
		if err != nil || d <= 0 {
			return Reconnect{}, fmt.Errorf("customers-reconnect %q: want after:DURATION with a positive duration", s)
		}
		return Reconnect{After: d}, nil
	}
	return Reconnect{}, fmt.Errorf("customers-reconnect %q: want immediate, never or after:DURATION", s)
}

func (r Reconnect) String() string {
	switch {
	case r.Never:
		return "never"
	case r.After > 0:
		return "after:" + r.After.String()
	}
	return "immediate"
}

// visits is visits-service. Every request validates the pet against
// customers-service (across the TGW); when that fails it answers 500.
type visits struct {
	store     *visitStore
	buffer    *writeBehind // nil: writes go to the store at once
	customers *upstream
	reconnect Reconnect
	timer     *timer
	log       *zap.Logger
	now       func() time.Time

	mu       sync.Mutex
	downTill time.Time // customers-service considered down until then
	downEver bool
}

func newVisits(r *router, m *Metrics, customers *upstream, rc Reconnect, writeBehind time.Duration, log *zap.Logger) *visits {
	v := &visits{store: newVisitStore(), customers: customers, reconnect: rc, timer: m.visitTimer(), log: log, now: time.Now}
	if writeBehind > 0 {
		v.buffer = newWriteBehind(writeBehind, v.store, v.validatePet, log.Named("writebehind"))
		r.handle("GET", "/actuator/writebehind", v.buffer.status)
	}
	comp := func(m string) Component {
		return Component{Bean: "visitResource", Class: visitResourceClass, Method: m}
	}
	r.controller("GET", "/pets/visits", comp("read"), v.readMany)
	r.controller("GET", "/owners/*/pets/{petId}/visits", comp("read"), v.readOne)
	r.controller("POST", "/owners/*/pets/{petId}/visits", comp("create"), v.create)
	return v
}

var errCustomersMarkedDown = errors.New("customers-service marked down")

// validatePet asks customers-service about the pet. found=false with a nil
// error means customers-service answered 404.
func (v *visits) validatePet(ctx context.Context, petID int) (found bool, err error) {
	v.mu.Lock()
	if v.downEver || v.now().Before(v.downTill) {
		v.mu.Unlock()
		return false, errCustomersMarkedDown
	}
	v.mu.Unlock()
	var pet PetDetails
	err = v.customers.getJSON(ctx, "/owners/*/pets/{petId}", "/owners/*/pets/"+strconv.Itoa(petID), &pet)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		v.markDown(err)
		return false, err
	}
	return true, nil
}

func (v *visits) markDown(err error) {
	if v.reconnect == (Reconnect{}) {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.reconnect.Never {
		v.downEver = true
	} else {
		v.downTill = v.now().Add(v.reconnect.After)
	}
	v.log.Warn("customers-service marked down", zap.String("reconnect", v.reconnect.String()), zap.Error(err))
}

func upstreamException(err error) string {
	if errors.Is(err, errCustomersMarkedDown) {
		return "IllegalStateException"
	}
	var se *StatusError
	if errors.As(err, &se) {
		return "HttpServerErrorException"
	}
	return "ResourceAccessException"
}

func (v *visits) readMany(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	exc := v.doReadMany(w, r)
	v.timer.observe(time.Since(start), visitResourceClass, exc, "read")
}

func (v *visits) doReadMany(w http.ResponseWriter, r *http.Request) string {
	var ids []int
	for _, part := range strings.Split(r.URL.Query().Get("petId"), ",") {
		if part == "" {
			continue
		}
		id, err := strconv.Atoi(part)
		if err != nil {
			springError(w, r, http.StatusBadRequest, "MethodArgumentTypeMismatchException")
			return "MethodArgumentTypeMismatchException"
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		springError(w, r, http.StatusBadRequest, "MissingServletRequestParameterException")
		return "MissingServletRequestParameterException"
	}
	if _, err := v.validatePet(r.Context(), ids[0]); err != nil {
		exc := upstreamException(err)
		springError(w, r, http.StatusInternalServerError, exc)
		return exc
	}
	writeJSON(w, http.StatusOK, Visits{Items: v.byPets(ids)})
	return "none"
}

func (v *visits) readOne(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	exc := v.doReadOne(w, r)
	v.timer.observe(time.Since(start), visitResourceClass, exc, "read")
}

func (v *visits) doReadOne(w http.ResponseWriter, r *http.Request) string {
	id, err := strconv.Atoi(r.PathValue("petId"))
	if err != nil {
		springError(w, r, http.StatusBadRequest, "MethodArgumentTypeMismatchException")
		return "MethodArgumentTypeMismatchException"
	}
	if _, err := v.validatePet(r.Context(), id); err != nil {
		exc := upstreamException(err)
		springError(w, r, http.StatusInternalServerError, exc)
		return exc
	}
	writeJSON(w, http.StatusOK, v.byPets([]int{id}))
	return "none"
}

func (v *visits) create(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	exc := v.doCreate(w, r)
	v.timer.observe(time.Since(start), visitResourceClass, exc, "create")
}

func (v *visits) doCreate(w http.ResponseWriter, r *http.Request) string {
	id, err := strconv.Atoi(r.PathValue("petId"))
	if err != nil {
		springError(w, r, http.StatusBadRequest, "MethodArgumentTypeMismatchException")
		return "MethodArgumentTypeMismatchException"
	}
	var in Visit
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		springError(w, r, http.StatusBadRequest, "HttpMessageNotReadableException")
		return "HttpMessageNotReadableException"
	}
	found, err := v.validatePet(r.Context(), id)
	if err != nil {
		exc := upstreamException(err)
		springError(w, r, http.StatusInternalServerError, exc)
		return exc
	}
	if !found {
		springError(w, r, http.StatusNotFound, "ResourceNotFoundException")
		return "ResourceNotFoundException"
	}
	in.PetID = id
	if in.Date == "" {
		in.Date = time.Now().Format(time.DateOnly)
	}
	if v.buffer != nil {
		writeJSON(w, http.StatusCreated, v.buffer.add(in))
		return "none"
	}
	writeJSON(w, http.StatusCreated, v.store.add(in))
	return "none"
}

// byPets returns the visits of the pets ids, the write-behind buffer's
// included (read-your-writes), in ID order.
func (v *visits) byPets(ids []int) []Visit {
	out := v.store.byPets(ids)
	if v.buffer == nil {
		return out
	}
	out = append(out, v.buffer.byPets(ids)...)
	slices.SortFunc(out, func(a, b Visit) int { return a.ID - b.ID })
	return out
}
