package serve_test

import (
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/tokencart/tokencart/internal/serve"
)

// BenchmarkEmptyCall measures a trivial unary call over TCP through the
// server's whole chain, with and without the handler wrapper that counts
// malformed requests, one call at a time and from parallel clients. Besides ns/op it
// reports cpu-ns/op, the process's (client and server) CPU time per call,
// which other load on the machine disturbs less than wall time.
func BenchmarkEmptyCall(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []serve.Option
	}{
		{"malformed=on", nil},
		{"malformed=off", []serve.Option{serve.WithoutMalformedRequests()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// Info level, as in production: every call's line is built.
			logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
			ts := start(b, serve.Config{Logger: logger}, bc.opts...)
			client := testgrpc.NewTestServiceClient(dial(b, ts.GRPCAddr()))

			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				ctx := b.Context()
				cpu := processCPU(b)
				for b.Loop() {
					if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(8) // enough calls in flight to keep the CPUs busy
				ctx := b.Context()
				cpu := processCPU(b)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			})
		})
	}
}

// processCPU returns the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
