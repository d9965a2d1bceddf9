// Command authsvc is tokencart's identity service. Every flag also reads
// an AUTHSVC_* environment variable; run with -h for the list. It exits 2
// on an invalid configuration and 1 when it cannot start or fails while
// serving.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/store"
	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/runtimetune"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/version"
)

func main() {
	fs := flag.NewFlagSet("authsvc", flag.ContinueOnError)
	cfg := authsvc.RegisterFlags(fs)
	fs.Var(version.NewFlag("authsvc"), "version", version.Usage)
	envflag.MustParse(fs, authsvc.EnvPrefix, os.Args[1:], cfg.Validate)
	serve.Main("authsvc", func(ctx context.Context) error { return run(ctx, cfg) })
}

// run serves until ctx is done.
func run(ctx context.Context, cfg *authsvc.Config) error {
	log := cfg.Serve.NewLogger(os.Stderr)
	cfg.Serve.Logger = log
	runtimetune.Apply(log)
	st, err := store.Open(ctx, cfg.DSN, log)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	svc, err := authsvc.New(ctx, *cfg, st, log)
	if err != nil {
		return err
	}
	srv, err := serve.New(cfg.Serve, svc.ServeOptions()...)
	if err != nil {
		return err
	}
	log.Info("authsvc starting", "store", st.Dialect(), "issuer", cfg.Issuer, "audience", cfg.Audience)
	return srv.Run(ctx)
}
