// Command cadvisor serves the lab's stand-in for the kubelet's cAdvisor
// memory metrics (see package lab/cadvisor).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chaosd/chaosd/lab/cadvisor"
)

type containerFlags []cadvisor.Container

func (c *containerFlags) String() string { return fmt.Sprint(len(*c), " containers") }
func (c *containerFlags) Set(s string) error {
	ct, err := cadvisor.ParseContainer(s)
	if err != nil {
		return err
	}
	*c = append(*c, ct)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cadvisor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cadvisor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8085", "address to serve /metrics on")
	var cs containerFlags
	fs.Var(&cs, "container", "namespace/pod/container@node=CGROUP_DIR (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(cadvisor.NewCollector(cs))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
