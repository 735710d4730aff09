package petclinic

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// gateway is api-gateway's owner-details aggregation.
type gateway struct {
	customers    *upstream
	visits       *upstream
	breaker      *Breaker
	visitTimeout time.Duration
	log          *zap.Logger
}

func newGateway(r *router, customers, visits *upstream, b *Breaker, visitTimeout time.Duration, log *zap.Logger) *gateway {
	g := &gateway{customers: customers, visits: visits, breaker: b, visitTimeout: visitTimeout, log: log}
	r.controller("GET", "/api/gateway/owners/{ownerId}", Component{Bean: "apiGatewayController",
		Class: "org.springframework.samples.petclinic.api.boundary.web.ApiGatewayController", Method: "getOwnerDetails"}, g.ownerDetails)
	return g
}

func (g *gateway) ownerDetails(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("ownerId"))
	if err != nil {
		springError(w, r, http.StatusBadRequest, "NumberFormatException")
		return
	}
	var owner Owner
	if err := g.customers.getJSON(r.Context(), "/owners/{ownerId}", "/owners/"+strconv.Itoa(id), &owner); err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			springError(w, r, se.Code, "WebClientResponseException")
			return
		}
		springError(w, r, http.StatusInternalServerError, "WebClientRequestException")
		return
	}
	ids := make([]string, len(owner.Pets))
	for i, p := range owner.Pets {
		ids[i] = strconv.Itoa(p.ID)
	}
	var visits Visits
	err = g.breaker.Execute(r.Context(), func(ctx context.Context) error {
		// TimeLimiter: the visits call gets visitTimeout, then it is a failure.
		ctx, cancel := context.WithTimeout(ctx, g.visitTimeout)
		defer cancel()
		return g.visits.getJSON(ctx, "/pets/visits", "/pets/visits?petId="+strings.Join(ids, ","), &visits)
	})
	if err != nil {
		// Fallback of getOwnerDetails: an empty visits list, still 200.
		visits = Visits{Items: []Visit{}}
	}
	byPet := map[int][]Visit{}
	for _, v := range visits.Items {
		byPet[v.PetID] = append(byPet[v.PetID], v)
	}
	out := OwnerDetails{ID: owner.ID, FirstName: owner.FirstName, LastName: owner.LastName, Address: owner.Address, City: owner.City, Telephone: owner.Telephone, Pets: []PetDetailsWithVisits{}}
	for _, p := range owner.Pets {
		vs := byPet[p.ID]
		if vs == nil {
			vs = []Visit{}
		}
		out.Pets = append(out.Pets, PetDetailsWithVisits{ID: p.ID, Name: p.Name, BirthDate: p.BirthDate, Type: p.Type, Visits: vs})
	}
	writeJSON(w, http.StatusOK, out)
}
