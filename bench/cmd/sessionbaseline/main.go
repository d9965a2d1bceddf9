// Command sessionbaseline is a benchmark-only server: CartService.GetCart
// answering an empty cart behind an auth hook that looks the caller's
// opaque session token up in PostgreSQL on every request — the "sessions
// in a database" design tokencart's stateless tokens replace. It runs on
// internal/serve, so the rest of the interceptor chain (metrics, logging,
// recovery, tracing) is the one catalogsvc has, and the bench compares the
// authentication step alone.
//
// It takes serve's flags plus --dsn (a postgres:// URL). Sessions are
// written by the bench, into the sessions table this command migrates.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/runtimetune"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/version"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("sessionbaseline", flag.ContinueOnError)
	cfg := serve.Config{Name: "sessionbaseline"}
	serve.RegisterFlags(fs, &cfg, "127.0.0.1:8090", "127.0.0.1:9090")
	fs.Var(version.NewFlag("sessionbaseline"), "version", version.Usage)
	dsn := fs.String("dsn", "", "PostgreSQL URL of the sessions table (required)")
	if err := envflag.Parse(fs, "SESSIONBASELINE", os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "sessionbaseline:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "sessionbaseline: invalid configuration:\n%v\n", err)
		return 2
	}
	if *dsn == "" {
		fmt.Fprintln(os.Stderr, "sessionbaseline: --dsn is required (a postgres:// URL)")
		return 2
	}
	log := cfg.NewLogger(os.Stderr)
	runtimetune.Apply(log) // as the services: the comparison is of designs, not GC settings
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	sessions, err := openSessions(ctx, *dsn, log)
	if err != nil {
		log.Error("startup failed", "error", err)
		return 1
	}
	defer sessions.close()
	srv, err := serve.New(cfg,
		serve.WithAuth(sessions.authFunc, nil),
		serve.WithReadiness("postgres", sessions.ping),
	)
	if err != nil {
		log.Error("startup failed", "error", err)
		return 1
	}
	registerCarts(srv.GRPC())
	if err := srv.Run(ctx); err != nil {
		log.Error("server failed", "error", err)
		return 1
	}
	return 0
}
