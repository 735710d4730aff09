package petclinic

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Service names, as Spring's spring.application.name.
const (
	APIGateway       = "api-gateway"
	CustomersService = "customers-service"
	VisitsService    = "visits-service"
)

// Config configures one stand-in service.
type Config struct {
	Service      string // api-gateway | customers-service | visits-service
	Listen       string
	CustomersURL string // api-gateway, visits-service
	VisitsURL    string // api-gateway
	// ClientTimeout bounds calls outside the circuit breaker.
	ClientTimeout time.Duration
	// VisitsTimeout is the gateway's TimeLimiter for the visits call.
	VisitsTimeout time.Duration
	Breaker       BreakerConfig
	Reconnect     Reconnect
	// WriteBehind, when positive, makes visits-service acknowledge new
	// visits at once and flush them this much later; a flush that cannot
	// reach customers-service discards the buffer (see writeBehind).
	WriteBehind time.Duration
	// ChaosMonkey configures the Chaos Monkey for Spring Boot actuator
	// (disabled with CMSB's defaults unless set).
	ChaosMonkey ChaosMonkeyConfig
	// ErrorRate is the share (0..1) of API requests that fail with a 500
	// whatever happens (a knob for a flaky service); 0 by default.
	ErrorRate float64
}

// DefaultConfig returns the defaults for service.
func DefaultConfig(service string) Config {
	return Config{
		Service:       service,
		CustomersURL:  "http://10.0.2.10:8081",
		VisitsURL:     "http://10.1.1.10:8082",
		ClientTimeout: 2 * time.Second,
		VisitsTimeout: time.Second,
		Breaker:       DefaultBreakerConfig(),
	}
}

// Server is a stand-in service ready to serve.
type Server struct {
	cfg     Config
	Metrics *Metrics
	Breaker *Breaker // api-gateway only
	// ChaosMonkey is the service's Chaos Monkey for Spring Boot.
	ChaosMonkey *ChaosMonkey
	handler     http.Handler
	log         *zap.Logger
	// buffer is visits-service's write-behind buffer (nil when off).
	buffer *writeBehind
}

// New builds the service described by cfg.
func New(cfg Config, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	m := NewMetrics()
	cm := NewChaosMonkey(cfg.ChaosMonkey, m, log.Named("chaosmonkey"))
	if cfg.ErrorRate < 0 || cfg.ErrorRate > 1 || math.IsNaN(cfg.ErrorRate) {
		return nil, fmt.Errorf("error rate must be between 0 and 1, got %g", cfg.ErrorRate)
	}
	r := newRouter(m, cm)
	r.errorRate, r.rnd = cfg.ErrorRate, rand.Float64
	s := &Server{cfg: cfg, Metrics: m, ChaosMonkey: cm, handler: r, log: log}
	switch cfg.Service {
	case CustomersService:
		newCustomers(r)
	case VisitsService:
		if cfg.CustomersURL == "" {
			return nil, errors.New("visits-service needs a customers-service URL")
		}
		if cfg.WriteBehind < 0 {
			return nil, fmt.Errorf("write-behind delay must not be negative, got %s", cfg.WriteBehind)
		}
		v := newVisits(r, m, newUpstream(CustomersService, cfg.CustomersURL, cfg.ClientTimeout, m).watched(cm, restTemplateComponent), cfg.Reconnect, cfg.WriteBehind, log)
		s.buffer = v.buffer
	case APIGateway:
		if cfg.CustomersURL == "" || cfg.VisitsURL == "" {
			return nil, errors.New("api-gateway needs customers-service and visits-service URLs")
		}
		if cfg.VisitsTimeout <= 0 {
			return nil, fmt.Errorf("visits timeout must be positive, got %s", cfg.VisitsTimeout)
		}
		b, err := NewBreaker(cfg.Breaker, m.Registry, nil, func(from, to BreakerState) {
			log.Info("circuit breaker state change", zap.String("breaker", cfg.Breaker.Name), zap.String("from", string(from)), zap.String("to", string(to)))
		})
		if err != nil {
			return nil, err
		}
		s.Breaker = b
		if err := newRoutes(r, cfg.CustomersURL, cfg.VisitsURL, cfg.VisitsTimeout, log); err != nil {
			return nil, err
		}
		newGateway(r, newUpstream(CustomersService, cfg.CustomersURL, cfg.ClientTimeout, m).watched(cm, customersClientComponent),
			newUpstream(VisitsService, cfg.VisitsURL, cfg.ClientTimeout, m).watched(cm, visitsClientComponent), b, cfg.VisitsTimeout, log)
	default:
		return nil, fmt.Errorf("unknown service %q (want %s, %s or %s)", cfg.Service, APIGateway, CustomersService, VisitsService)
	}
	return s, nil
}

// Handler is the service's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves on cfg.Listen until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var bg sync.WaitGroup
	defer bg.Wait()
	bgCtx, stopBg := context.WithCancel(ctx)
	defer stopBg()
	if s.buffer != nil {
		bg.Go(func() { s.buffer.run(bgCtx) })
	}
	s.log.Info("serving", zap.String("service", s.cfg.Service), zap.String("listen", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", s.cfg.Service, err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if s.Breaker != nil {
		s.Breaker.Close()
	}
	s.ChaosMonkey.Close()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down %s: %w", s.cfg.Service, err)
	}
	s.log.Info("stopped", zap.String("service", s.cfg.Service))
	return nil
}
