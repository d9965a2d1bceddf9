// Command tokencart-bench is `make bench`: it builds authsvc, catalogsvc
// and the session baseline, starts them as processes on loopback, drives
// the scenarios of bench.ScenarioNames with a closed-loop load generator
// over several interleaved rounds, and prints the medians and ratios as
// Markdown (the tables bench/RESULTS.md records). Progress goes to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tokencart/tokencart/bench"
	"github.com/tokencart/tokencart/internal/version"
)

func main() { os.Exit(run()) }

func run() int {
	var opts bench.Options
	fs := flag.NewFlagSet("tokencart-bench", flag.ContinueOnError)
	fs.Var(version.NewFlag("tokencart-bench"), "version", version.Usage)
	fs.IntVar(&opts.Concurrency, "concurrency", 50, "closed-loop callers per scenario, each a user of its own")
	fs.DurationVar(&opts.Duration, "duration", 2*time.Second, "measured window per scenario and round")
	fs.DurationVar(&opts.Warmup, "warmup", 300*time.Millisecond, "unmeasured time before each window")
	fs.IntVar(&opts.Rounds, "rounds", 5, "interleaved rounds; the report gives medians")
	only := fs.String("only", "", "comma-separated scenarios to run (default all of "+strings.Join(bench.ScenarioNames(), ",")+
		"; also "+strings.Join(bench.ExtraScenarioNames(), ",")+")")
	fs.StringVar(&opts.BinDir, "bin", "", "directory of prebuilt authsvc, catalogsvc and sessionbaseline binaries (default: build them)")
	fs.StringVar(&opts.PostgresDSN, "postgres", "", "PostgreSQL base URL (default $TOKENCART_BENCH_POSTGRES_DSN, $TOKENCART_TEST_POSTGRES_DSN, then "+bench.DefaultPostgresDSN+"); - skips those scenarios")
	fs.Func("pg-latency", "put a proxy between the services and PostgreSQL that adds this latency each way (e.g. 500us, 2ms; 0: the proxy alone)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration of 0 or more, got %q", v)
		}
		opts.PostgresProxy, opts.PostgresLatency = true, d
		return nil
	})
	fs.BoolVar(&opts.RequirePostgres, "require-postgres", false, "fail rather than skip when PostgreSQL is not reachable")
	fs.StringVar(&opts.ProfileDir, "profile-dir", "", "write CPU profiles and `go tool pprof -top` summaries here")
	profile := fs.String("profile", "", "comma-separated scenarios to profile after the rounds, or all (needs --profile-dir)")
	fs.DurationVar(&opts.ProfileDuration, "profile-duration", 5*time.Second, "length of each profile, whole seconds")
	fs.Func("env", "KEY=VALUE added to every service's environment (repeatable), e.g. GOGC=200", func(v string) error {
		opts.Env = append(opts.Env, v)
		return nil
	})
	fs.Func("variant-env", "KEY=VALUE (repeatable): start catalog-b with it and add the A/B scenarios floor-b, getcart-b, getproduct-b", func(v string) error {
		opts.VariantEnv = append(opts.VariantEnv, v)
		return nil
	})
	fs.StringVar(&opts.VariantBinDir, "variant-bin", "", "directory of the catalogsvc binary for catalog-b (A/B of two builds)")
	out := fs.String("out", "", "also write the Markdown report to this file")
	fs.StringVar(&opts.CapacityPlot, "capacity-plot", "", "draw the capacity model of the run's figures into this file (.svg or .png)")
	procLog := fs.String("process-log", "", "write the services' output to this file (default: discard)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	if *profile != "" {
		if opts.ProfileDir == "" {
			fmt.Fprintln(os.Stderr, "tokencart-bench: --profile needs --profile-dir")
			return 2
		}
		opts.Profile = strings.Split(*profile, ",")
	}
	opts.Progress = os.Stderr
	if *procLog != "" {
		f, err := os.Create(*procLog)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tokencart-bench:", err)
			return 1
		}
		defer f.Close()
		opts.ProcessLog = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokencart-bench:", err)
		return 1
	}
	w := io.Writer(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tokencart-bench:", err)
			return 1
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	rep.WriteMarkdown(w)
	if opts.CapacityPlot != "" {
		if err := bench.WriteCapacityPlot(opts.CapacityPlot, bench.DefaultCapacityModel, rep.Capacity()); err != nil {
			fmt.Fprintln(os.Stderr, "tokencart-bench:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "tokencart-bench: capacity plot written to", opts.CapacityPlot)
	}
	return 0
}
