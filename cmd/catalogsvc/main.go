// Command catalogsvc serves tokencart's product catalog and shopping carts.
// Every flag also reads a CATALOGSVC_* environment variable; run with -h
// for the list. It exits 2 on an invalid configuration and 1 when it cannot
// start or fails while serving.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/runtimetune"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/version"
)

func main() {
	fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
	cfg := catalogsvc.RegisterFlags(fs)
	fs.Var(version.NewFlag("catalogsvc"), "version", version.Usage)
	envflag.MustParse(fs, catalogsvc.EnvPrefix, os.Args[1:], cfg.Validate)
	serve.Main("catalogsvc", func(ctx context.Context) error { return run(ctx, cfg) })
}

// run serves until ctx is done.
func run(ctx context.Context, cfg *catalogsvc.Config) error {
	log := cfg.Serve.NewLogger(os.Stderr)
	cfg.Serve.Logger = log
	runtimetune.Apply(log)
	st, err := store.Open(ctx, cfg.DSN, log)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	auth, err := grpcauth.Dial(cfg.Auth, log)
	if err != nil {
		return err
	}
	defer auth.Close()
	svc, err := catalogsvc.New(ctx, *cfg, st, auth, log)
	if err != nil {
		return err
	}
	srv, err := serve.New(cfg.Serve, svc.ServeOptions()...)
	if err != nil {
		return err
	}
	log.Info("catalogsvc starting", "store", st.Dialect(), "cart_mode", cfg.CartMode, "auth_mode", cfg.Auth.Mode)
	return srv.Run(ctx)
}
