package bench_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/bench"
)

// TestPostgresLatency runs the PostgreSQL scenarios with the database
// behind the latency proxy: they must work, and a session lookup, one round
// trip to PostgreSQL at least, cannot take less than the latency added both
// ways (a lower bound, certain however busy the machine).
func TestPostgresLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the services as processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const latency = 2 * time.Millisecond
	var procLog bytes.Buffer
	rep, err := bench.Run(ctx, bench.Options{
		Only:            []string{bench.ScGetCartSession, bench.ScAddItemPostgres},
		Concurrency:     2,
		Duration:        200 * time.Millisecond,
		Warmup:          50 * time.Millisecond,
		Rounds:          1,
		PostgresProxy:   true,
		PostgresLatency: latency,
		RequirePostgres: os.Getenv("CI") == "true",
		ProcessLog:      &procLog,
		Progress:        testWriter{t},
	})
	if err != nil {
		t.Fatalf("Run: %v\nprocess output:\n%s", err, tail(procLog.String()))
	}
	if len(rep.Skipped) > 0 {
		t.Skipf("skipped without PostgreSQL: %v", rep.Skipped)
	}
	for _, s := range rep.Scenarios {
		if s.Median.Calls == 0 || s.Median.Errors > 0 {
			t.Errorf("%s: %d calls, %d errors (%s)", s.Name, s.Median.Calls, s.Median.Errors, s.Median.ErrMsg)
		}
		if s.Median.P50 < 2*latency {
			t.Errorf("%s: p50 %v with PostgreSQL %v away each way; want at least %v", s.Name, s.Median.P50, latency, 2*latency)
		}
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "adding 2ms each way") {
		t.Errorf("report does not say PostgreSQL was behind the proxy:\n%s", md.String())
	}
}
