package serve_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/serve"
)

// A main wires configuration, the server and its services, then runs until
// SIGTERM. (authFn would come from the grpcauth package.)
func Example() {
	run := func() int {
		fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
		cfg := serve.Config{Name: "catalogsvc"}
		serve.RegisterFlags(fs, &cfg, ":8082", ":9082")
		if err := envflag.Parse(fs, "CATALOGSVC", os.Args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintln(os.Stderr, "catalogsvc:", err)
			return 2
		}
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "catalogsvc:", err)
			return 2
		}
		cfg.Logger = cfg.NewLogger(os.Stderr)

		srv, err := serve.New(cfg,
			// serve.WithAuth(authFn, []string{"/tokencart.catalog.v1.CatalogService/ListProducts"}),
			serve.WithReadiness("database", func(ctx context.Context) error { return nil /* db.PingContext(ctx) */ }),
		)
		if err != nil {
			cfg.Logger.Error("startup failed", "error", err)
			return 1
		}
		// catalogv1.RegisterCatalogServiceServer(srv.GRPC(), handler)

		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := srv.Run(ctx); err != nil {
			cfg.Logger.Error("server failed", "error", err)
			return 1
		}
		return 0
	}
	_ = run // os.Exit(run()) in a real main
}
