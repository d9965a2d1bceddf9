package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// CapacityModel projects what a design sustains past one machine from the
// CPU one call costs on each tier, measured here on one machine. Its
// assumptions:
//
//   - every replica has ReplicaCores cores, and the service tier scales out
//     by adding replicas, each adding the same capacity (the bench's
//     replica scenarios measure how near to that loopback gets);
//   - the shared tier is one PostgreSQL of PostgresCores cores, which does
//     not scale out;
//   - a tier is saturated when its calls use Utilization of its cores:
//     above that, queueing makes latency grow without bound;
//   - CPU per call stays as measured: no lock contention, I/O wait or
//     network cost that one machine does not show, and authsvc is off the
//     hot path (tokens are verified locally; it serves key sets and the
//     revocation feed, whose cost does not grow with calls);
//   - the clients are not the limit, and the network only where a design
//     says so: a design with a round trip to PostgreSQL (RoundTripUS) holds
//     one of the replica's PoolConns connections for that round trip plus
//     PostgreSQL's time per call, so a replica serves at most PoolConns
//     such calls at once, however idle its cores (Little's law).
type CapacityModel struct {
	ReplicaCores  float64
	PostgresCores float64
	Utilization   float64
	MaxReplicas   int
	// PoolConns is a replica's PostgreSQL pool size.
	PoolConns int
	// PostgresDistances are the one-way latencies to PostgreSQL at which
	// the designs that reach it are projected again (network-hop rows).
	PostgresDistances []time.Duration
}

// DefaultCapacityModel is the model the report uses: two-core replicas, a
// 16-core PostgreSQL, 70 % utilisation, up to 64 replicas, the services'
// default pool of 8 connections (internal/sqldb), and PostgreSQL also
// 0.5 ms and 2 ms away each way (the distances of -pg-latency's table).
var DefaultCapacityModel = CapacityModel{ReplicaCores: 2, PostgresCores: 16, Utilization: 0.7, MaxReplicas: 64,
	PoolConns: 8, PostgresDistances: []time.Duration{500 * time.Microsecond, 2 * time.Millisecond}}

// Design is one way of serving a call, by its measured CPU per call on
// each tier, in microseconds.
type Design struct {
	Name, Scenario string
	ReplicaUS      float64 // the serving process
	PostgresUS     float64 // PostgreSQL, the shared tier; 0: none
	// RoundTripUS is the network round trip of the call's one statement
	// to PostgreSQL, during which it holds a pool connection; 0: none
	// modelled (PostgreSQL at the measured, loopback distance).
	RoundTripUS float64
}

// DesignCapacity is a design's projection.
type DesignCapacity struct {
	Design
	// PerReplica is the calls a second one replica sustains.
	PerReplica float64
	// Ceiling is the calls a second the shared tier sustains, +Inf for a
	// design without one.
	Ceiling float64
	// SaturatesAt is the replica count from which the shared tier is the
	// limit; 0 for a design without one.
	SaturatesAt int
	// Throughput[n-1] is the calls a second n replicas sustain.
	Throughput []float64
}

// Project returns the capacity of each design for 1 to m.MaxReplicas
// replicas: the least of what the replicas and the shared tier sustain;
// then of each design that reaches PostgreSQL again at each of
// m.PostgresDistances.
func (m CapacityModel) Project(designs []Design) []DesignCapacity {
	designs = withDistances(designs, m.PostgresDistances)
	out := make([]DesignCapacity, 0, len(designs))
	for _, d := range designs {
		c := DesignCapacity{Design: d, Ceiling: math.Inf(1)}
		if d.ReplicaUS > 0 {
			c.PerReplica = m.ReplicaCores * m.Utilization * 1e6 / d.ReplicaUS
		}
		if d.RoundTripUS > 0 && m.PoolConns > 0 {
			c.PerReplica = math.Min(c.PerReplica, float64(m.PoolConns)*1e6/(d.RoundTripUS+d.PostgresUS))
		}
		if d.PostgresUS > 0 {
			c.Ceiling = m.PostgresCores * m.Utilization * 1e6 / d.PostgresUS
			if c.PerReplica > 0 {
				c.SaturatesAt = int(math.Ceil(c.Ceiling / c.PerReplica))
			}
		}
		for n := 1; n <= m.MaxReplicas; n++ {
			c.Throughput = append(c.Throughput, math.Min(float64(n)*c.PerReplica, c.Ceiling))
		}
		out = append(out, c)
	}
	return out
}

// capacityDesigns are the designs the report projects, from the medians of
// its scenarios; a design whose scenario did not run is left out.
func capacityDesigns(rep *Report) []Design {
	var out []Design
	for _, d := range []struct {
		name, scenario string
		// postgres: the design's calls reach PostgreSQL. Request mode's
		// do not: what the bench reads of PostgreSQL's CPU during it is
		// other work on a shared server (the floor shows as much), and
		// would make up a ceiling that is not there.
		postgres bool
	}{
		{"tokens, request mode (GetCart)", ScGetCart, false},
		{"tokens, store mode on PostgreSQL (AddItem)", ScAddItemPostgres, true},
		{"sessions: a PostgreSQL lookup per call (GetCart)", ScGetCartSession, true},
	} {
		s := rep.Scenario(d.scenario)
		if s == nil || s.Median.ServerCPU <= 0 {
			continue
		}
		c := Design{Name: d.name, Scenario: d.scenario, ReplicaUS: s.Median.ServerCPU}
		if d.postgres {
			c.PostgresUS = s.Median.PostgresCPU
		}
		out = append(out, c)
	}
	return out
}

// withDistances adds, for each design that reaches PostgreSQL, one at each
// of the one-way distances.
func withDistances(designs []Design, distances []time.Duration) []Design {
	out := slices.Clone(designs)
	for _, dist := range distances {
		for _, d := range designs {
			if d.PostgresUS <= 0 {
				continue
			}
			d.Name = fmt.Sprintf("%s, PostgreSQL %v away each way", d.Name, dist)
			d.RoundTripUS = 2 * float64(dist.Microseconds())
			out = append(out, d)
		}
	}
	return out
}

// TokensOverSessions is how many times the calls a second of tokens
// (request mode) are those of sessions (PostgreSQL at the measured
// distance) at n replicas.
func TokensOverSessions(caps []DesignCapacity, n int) (float64, bool) {
	for _, c := range caps {
		if c.Scenario == ScGetCartSession && c.RoundTripUS == 0 {
			return tokensOver(caps, c, n)
		}
	}
	return 0, false
}

// tokensOver is how many times the calls a second of tokens (request
// mode) are those of the design sessions at n replicas.
func tokensOver(caps []DesignCapacity, sessions DesignCapacity, n int) (float64, bool) {
	i := slices.IndexFunc(caps, func(c DesignCapacity) bool { return c.Scenario == ScGetCart })
	if i < 0 || n < 1 || n > len(caps[i].Throughput) || n > len(sessions.Throughput) || sessions.Throughput[n-1] == 0 {
		return 0, false
	}
	return caps[i].Throughput[n-1] / sessions.Throughput[n-1], true
}

// writeCapacity writes the model's assumptions and table.
func writeCapacity(w io.Writer, m CapacityModel, caps []DesignCapacity, plotPath string) {
	if len(caps) == 0 {
		return
	}
	fmt.Fprintf(w, "\n#### Capacity past one machine (model)\n\n")
	fmt.Fprintf(w, "From the median CPU per call of each tier above: replicas of %g cores, one PostgreSQL of %g cores as the shared tier, "+
		"each tier saturated at %.0f %% of its cores, CPU per call as measured, authsvc off the hot path (local token checks)",
		m.ReplicaCores, m.PostgresCores, m.Utilization*100)
	if plotPath != "" {
		fmt.Fprintf(w, "; plotted in `%s`", plotPath)
	}
	fmt.Fprintf(w, ".\n\n")
	fmt.Fprintln(w, "| design | replica µs/call | PostgreSQL µs/call | calls/s per replica | PostgreSQL ceiling calls/s | saturates at | 8 replicas | 32 replicas | 64 replicas |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|---:|---:|---:|")
	at := func(c DesignCapacity, n int) string {
		if n > len(c.Throughput) {
			return "–"
		}
		return fmt.Sprintf("%.0f", c.Throughput[n-1])
	}
	for _, c := range caps {
		ceiling, sat := "none", "never: no shared tier"
		if !math.IsInf(c.Ceiling, 1) {
			ceiling = fmt.Sprintf("%.0f", c.Ceiling)
			sat = fmt.Sprintf("%d replicas (PostgreSQL)", c.SaturatesAt)
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.0f | %s | %s | %s | %s | %s |\n",
			c.Name, c.ReplicaUS, c.PostgresUS, c.PerReplica, ceiling, sat, at(c, 8), at(c, 32), at(c, 64))
	}
	fmt.Fprintln(w)
	for _, c := range caps {
		if c.Scenario != ScGetCartSession {
			continue
		}
		name := "Sessions"
		if c.RoundTripUS > 0 {
			name = fmt.Sprintf("Sessions %v from PostgreSQL (%.0f calls/s per replica: %d pooled connections held %.0f µs each)",
				time.Duration(c.RoundTripUS/2)*time.Microsecond, c.PerReplica, m.PoolConns, c.RoundTripUS+c.PostgresUS)
		}
		last, lastOK := tokensOver(caps, c, m.MaxReplicas)
		if !lastOK {
			continue
		}
		if c.SaturatesAt > 0 && c.SaturatesAt <= m.MaxReplicas {
			if f, ok := tokensOver(caps, c, c.SaturatesAt); ok {
				fmt.Fprintf(w, "%s saturate PostgreSQL at %d replicas (%.0f calls/s); there tokens (request mode) sustain %.1f× as much, and ",
					name, c.SaturatesAt, c.Ceiling, f)
			}
		} else {
			fmt.Fprintf(w, "%s do not saturate PostgreSQL within %d replicas; tokens (request mode) sustain ", name, m.MaxReplicas)
		}
		fmt.Fprintf(w, "%.1f× as much at %d replicas, where only the replicas limit tokens", last, m.MaxReplicas)
		fmt.Fprintln(w, ".")
	}
}
