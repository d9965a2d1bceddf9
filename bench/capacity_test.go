package bench

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCapacityProject checks the model on made-up figures worked out by
// hand: 2-core replicas and a 10-core PostgreSQL at 50 % utilisation give
// each replica 1e6 core-µs/s and PostgreSQL 5e6.
func TestCapacityProject(t *testing.T) {
	t.Parallel()
	m := CapacityModel{ReplicaCores: 2, PostgresCores: 10, Utilization: 0.5, MaxReplicas: 10}
	caps := m.Project([]Design{
		{Name: "tokens", Scenario: ScGetCart, ReplicaUS: 50},                            // 20 000/s per replica, no ceiling
		{Name: "sessions", Scenario: ScGetCartSession, ReplicaUS: 100, PostgresUS: 100}, // 10 000/s per replica, 50 000/s ceiling
		{Name: "store", Scenario: ScAddItemPostgres, ReplicaUS: 200, PostgresUS: 400},   // 5 000/s per replica, 12 500/s ceiling
	})
	tests := []struct {
		i           int
		perReplica  float64
		ceiling     float64
		saturatesAt int
		want        map[int]float64 // replicas: calls/s
	}{
		{0, 20000, math.Inf(1), 0, map[int]float64{1: 20000, 5: 100000, 10: 200000}},
		{1, 10000, 50000, 5, map[int]float64{1: 10000, 4: 40000, 5: 50000, 10: 50000}},
		{2, 5000, 12500, 3, map[int]float64{1: 5000, 2: 10000, 3: 12500, 10: 12500}},
	}
	for _, tt := range tests {
		c := caps[tt.i]
		if c.PerReplica != tt.perReplica || c.Ceiling != tt.ceiling || c.SaturatesAt != tt.saturatesAt {
			t.Errorf("%s: per replica %v, ceiling %v, saturates at %d; want %v, %v, %d",
				c.Name, c.PerReplica, c.Ceiling, c.SaturatesAt, tt.perReplica, tt.ceiling, tt.saturatesAt)
		}
		if len(c.Throughput) != m.MaxReplicas {
			t.Fatalf("%s: %d points, want %d", c.Name, len(c.Throughput), m.MaxReplicas)
		}
		for n, want := range tt.want {
			if got := c.Throughput[n-1]; got != want {
				t.Errorf("%s at %d replicas: %v calls/s, want %v", c.Name, n, got, want)
			}
		}
	}
	for n, want := range map[int]float64{1: 2, 5: 2, 10: 4} {
		if got, ok := TokensOverSessions(caps, n); !ok || got != want {
			t.Errorf("tokens / sessions at %d replicas = %v, %v; want %v", n, got, ok, want)
		}
	}
	if _, ok := TokensOverSessions(caps[1:], 5); ok {
		t.Error("tokens / sessions without tokens: ok, want not")
	}
}

// TestCapacityReport: the report's designs come from its scenarios'
// medians, the table and the plot are written, and a run without those
// scenarios writes neither table nor error.
func TestCapacityReport(t *testing.T) {
	t.Parallel()
	rep := &Report{Scenarios: []ScenarioResult{
		{Name: ScGetCart, Median: Round{ServerCPU: 40, PostgresCPU: 2}}, // other work on the server: not request mode's
		{Name: ScGetCartSession, Median: Round{ServerCPU: 45, PostgresCPU: 60}},
		{Name: ScAddItemPostgres, Median: Round{ServerCPU: 90, PostgresCPU: 85}},
		{Name: ScFloor, Median: Round{ServerCPU: 25}},
	}}
	caps := rep.Capacity()
	if len(caps) != 3 || caps[0].PostgresUS != 0 || caps[1].Scenario != ScAddItemPostgres || caps[1].PostgresUS != 85 {
		t.Fatalf("designs %+v, want getcart, additem-postgres, getcart-session from the medians", caps)
	}
	path := filepath.Join(t.TempDir(), "capacity.svg")
	if err := WriteCapacityPlot(path, DefaultCapacityModel, caps); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("plot: %v, %.80q", err, b)
	}
	var buf bytes.Buffer
	writeCapacity(&buf, DefaultCapacityModel, caps, "capacity.svg")
	for _, want := range []string{"| tokens, request mode (GetCart) | 40.0 | 0.0 | 35000 | none | never", "Sessions saturate PostgreSQL at"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	writeCapacity(&buf, DefaultCapacityModel, (&Report{}).Capacity(), "")
	if buf.Len() != 0 {
		t.Errorf("a run without the scenarios wrote %q", buf.String())
	}
}
