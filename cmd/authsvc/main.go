// Command authsvc is tokencart's identity service. Every flag also reads
// an AUTHSVC_* environment variable; run with -h for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/sqlstore"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/serve"
)

func main() {
	fs := flag.NewFlagSet("authsvc", flag.ContinueOnError)
	cfg := authsvc.RegisterFlags(fs)
	err := envflag.Parse(fs, authsvc.EnvPrefix, os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "authsvc: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "authsvc: %v\n", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, cfg *authsvc.Config) error {
	log := cfg.Serve.NewLogger(os.Stderr)
	cfg.Serve.Logger = log
	store, err := sqlstore.Open(ctx, cfg.DSN, log)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()
	svc, err := authsvc.New(ctx, *cfg, store, log)
	if err != nil {
		return err
	}
	srv, err := serve.New(cfg.Serve, svc.ServeOptions()...)
	if err != nil {
		return err
	}
	authv1.RegisterAuthServiceServer(srv.GRPC(), svc)
	log.Info("authsvc starting", "store", store.Dialect(), "issuer", cfg.Issuer, "audience", cfg.Audience)

	// The service's background work and its streams end with the server:
	// at the signal, or when the server fails (which cancels gctx).
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	return g.Wait()
}
