package abuse

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
)

// Anonymous callers of authsvc's revocation feed, each pausing watchPause
// between attempts.
const (
	watchCallers = 20
	watchPause   = 2 * time.Millisecond
	// watchCut ends a stream that opened (none should) so that its caller
	// tries again.
	watchCut = time.Second
)

// watcher opens WatchRevocations streams without a service credential.
type watcher struct {
	auth     authv1.AuthServiceClient // from attackerSource
	ends     codeCounts               // how each attempt ended
	messages atomic.Int64             // stream messages received: must stay 0
	entries  atomic.Int64             // revocation entries received: must stay 0
}

func (w *watcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range watchCallers {
		wg.Go(func() {
			for ctx.Err() == nil {
				w.attempt(ctx)
				pause(ctx, watchPause)
			}
		})
	}
	wg.Wait()
}

// attempt opens one stream and reads it until it fails or watchCut.
func (w *watcher) attempt(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, watchCut)
	defer cancel()
	stream, err := w.auth.WatchRevocations(sctx, &authv1.WatchRevocationsRequest{})
	for err == nil {
		var resp *authv1.WatchRevocationsResponse
		if resp, err = stream.Recv(); err == nil {
			w.messages.Add(1)
			w.entries.Add(int64(len(resp.GetRevocations())))
		}
	}
	if !ended(ctx) {
		w.ends.add(err)
	}
}
