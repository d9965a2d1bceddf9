package bench_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/bench"
)

// TestSmoke runs the whole harness for a moment against real processes —
// build, start, register, every scenario, a profile, the report — so that
// `make test` catches a broken `make bench`. It asserts that every scenario
// made successful calls and none failed; never anything about speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dozen processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var procLog bytes.Buffer
	profiles := t.TempDir()
	only := append(bench.ScenarioNames(), bench.ScFloorOwnConn, bench.ScGetCartOwnConn)
	rep, err := bench.Run(ctx, bench.Options{
		Only:            only,
		Concurrency:     2,
		Duration:        150 * time.Millisecond,
		Warmup:          50 * time.Millisecond,
		Rounds:          1,
		RequirePostgres: os.Getenv("CI") == "true",
		ProfileDir:      profiles,
		Profile:         []string{bench.ScFloor},
		ProfileDuration: time.Second,
		ProcessLog:      &procLog,
		Progress:        testWriter{t},
	})
	if err != nil {
		t.Fatalf("Run: %v\nprocess output:\n%s", err, tail(procLog.String()))
	}
	if len(rep.Skipped) > 0 {
		t.Logf("skipped without PostgreSQL: %v", rep.Skipped)
	}
	want := len(only) - len(rep.Skipped)
	if len(rep.Scenarios) != want {
		t.Errorf("%d scenarios reported, want %d", len(rep.Scenarios), want)
	}
	for _, s := range rep.Scenarios {
		if len(s.Rounds) != 1 {
			t.Errorf("%s: %d rounds, want 1", s.Name, len(s.Rounds))
		}
		if s.Median.Calls == 0 || s.Median.Errors > 0 {
			t.Errorf("%s: %d calls, %d errors (%s)", s.Name, s.Median.Calls, s.Median.Errors, s.Median.ErrMsg)
		}
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	for _, s := range rep.Scenarios {
		if !strings.Contains(md.String(), "`"+s.Name+"`") {
			t.Errorf("report lacks %s:\n%s", s.Name, md.String())
		}
	}
	for _, f := range []string{"floor.catalog.top.txt", "floor.loadgen.top.txt"} {
		b, err := os.ReadFile(filepath.Join(profiles, f))
		if err != nil || !bytes.Contains(b, []byte("flat%")) {
			t.Errorf("profile summary %s: %v\n%s", f, err, b)
		}
	}
}

func tail(s string) string {
	if len(s) > 8<<10 {
		return "…" + s[len(s)-8<<10:]
	}
	return s
}

// testWriter sends the harness's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
