// Command chaosctl is the command-line client of chaosd. All of it lives
// in package cli; main only builds the context and exits with the code
// cli.Run decided.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chaosd/chaosd/cli"
)

// version is set by the Makefile (-X main.version=...).
var version string

func main() {
	if version != "" {
		cli.Version = version
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
