// Command catalogsvc serves tokencart's product catalog and shopping carts.
// Every setting is a flag, also readable from a CATALOGSVC_* environment
// variable (see -h). It exits 2 on an invalid configuration and 1 when it
// cannot start or fails while serving.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/internal/envflag"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
	cfg := catalogsvc.RegisterFlags(fs)
	if err := envflag.Parse(fs, catalogsvc.EnvPrefix, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "catalogsvc:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "catalogsvc: invalid configuration:\n%v\n", err)
		return 2
	}
	log := cfg.Serve.NewLogger(os.Stderr)
	cfg.Serve.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	svc, err := catalogsvc.New(ctx, *cfg, log)
	if err != nil {
		log.Error("startup failed", "error", err)
		return 1
	}
	return serveAndClose(ctx, svc, log)
}

// serveAndClose runs svc's server until ctx is done, then releases svc.
func serveAndClose(ctx context.Context, svc *catalogsvc.Service, log *slog.Logger) (code int) {
	defer func() {
		if err := svc.Close(); err != nil {
			log.Error("shutdown failed", "error", err)
			code = 1
		}
	}()
	srv, err := svc.NewServer()
	if err != nil {
		log.Error("startup failed", "error", err)
		return 1
	}
	if err := svc.Serve(ctx, srv); err != nil {
		log.Error("server failed", "error", err)
		return 1
	}
	return 0
}
