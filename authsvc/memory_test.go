package authsvc_test

import (
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
)

// memoryAllowance is what the heap may grow by during the concurrent logins
// beyond the hashes' own memory: 200 calls' goroutines, gRPC buffers and
// store work, and argon2id buffers freed but not yet collected.
const memoryAllowance = 64 << 20

// TestConcurrentLoginsMemoryBound starts 200 logins at once and samples the
// heap while they run. Each argon2id hash holds its memory parameter (19
// MiB at the minimum) for its whole computation, so 200 at once would take
// 3.7 GiB; the hasher computes at most HashConcurrency at a time, so the
// heap in use grows by at most HashConcurrency × 19 MiB, times 1.5 for the
// garbage the collector lets accumulate (the test pins GOGC at 50), plus
// memoryAllowance. Logins beyond the limit wait for a slot, up to
// HashQueueTimeout (1s, the production default), then get
// ResourceExhausted with a RetryInfo; none fails otherwise.
//
// Not parallel: the heap is the whole test binary's, and must be this
// test's alone while it measures.
func TestConcurrentLoginsMemoryBound(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.HashQueueTimeout = authsvc.DefaultConfig().HashQueueTimeout
	}})
	s.Register(t, "crowd@example.com")
	cfg := s.Config
	hashMem := uint64(cfg.Argon2.Memory) << 10
	bound := uint64(cfg.HashConcurrency)*hashMem*3/2 + memoryAllowance

	// Pinned so that the bound holds whatever GOGC the run has: at 50 the
	// heap grows to 1.5 times the live memory before a collection.
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	const logins = 200
	errs := make([]error, logins)
	var wg sync.WaitGroup
	req := &authv1.LoginRequest{Email: "crowd@example.com", Password: authsvctest.Password}
	for i := range logins {
		wg.Go(func() {
			_, errs[i] = s.Client.Login(t.Context(), req)
		})
	}
	wg.Wait()
	close(stop)
	<-sampled

	ok, busy := 0, 0
	for _, err := range errs {
		switch status.Code(err) {
		case codes.OK:
			ok++
		case codes.ResourceExhausted:
			busy++
			retryDelay(t, err)
		default:
			t.Errorf("Login: %v; want OK, or ResourceExhausted for a login that found no hashing slot in time", err)
		}
	}
	growth := peak - base
	t.Logf("%d concurrent logins: %d succeeded, %d got ResourceExhausted; heap in use grew by at most %.1f MiB (bound %.1f MiB = %d slots × %d MiB × 1.5 + %d MiB)",
		logins, ok, busy, float64(growth)/(1<<20), float64(bound)/(1<<20), cfg.HashConcurrency, hashMem>>20, memoryAllowance>>20)
	if ok < cfg.HashConcurrency {
		t.Errorf("%d logins succeeded, want at least one per hashing slot (%d)", ok, cfg.HashConcurrency)
	}
	if growth > bound {
		t.Errorf("heap in use grew by %d bytes, over the bound of %d", growth, bound)
	}
}
