package catalogsvc_test

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc"
)

// benchParallelism is goroutines per GOMAXPROCS: 8 on two cores is 16
// calls in flight: enough to keep both cores busy without queueing.
const benchParallelism = 8

// BenchmarkCart measures AddItem and GetCart through gRPC on loopback, per
// cart mode, with the server and the client in this process (so compare
// ratios, not absolute rates). Each goroutine is its own user with its own
// cart and token. Run with:
//
//	go test -run '^$' -bench 'BenchmarkCart' -benchtime 5s ./catalogsvc/
func BenchmarkCart(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			c := newCluster(b, m)
			r := c.start()
			b.Run("AddItem", func(b *testing.B) { benchCart(b, c, r, 0, (*shopper).benchAdd) })
			b.Run("GetCart", func(b *testing.B) { benchCart(b, c, r, 3, (*shopper).benchGet) })
		})
	}
}

// BenchmarkAuthFloor compares the unauthenticated floor (health check), a
// public catalog read, and an authenticated GetCart in request mode (no
// store) with the verified-token cache on and off.
func BenchmarkAuthFloor(b *testing.B) {
	c := newCluster(b, modes[2])
	r := c.start()
	b.Run("HealthCheck", func(b *testing.B) {
		health := healthpb.NewHealthClient(r.conn)
		parallel(b, func() error {
			_, err := health.Check(b.Context(), &healthpb.HealthCheckRequest{})
			return err
		})
	})
	b.Run("GetProduct", func(b *testing.B) {
		parallel(b, func() error {
			_, err := r.catalog.GetProduct(b.Context(), &catalogv1.GetProductRequest{ProductId: espresso})
			return err
		})
	})
	b.Run("GetCart/cache-on", func(b *testing.B) { benchCart(b, c, r, 3, (*shopper).benchGet) })
	noCache := c.start(func(cfg *catalogsvc.Config) { cfg.Auth.TokenCacheSize = 0 })
	b.Run("GetCart/cache-off", func(b *testing.B) { benchCart(b, c, noCache, 3, (*shopper).benchGet) })
}

// BenchmarkGetCartLogging compares GetCart (request mode, token cache on)
// under the logging policy's default (a JSON logger at info: a successful
// call writes no line), a logger at warn, and the full access log (a line
// per call, written to nothing), each on a replica of its own in one run,
// so their ratios are comparable:
//
//	go test -run '^$' -bench 'BenchmarkGetCartLogging' -count 5 ./catalogsvc/
func BenchmarkGetCartLogging(b *testing.B) {
	c := newCluster(b, modes[2])
	for _, bc := range []struct {
		name      string
		level     slog.Level
		accessLog bool
	}{
		{"default", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"access-log", slog.LevelInfo, true},
	} {
		r := c.start(func(cfg *catalogsvc.Config) {
			cfg.Serve.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: bc.level}))
			cfg.Serve.AccessLog = bc.accessLog
		})
		b.Run(bc.name, func(b *testing.B) { benchCart(b, c, r, 3, (*shopper).benchGet) })
	}
}

func parallel(b *testing.B, call func() error) {
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// reportCPU starts counting the process's CPU time (user and system, the
// client's and the server's: both are in this process) and returns the
// function that reports it per call as "cpu-ns/op". On a shared machine it
// is steadier than ns/op, which counts the time other work holds the cores.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() { b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op") }
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchUsers atomic.Int64

// benchCart runs call in parallel goroutines, each a shopper of its own
// whose cart starts with `lines` lines.
func benchCart(b *testing.B, c *cluster, r *replica, lines int, call func(*shopper, int) error) {
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		s := c.shopper(r, fmt.Sprint("bench-", benchUsers.Add(1)))
		s.t = b
		for i := range lines {
			if err := s.add(seedIDs[i], 1).err; err != nil {
				b.Error(err)
				return
			}
		}
		for i := 0; pb.Next(); i++ {
			if err := call(s, i); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

var seedIDs = []string{espresso, kenya, biscotti, sencha, press, dripper}

func (s *shopper) benchAdd(i int) error {
	err := s.add(seedIDs[i%len(seedIDs)], 1).err
	if status.Code(err) == codes.FailedPrecondition { // a line reached 999: start over
		err = s.clear().err
	}
	return err
}

func (s *shopper) benchGet(int) error { return s.get().err }
