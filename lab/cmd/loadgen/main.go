// Command loadgen drives steady load at the lab's api-gateway and writes
// the per-second ground-truth file.
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

	"github.com/chaosd/chaosd/lab/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	o := loadgen.DefaultOptions()
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Target, "target", "", "api-gateway base URL, e.g. http://10.254.0.11:8080")
	fs.IntVar(&o.RPS, "rps", o.RPS, "requests per second")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to run (0: until SIGTERM)")
	fs.StringVar(&o.Truth, "truth", "", "ground-truth CSV to write")
	fs.IntVar(&o.Owners, "owners", o.Owners, "owner ids 1..N, round-robin")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	log, err := zap.NewProduction()
	if err != nil {
		return fmt.Errorf("build logger: %w", err)
	}
	defer func() { _ = log.Sync() }()
	return loadgen.Run(ctx, o, log.Named("loadgen"))
}
