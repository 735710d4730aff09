// Command petclinic runs one Spring PetClinic stand-in service
// (api-gateway, customers-service or visits-service) for the local lab.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/lab/petclinic"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "petclinic:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := petclinic.DefaultConfig("")
	var reconnect string
	fs := flag.NewFlagSet("petclinic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Service, "service", "", "api-gateway | customers-service | visits-service")
	fs.StringVar(&cfg.Listen, "listen", "", "listen address (default :8080/:8081/:8082 by service)")
	fs.StringVar(&cfg.CustomersURL, "customers-url", cfg.CustomersURL, "customers-service base URL")
	fs.StringVar(&cfg.VisitsURL, "visits-url", cfg.VisitsURL, "visits-service base URL (api-gateway)")
	fs.DurationVar(&cfg.ClientTimeout, "client-timeout", cfg.ClientTimeout, "timeout of calls outside the circuit breaker")
	fs.DurationVar(&cfg.VisitsTimeout, "visits-timeout", cfg.VisitsTimeout, "TimeLimiter of the gateway's visits call")
	fs.IntVar(&cfg.Breaker.SlidingWindowSize, "breaker-window", cfg.Breaker.SlidingWindowSize, "circuit breaker COUNT_BASED sliding window size")
	fs.IntVar(&cfg.Breaker.MinimumNumberOfCalls, "breaker-min-calls", cfg.Breaker.MinimumNumberOfCalls, "circuit breaker minimumNumberOfCalls")
	fs.Float64Var(&cfg.Breaker.FailureRateThreshold, "breaker-failure-rate", cfg.Breaker.FailureRateThreshold, "circuit breaker failureRateThreshold (percent)")
	fs.DurationVar(&cfg.Breaker.WaitDurationInOpenState, "breaker-wait-open", cfg.Breaker.WaitDurationInOpenState, "circuit breaker waitDurationInOpenState")
	fs.IntVar(&cfg.Breaker.PermittedNumberOfCallsInHalfOpenState, "breaker-half-open-calls", cfg.Breaker.PermittedNumberOfCallsInHalfOpenState, "circuit breaker permittedNumberOfCallsInHalfOpenState")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", 0, "share (0..1) of API requests that fail with a 500 whatever happens (a flaky service)")
	fs.DurationVar(&cfg.WriteBehind, "write-behind", 0, "visits-service: acknowledge new visits at once and flush them this much later; a flush that cannot reach customers-service discards the buffer (0: off)")
	fs.StringVar(&reconnect, "customers-reconnect", "immediate", "visits-service after a failed customers call: immediate | never | after:DURATION")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	rc, err := petclinic.ParseReconnect(reconnect)
	if err != nil {
		return err
	}
	cfg.Reconnect = rc
	if cfg.Listen == "" {
		cfg.Listen = map[string]string{petclinic.APIGateway: ":8080", petclinic.CustomersService: ":8081", petclinic.VisitsService: ":8082"}[cfg.Service]
	}
	log, err := zap.NewProduction()
	if err != nil {
		return fmt.Errorf("build logger: %w", err)
	}
	defer func() { _ = log.Sync() }()
	srv, err := petclinic.New(cfg, log.Named(cfg.Service))
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
