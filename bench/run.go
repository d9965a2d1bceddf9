package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tokencart/tokencart/internal/progress"
)

// Options configure a Run. Zero values take the defaults.
type Options struct {
	// CapacityPlot, if set, is where the command draws the capacity model
	// (WriteCapacityPlot); the report names it.
	CapacityPlot string
	// Concurrency is the number of closed-loop callers per scenario, each
	// with a user of its own. Default 50.
	Concurrency int
	// Duration is the measured window of each scenario in each round.
	// Default 2s.
	Duration time.Duration
	// Warmup is the unmeasured time before each window. Default 300ms.
	Warmup time.Duration
	// Rounds is how many times every scenario runs, interleaved: round r
	// runs them all, starting at a different one each round. Default 5:
	// on a shared machine, five short windows give a steadier median than
	// three long ones.
	Rounds int
	// Only selects scenarios by name; empty means all.
	Only []string
	// BinDir holds prebuilt authsvc, catalogsvc and sessionbaseline
	// binaries; empty builds them into a temporary directory.
	BinDir string
	// PostgresDSN is the server for the PostgreSQL scenarios (each run
	// creates and drops schemas of its own). Empty tries
	// TOKENCART_BENCH_POSTGRES_DSN, TOKENCART_TEST_POSTGRES_DSN, then
	// DefaultPostgresDSN; "-" skips the PostgreSQL scenarios.
	PostgresDSN string
	// PostgresProxy puts a faultnet proxy between the services and
	// PostgreSQL that adds PostgresLatency each way (none when 0), so that
	// the database is a network hop away.
	PostgresProxy   bool
	PostgresLatency time.Duration
	// RequirePostgres fails the run when PostgreSQL is not reachable,
	// rather than skipping its scenarios.
	RequirePostgres bool
	// ProfileDir, when set, receives CPU profiles (and `go tool pprof -top`
	// summaries) of the Profile scenarios, taken after the rounds in a run
	// of their own so profiling does not disturb the measurements.
	ProfileDir string
	// Profile names the scenarios to profile; "all" profiles every one.
	Profile []string
	// ProfileDuration is the length of a profiling run; whole seconds.
	// Default 5s.
	ProfileDuration time.Duration
	// Env is added to every service process's environment (GOGC=200,
	// GODEBUG=..., CATALOGSVC_...=...), for experiments.
	Env []string
	// VariantEnv and VariantBinDir, when either is set, start one more
	// request-mode catalogsvc, "catalog-b", with VariantEnv added to its
	// environment and its binary from VariantBinDir, and add the scenarios
	// floor-b, getcart-b and getproduct-b against it: an A/B comparison
	// inside one interleaved run, which a shared, noisy machine needs.
	VariantEnv    []string
	VariantBinDir string
	// Progress receives a line per finished scenario; nil discards.
	Progress io.Writer
	// ProcessLog receives the services' output; nil discards.
	ProcessLog io.Writer
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 50
	}
	if o.Duration <= 0 {
		o.Duration = 2 * time.Second
	}
	if o.Warmup <= 0 {
		o.Warmup = 300 * time.Millisecond
	}
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.ProfileDuration < time.Second {
		o.ProfileDuration = 5 * time.Second
	}
	o.ProfileDuration = o.ProfileDuration.Truncate(time.Second)
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.ProcessLog == nil {
		o.ProcessLog = io.Discard
	}
	return o
}

// Round is one scenario's measurement in one round.
type Round struct {
	Throughput float64       // successful calls per second
	P50, P99   time.Duration // latency of successful calls
	Calls      uint64
	Errors     uint64
	ErrMsg     string
	// CPU per successful call, in microseconds: the serving processes,
	// the load generator (this process), and PostgreSQL's processes.
	ServerCPU, DriverCPU, PostgresCPU float64
	// OtherLoad is the machine's CPU use not accounted for by the above,
	// as a fraction of its capacity: other people's work on a shared box.
	OtherLoad float64
	Partial   bool // a CPU reading failed
}

// ScenarioResult is one scenario over all rounds, with medians.
type ScenarioResult struct {
	Name, Title string
	Rounds      []Round
	Median      Round // each field the median over the rounds; Calls and Errors summed
}

// Report is the outcome of a Run.
type Report struct {
	Options   Options
	Machine   Machine
	Started   time.Time
	Took      time.Duration
	Scenarios []ScenarioResult
	Ratios    []RatioResult
	Skipped   []string // scenarios left out (PostgreSQL unavailable)
	// TokenBytes is the length of the callers' access tokens, which every
	// authenticated call carries in its metadata.
	TokenBytes int
	Profiles   []string // files written to ProfileDir
	// PeakRSS is each service process's peak resident memory (VmHWM) at
	// the end of the rounds, in bytes.
	PeakRSS map[string]int64
}

// Scenario returns the result of the named scenario, or nil.
func (r *Report) Scenario(name string) *ScenarioResult {
	for i := range r.Scenarios {
		if r.Scenarios[i].Name == name {
			return &r.Scenarios[i]
		}
	}
	return nil
}

// Run starts the services, runs the selected scenarios for opts.Rounds
// interleaved rounds, profiles if asked, stops everything and reports.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	rep := &Report{Options: opts, Started: time.Now()}
	all := scenarios()
	if len(opts.VariantEnv) > 0 || opts.VariantBinDir != "" {
		all = append(all, variantScenarios()...)
	}
	var selected []scenario
	for _, s := range all {
		if slices.Contains(opts.Only, s.name) || (len(opts.Only) == 0 && !s.extra) {
			selected = append(selected, s)
		}
	}
	for _, name := range opts.Only {
		if !slices.ContainsFunc(all, func(s scenario) bool { return s.name == name }) {
			return nil, fmt.Errorf("unknown scenario %q", name)
		}
	}
	if len(selected) == 0 {
		return nil, errors.New("no scenario selected")
	}
	need := map[string]bool{procAuth: true, procCatalog: true} // users and products come through these
	for _, s := range selected {
		for _, p := range s.procs {
			need[p] = true
		}
		if s.name == ScUpsertRaw || s.name == ScStoreTxnRaw {
			need[procStorePG] = true // their table
		}
	}

	fmt.Fprintf(opts.Progress, "bench: starting services (%d callers, %d rounds × %v per scenario)\n", opts.Concurrency, opts.Rounds, opts.Duration)
	e, err := startEnv(ctx, opts, need)
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep.Machine = machineInfo(ctx, e)
	if len(e.users) > 0 {
		rep.TokenBytes = len(e.users[0].token)
	}

	var runnable []scenario
	for _, s := range selected {
		if s.pg && e.pgBase == "" {
			rep.Skipped = append(rep.Skipped, s.name)
			continue
		}
		runnable = append(runnable, s)
	}

	// One short unmeasured pass: connections, caches, the database's
	// buffers and the services' heaps reach their steady state.
	tracker := progress.New(plannedSeconds(opts, runnable))
	for _, s := range runnable {
		if _, err := e.runScenario(ctx, s, opts.Warmup/2, opts.Warmup/2, nil); err != nil {
			return nil, fmt.Errorf("%s (warm-up): %w", s.name, err)
		}
		tracker.Done(opts.Warmup.Seconds())
	}
	fmt.Fprintf(opts.Progress, "bench: warm-up pass over %d scenarios done; %s\n", len(runnable), tracker.Done(0))

	results := make(map[string][]Round, len(runnable))
	for r := range opts.Rounds {
		for k := range runnable {
			s := runnable[(k+r)%len(runnable)]
			res, err := e.runScenario(ctx, s, opts.Warmup, opts.Duration, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			round := toRound(res)
			results[s.name] = append(results[s.name], round)
			fmt.Fprintf(opts.Progress, "bench: round %d/%d %-17s %9.0f calls/s  p50 %-9v p99 %-9v server %6.1f µs/call  errors %d  [%s]\n",
				r+1, opts.Rounds, s.name, round.Throughput, round.P50, round.P99, round.ServerCPU, round.Errors,
				tracker.Done(roundLength(opts, s).Seconds()))
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	for _, s := range runnable {
		rep.Scenarios = append(rep.Scenarios, ScenarioResult{Name: s.name, Title: s.title, Rounds: results[s.name], Median: medianRound(results[s.name])})
	}
	rep.Ratios = computeRatios(rep)
	rep.PeakRSS = map[string]int64{}
	for name, p := range e.procs {
		if rss, err := peakRSS(p.Pid()); err == nil {
			rep.PeakRSS[name] = rss
		}
	}

	if opts.ProfileDir != "" && len(opts.Profile) > 0 {
		files, err := e.profile(ctx, runnable, tracker)
		if err != nil {
			return nil, err
		}
		rep.Profiles = files
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

// runScenario prepares s's callers and runs its load once.
func (e *env) runScenario(ctx context.Context, s scenario, warmup, duration time.Duration, atStart func()) (loadResult, error) {
	n := e.opts.Concurrency
	if s.callers > 0 {
		n = min(n, s.callers)
	}
	calls := make([]call, n)
	for i := range calls {
		c, err := s.newCaller(ctx, e, i)
		if err != nil {
			return loadResult{}, fmt.Errorf("caller %d: %w", i, err)
		}
		calls[i] = c
	}
	var pids []int
	for _, p := range s.procs {
		pids = append(pids, e.procs[p].Pid())
	}
	res := runLoad(ctx, calls, warmup, max(duration, s.minDuration), pids, atStart)
	if res.calls == 0 && res.errors > 0 {
		return res, fmt.Errorf("every call failed: %s", res.errMsg)
	}
	return res, ctx.Err()
}

func toRound(r loadResult) Round {
	other := r.cpu.busy - r.cpu.procs - r.cpu.self - r.cpu.pg
	load := 0.0
	if r.cpu.total > 0 {
		load = max(float64(other)/float64(r.cpu.total), 0)
	}
	return Round{
		Throughput:  r.throughput(),
		P50:         r.hist.quantile(0.50),
		P99:         r.hist.quantile(0.99),
		Calls:       r.calls,
		Errors:      r.errors,
		ErrMsg:      r.errMsg,
		ServerCPU:   r.perCall(r.cpu.procs),
		DriverCPU:   r.perCall(r.cpu.self),
		PostgresCPU: r.perCall(r.cpu.pg),
		OtherLoad:   load,
		Partial:     r.cpu.partial,
	}
}

func medianRound(rs []Round) Round {
	pick := func(f func(Round) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	m := Round{
		Throughput:  pick(func(r Round) float64 { return r.Throughput }),
		P50:         time.Duration(pick(func(r Round) float64 { return float64(r.P50) })),
		P99:         time.Duration(pick(func(r Round) float64 { return float64(r.P99) })),
		ServerCPU:   pick(func(r Round) float64 { return r.ServerCPU }),
		DriverCPU:   pick(func(r Round) float64 { return r.DriverCPU }),
		PostgresCPU: pick(func(r Round) float64 { return r.PostgresCPU }),
		OtherLoad:   pick(func(r Round) float64 { return r.OtherLoad }),
	}
	for _, r := range rs {
		m.Calls += r.Calls
		m.Errors += r.Errors
		m.Partial = m.Partial || r.Partial
		if m.ErrMsg == "" {
			m.ErrMsg = r.ErrMsg
		}
	}
	return m
}

// median returns the median of v (the mean of the middle two for an even
// count), or 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// profile runs each selected scenario once more while taking CPU profiles
// of its serving processes (from their admin port's /debug/pprof/profile)
// and of the load generator, and writes `go tool pprof -top` of each.
func (e *env) profile(ctx context.Context, runnable []scenario, tracker *progress.Tracker) ([]string, error) {
	dir := e.opts.ProfileDir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	var files []string
	for _, s := range runnable {
		if !profiled(e.opts, s) {
			continue
		}
		secs := int(e.opts.ProfileDuration / time.Second)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex // guards errs and got
			errs []error
			got  []string
		)
		driverFile := filepath.Join(dir, s.name+".loadgen.pprof")
		f, err := os.Create(driverFile)
		if err != nil {
			return nil, err
		}
		atStart := func() {
			for _, p := range s.procs {
				wg.Go(func() {
					path := filepath.Join(dir, s.name+"."+p+".pprof")
					err := fetchProfile(ctx, e.admin[p], secs, path)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, fmt.Errorf("profile %s: %w", p, err))
						return
					}
					got = append(got, path)
				})
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("profile the load generator: %w", err))
				mu.Unlock()
			}
		}
		// A second longer than the profiles, so they cover load throughout.
		_, runErr := e.runScenario(ctx, s, e.opts.Warmup, e.opts.ProfileDuration+time.Second, atStart)
		pprof.StopCPUProfile()
		f.Close()
		wg.Wait()
		if err := errors.Join(append(errs, runErr)...); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		got = append(got, driverFile)
		slices.Sort(got)
		for _, path := range got {
			files = append(files, path)
			// Flat, then cumulative: the second shows which layer (the
			// chain, auth, the handler, the driver) a cost belongs to.
			for _, view := range []struct{ suffix, flag string }{{".top.txt", "-top"}, {".cum.txt", "-cum"}} {
				args := []string{"tool", "pprof", "-top", "-nodecount=40"}
				if view.flag == "-cum" {
					args = append(args, "-cum")
				}
				out, err := exec.CommandContext(ctx, "go", append(args, path)...).Output()
				if err != nil {
					return nil, fmt.Errorf("go tool pprof -top %s: %w", path, err)
				}
				txt := strings.TrimSuffix(path, ".pprof") + view.suffix
				if err := os.WriteFile(txt, out, 0o640); err != nil {
					return nil, err
				}
				files = append(files, txt)
			}
		}
		fmt.Fprintf(e.opts.Progress, "bench: profiled %s  [%s]\n", s.name, tracker.Done(profileLength(e.opts).Seconds()))
	}
	return files, nil
}

func fetchProfile(ctx context.Context, adminAddr string, secs int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", adminAddr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Machine describes where a run happened.
type Machine struct {
	CPUs        int
	CPUModel    string
	GOMAXPROCS  int
	Kernel      string
	GoVersion   string
	GRPCVersion string
	PgxVersion  string
	Postgres    string
	LoadAvg     string // /proc/loadavg when the services were up
	Source      string // the commit built, and whether the tree differed from it
}

func machineInfo(ctx context.Context, e *env) Machine {
	m := Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		Postgres:   e.pgVersion,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	m.Source = sourceState(ctx)
	m.GRPCVersion, m.PgxVersion = moduleVersion("google.golang.org/grpc"), moduleVersion("github.com/jackc/pgx/v5")
	return m
}

// sourceState names the commit the binaries were built from and the
// directories with uncommitted changes outside bench/, if any.
func sourceState(ctx context.Context) string {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "unknown"
	}
	head, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	st, _ := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--", ".", ":!bench").Output()
	dirs := map[string]bool{}
	for _, line := range strings.Split(string(st), "\n") {
		// "XY path" or "XY old -> new"; the top directory is enough.
		if len(line) > 3 {
			top, _, _ := strings.Cut(line[3:], "/")
			dirs[top] = true
		}
	}
	if len(dirs) == 0 {
		return "commit " + strings.TrimSpace(string(head))
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	slices.Sort(names)
	return fmt.Sprintf("commit %s plus uncommitted changes in %s", strings.TrimSpace(string(head)), strings.Join(names, ", "))
}
