package authsvc

import (
	"context"
	"sync"

	"google.golang.org/grpc/peer"
)

// connectionOf names the client connection of a call: its peer's address
// and port. Not the address alone: behind a service mesh's sidecar, or on
// one host, every replica's calls come from one address.
func connectionOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "unknown"
}

// streamLimiter bounds the open WatchRevocations streams per client
// connection and in all. It remembers only connections with open streams.
type streamLimiter struct {
	perAddress, total int

	mu     sync.Mutex     // guards open and opened
	open   map[string]int // open streams by connection
	opened int            // open streams in all
}

func newStreamLimiter(perAddress, total int) *streamLimiter {
	return &streamLimiter{perAddress: perAddress, total: total, open: map[string]int{}}
}

// acquire counts a stream from addr, or refuses it; release ends it.
func (l *streamLimiter) acquire(addr string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr] >= l.perAddress || l.opened >= l.total {
		return nil, errTooManyStreams
	}
	l.open[addr]++
	l.opened++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.opened--
		if l.open[addr]--; l.open[addr] == 0 {
			delete(l.open, addr)
		}
	}, nil
}
