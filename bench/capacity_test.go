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

// TestCapacityRoundTrip: a design with a round trip to PostgreSQL is held
// to its pool: 8 connections each held 3 900 + 100 µs serve 2 000 calls/s,
// under the 10 000 its cores allow; PostgreSQL's ceiling does not move.
func TestCapacityRoundTrip(t *testing.T) {
	t.Parallel()
	m := CapacityModel{ReplicaCores: 2, PostgresCores: 10, Utilization: 0.5, MaxReplicas: 40, PoolConns: 8}
	caps := m.Project([]Design{
		{Name: "tokens", Scenario: ScGetCart, ReplicaUS: 50},
		{Name: "sessions", Scenario: ScGetCartSession, ReplicaUS: 100, PostgresUS: 100},
		{Name: "sessions far", Scenario: ScGetCartSession, ReplicaUS: 100, PostgresUS: 100, RoundTripUS: 3900},
	})
	far := caps[2]
	if far.PerReplica != 2000 || far.Ceiling != 50000 || far.SaturatesAt != 25 || far.Throughput[9] != 20000 {
		t.Fatalf("far sessions: per replica %v, ceiling %v, saturates at %d, 10 replicas %v; want 2000, 50000, 25, 20000",
			far.PerReplica, far.Ceiling, far.SaturatesAt, far.Throughput[9])
	}
	// TokensOverSessions compares with the sessions at loopback distance.
	if got, ok := TokensOverSessions(caps, 10); !ok || got != 4 {
		t.Fatalf("tokens / sessions at 10 replicas = %v, %v; want 4 (the near sessions)", got, ok)
	}
	if got, ok := tokensOver(caps, far, 10); !ok || got != 10 {
		t.Fatalf("tokens / far sessions at 10 replicas = %v, %v; want 10", got, ok)
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
	// Three designs from the medians, then the two that reach PostgreSQL
	// again at each of the model's two distances.
	if len(caps) != 7 || caps[0].PostgresUS != 0 || caps[1].Scenario != ScAddItemPostgres || caps[1].PostgresUS != 85 ||
		caps[6].Scenario != ScGetCartSession || caps[6].RoundTripUS != 4000 {
		t.Fatalf("designs %+v, want getcart, additem-postgres, getcart-session from the medians, then at 0.5 ms and 2 ms", caps)
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
	for _, want := range []string{
		"| tokens, request mode (GetCart) | 40.0 | 0.0 | 35000 | none | never",
		"Sessions saturate PostgreSQL at",
		// 8 connections held 4 000 + 60 µs: 1970 calls/s per replica.
		"| sessions: a PostgreSQL lookup per call (GetCart), PostgreSQL 2ms away each way | 45.0 | 60.0 | 1970 |",
		"Sessions 2ms from PostgreSQL (1970 calls/s per replica: 8 pooled connections held 4060 µs each) do not saturate PostgreSQL within 64 replicas; tokens (request mode) sustain",
	} {
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
