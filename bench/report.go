package bench

import (
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// RatioResult is one ratio between two scenarios of the same run, computed
// round by round (each round's two measurements are minutes apart at most)
// and summarised by the median.
type RatioResult struct {
	Name     string
	PerRound []float64
	Median   float64
	// Goal, when HasGoal, is the performance goal the ratio is held to: the
	// median must be at least Goal, or at most Goal when AtMost.
	Goal    float64
	HasGoal bool
	AtMost  bool
}

// Met reports whether the goal is met.
func (r RatioResult) Met() bool {
	if r.AtMost {
		return r.Median <= r.Goal
	}
	return r.Median >= r.Goal
}

type ratioDef struct {
	name     string
	num, den string
	metric   func(Round) float64
	goal     float64 // 0: no goal
	atMost   bool
}

func throughput(r Round) float64 { return r.Throughput }
func p99(r Round) float64        { return float64(r.P99) }
func serverCPU(r Round) float64  { return r.ServerCPU }

// serverSideCPU is the CPU a call costs on the serving side: the serving
// processes plus PostgreSQL, without the load generator's share.
func serverSideCPU(r Round) float64 { return r.ServerCPU + r.PostgresCPU }

// ratioDefs are the ratios held to a performance goal, then the ratios
// that explain them.
var ratioDefs = []ratioDef{
	{"GetCart (cache on) / floor", ScGetCart, ScFloor, throughput, 0.85, false},
	{"GetCart (cache on) / PostgreSQL session baseline", ScGetCart, ScGetCartSession, throughput, 4, false},
	{"GetCart (cache on) / remote introspection", ScGetCart, ScGetCartRemote, throughput, 3, false},
	{"GetProduct / floor", ScGetProduct, ScFloor, throughput, 0.8, false},
	{"AddItem PostgreSQL / raw upsert loop", ScAddItemPostgres, ScUpsertRaw, throughput, 0.5, false},
	{"p99 GetCart (cache on) / p99 floor", ScGetCart, ScFloor, p99, 2, true},
	{"GetCart (default logging) / GetCart --log-level=warn", ScGetCart, ScGetCartLogWarn, throughput, 0.95, false},
	// With -variant-bin holding the build to beat: server CPU per call at
	// least 20 % lower than the variant's, that is variant / this ≥ 1.25.
	{"A/B: server CPU per call, floor-b / floor", ScFloorB, ScFloor, serverCPU, 1.25, false},
	{"A/B: server CPU per call, getproduct-b / getproduct", ScGetProductB, ScGetProduct, serverCPU, 1.25, false},
	{"A/B: server CPU per call, getcart-b / getcart", ScGetCartB, ScGetCart, serverCPU, 1.25, false},
	{"GetCart / floor, each caller its own connection", ScGetCartOwnConn, ScFloorOwnConn, throughput, 0, false},
	{"server CPU per call: GetCart / floor, each caller its own connection", ScGetCartOwnConn, ScFloorOwnConn, serverCPU, 0, false},
	{"server-side CPU per call (service + PostgreSQL): session baseline / GetCart", ScGetCartSession, ScGetCart, serverSideCPU, 0, false},
	{"server-side CPU per call (catalogsvc + authsvc + PostgreSQL): remote / GetCart", ScGetCartRemote, ScGetCart, serverSideCPU, 0, false},
	{"GetCart (cache off) / floor", ScGetCartNoCache, ScFloor, throughput, 0, false},
	{"GetCart (cache on) / GetCart (cache off)", ScGetCart, ScGetCartNoCache, throughput, 0, false},
	{"remote introspection / floor", ScGetCartRemote, ScFloor, throughput, 0, false},
	{"session baseline / floor", ScGetCartSession, ScFloor, throughput, 0, false},
	{"ListProducts / floor", ScListProducts, ScFloor, throughput, 0, false},
	{"AddItem request mode / floor", ScAddItemRequest, ScFloor, throughput, 0, false},
	{"AddItem PostgreSQL / the store's transaction from a raw loop (the service around the store)", ScAddItemPostgres, ScStoreTxnRaw, throughput, 0, false},
	{"the store's transaction / raw upsert loop (what lock + idempotency key cost)", ScStoreTxnRaw, ScUpsertRaw, throughput, 0, false},
	{"AddItem SQLite / raw upsert loop", ScAddItemSQLite, ScUpsertRaw, throughput, 0, false},
	{"server CPU per call: GetCart (default logging) / GetCart --log-level=warn", ScGetCart, ScGetCartLogWarn, serverCPU, 0, false},
	{"2 replicas / 1 replica", ScReplicas2, ScGetCart, throughput, 0, false},
	{"3 replicas / 1 replica", ScReplicas3, ScGetCart, throughput, 0, false},
	{"p99 GetCart (cache off) / p99 floor", ScGetCartNoCache, ScFloor, p99, 0, false},
	{"p99 AddItem PostgreSQL / p99 floor", ScAddItemPostgres, ScFloor, p99, 0, false},
	{"A/B: floor-b / floor", ScFloorB, ScFloor, throughput, 0, false},
	{"A/B: getcart-b / getcart", ScGetCartB, ScGetCart, throughput, 0, false},
	{"A/B: getproduct-b / getproduct", ScGetProductB, ScGetProduct, throughput, 0, false},
	{"A/B: getcart-b / floor-b", ScGetCartB, ScFloorB, throughput, 0, false},
	{"server CPU per call: GetCart (cache on) / floor", ScGetCart, ScFloor, serverCPU, 0, false},
	{"server CPU per call: GetCart (cache off) / floor", ScGetCartNoCache, ScFloor, serverCPU, 0, false},
	{"server CPU per call: GetProduct / floor", ScGetProduct, ScFloor, serverCPU, 0, false},
}

func computeRatios(rep *Report) []RatioResult {
	var out []RatioResult
	for _, d := range ratioDefs {
		num, den := rep.Scenario(d.num), rep.Scenario(d.den)
		if num == nil || den == nil {
			continue
		}
		r := RatioResult{Name: d.name, Goal: d.goal, HasGoal: d.goal > 0, AtMost: d.atMost}
		for i := range min(len(num.Rounds), len(den.Rounds)) {
			if v := d.metric(den.Rounds[i]); v > 0 {
				r.PerRound = append(r.PerRound, d.metric(num.Rounds[i])/v)
			}
		}
		r.Median = median(r.PerRound)
		out = append(out, r)
	}
	return out
}

// WriteMarkdown writes rep as the tables RESULTS.md quotes.
func (rep *Report) WriteMarkdown(w io.Writer) {
	m, o := rep.Machine, rep.Options
	fmt.Fprintf(w, "### Run of %s (%s)\n\n", rep.Started.UTC().Format("2006-01-02 15:04 MST"), rep.Took.Round(time.Second))
	fmt.Fprintf(w, "- Machine: %d CPUs (`nproc`), %s, Linux %s; load average %s when the services were up\n", m.CPUs, m.CPUModel, m.Kernel, m.LoadAvg)
	fmt.Fprintf(w, "- Go %s (GOMAXPROCS %d in every process), gRPC-Go %s, pgx %s, PostgreSQL %s\n", m.GoVersion, m.GOMAXPROCS, m.GRPCVersion, m.PgxVersion, orNone(m.Postgres))
	fmt.Fprintf(w, "- Built from %s\n", m.Source)
	fmt.Fprintf(w, "- Access tokens of %d bytes, one user per caller; one client connection per replica shared by the callers unless the scenario says otherwise\n", rep.TokenBytes)
	fmt.Fprintf(w, "- %d closed-loop callers per scenario, %v measured after %v of warm-up, %d interleaved rounds; medians over the rounds\n",
		o.Concurrency, o.Duration, o.Warmup, o.Rounds)
	if o.PostgresProxy {
		fmt.Fprintf(w, "- PostgreSQL behind a faultnet proxy adding %v each way (catalogsvc's store, the session baseline and the raw loops)\n", o.PostgresLatency)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "| scenario | calls/s | p50 | p99 | server CPU µs/call | load generator µs/call | PostgreSQL µs/call | other load | errors | calls/s per round |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, s := range rep.Scenarios {
		md := s.Median
		var per []string
		for _, r := range s.Rounds {
			per = append(per, fmt.Sprintf("%.0f", r.Throughput))
		}
		pg := "–"
		if md.PostgresCPU >= 0.05 {
			pg = fmt.Sprintf("%.1f", md.PostgresCPU)
		}
		errs := fmt.Sprint(md.Errors)
		if md.Errors > 0 {
			errs += " — " + md.ErrMsg
		}
		fmt.Fprintf(w, "| `%s` %s | %.0f | %s | %s | %.1f | %.1f | %s | %.0f%% | %s | %s |\n",
			s.Name, s.Title, md.Throughput, fmtDur(md.P50), fmtDur(md.P99), md.ServerCPU, md.DriverCPU, pg, 100*md.OtherLoad, errs, strings.Join(per, ", "))
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(w, "\nSkipped (PostgreSQL not reachable): %s\n", strings.Join(rep.Skipped, ", "))
	}

	fmt.Fprintln(w, "\n| ratio (same run, per round, median) | median | per round | goal | |")
	fmt.Fprintln(w, "|---|---:|---|---:|---|")
	for _, r := range rep.Ratios {
		var per []string
		for _, v := range r.PerRound {
			per = append(per, fmt.Sprintf("%.2f", v))
		}
		goal, verdict := "", ""
		if r.HasGoal {
			op := "≥"
			if r.AtMost {
				op = "≤"
			}
			goal = fmt.Sprintf("%s %.2f", op, r.Goal)
			verdict = "**missed**"
			if r.Met() {
				verdict = "met"
			}
		}
		fmt.Fprintf(w, "| %s | %.2f | %s | %s | %s |\n", r.Name, r.Median, strings.Join(per, ", "), goal, verdict)
	}
	if len(rep.PeakRSS) > 0 {
		names := make([]string, 0, len(rep.PeakRSS))
		for n := range rep.PeakRSS {
			names = append(names, n)
		}
		slices.Sort(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.0f MiB", n, float64(rep.PeakRSS[n])/(1<<20)))
		}
		fmt.Fprintf(w, "\nPeak resident memory (VmHWM): %s\n", strings.Join(parts, ", "))
	}
	if len(rep.Profiles) > 0 {
		fmt.Fprintf(w, "\nProfiles written: %s\n", strings.Join(rep.Profiles, ", "))
	}
	writeCapacity(w, DefaultCapacityModel, rep.Capacity(), rep.Options.CapacityPlot)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(not used)"
	}
	return s
}

// moduleVersion returns the version of module path linked into this
// binary, which the services share through go.mod.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return "unknown"
}
