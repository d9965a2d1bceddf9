package serve

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main is the end of a command's main: it runs fn with a context that
// SIGINT or SIGTERM cancels, and exits 0 when fn returns nil, or 1 after
// printing fn's error, prefixed by name, to stderr.
func Main(name string, fn func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := fn(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
