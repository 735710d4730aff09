// Command alertsink is the lab's Alertmanager webhook receiver: it
// records every notification as JSON lines in a file (see package
// lab/alertsink).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"github.com/chaosd/chaosd/lab/alertsink"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "alertsink:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("alertsink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9095", "address to accept Alertmanager's webhook on (POST "+alertsink.Path+")")
	file := fs.String("file", "", "JSON lines file to append notifications to (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--file is required")
	}
	sink, err := alertsink.Open(*file)
	if err != nil {
		return err
	}
	defer sink.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// Bounded like every listener of the project: connections, header
	// size, read time and (in the sink) body size.
	srv := &http.Server{Handler: sink, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(netutil.LimitListener(ln, 64)) }()
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
