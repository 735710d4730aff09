package petclinic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
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

// Spring Cloud Gateway routes of api-gateway (application.yml): Path
// predicates with StripPrefix=2, and the default CircuitBreaker filter
// whose fallback (forward:/fallback) answers 503 when the service cannot
// be reached within the TimeLimiter's timeout.
var gatewayRoutes = []struct{ prefix, service string }{
	{"/api/customer/", CustomersService},
	{"/api/visit/", VisitsService},
}

// routeURITag is the uri tag WebFlux records for requests a gateway route
// serves: no handler pattern matched them.
const routeURITag = "UNKNOWN"

// newRoutes registers the proxy routes /api/customer/** and /api/visit/**.
func newRoutes(r *router, customersURL, visitsURL string, timeout time.Duration, log *zap.Logger) error {
	for _, rt := range gatewayRoutes {
		base := customersURL
		if rt.service == VisitsService {
			base = visitsURL
		}
		target, err := url.Parse(base)
		if err != nil {
			return fmt.Errorf("route %s**: %w", rt.prefix, err)
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				// StripPrefix=2: /api/visit/owners/1/... → /owners/1/...
				pr.Out.URL.Path = "/" + strings.TrimPrefix(pr.In.URL.Path, rt.prefix)
				pr.Out.URL.RawPath = ""
				pr.SetURL(target)
				pr.SetXForwarded()
			},
			Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
			ErrorLog:  zap.NewStdLog(log.Named("route")),
			ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
				log.Warn("route failed, fallback", zap.String("route", rt.service), zap.String("path", req.URL.Path), zap.Error(err))
				w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprintf(w, "%s is currently unavailable. Please try again later.", rt.service)
			},
		}
		r.mux.HandleFunc(rt.prefix+"{rest...}", func(w http.ResponseWriter, req *http.Request) {
			// The CircuitBreaker filter's TimeLimiter bounds the call.
			ctx, cancel := context.WithTimeout(req.Context(), timeout)
			defer cancel()
			r.serve(w, req.WithContext(ctx), routeURITag, proxy.ServeHTTP)
		})
	}
	return nil
}
