// Command tokencart-abuse is `make abuse`: it starts authsvc and two
// catalogsvc replicas as processes with production defaults, floods them
// from a second loopback address with refresh-token churn, anonymous
// WatchRevocations calls and forged access tokens while a legitimate
// shopper's GetCart latency is measured, and prints what the attack did and
// cost as Markdown, with the goals it is held to. Progress goes to stderr.
// It exits non-zero on errors only (2 for bad flags): a missed goal is in
// the table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokencart/tokencart/bench/abuse"
	"github.com/tokencart/tokencart/internal/version"
)

// errUsage marks a command line that cannot run; the flag package has
// already said why.
var errUsage = errors.New("usage")

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == abuse.AttackerCommand {
		// The attacker's process, which the scenario starts itself.
		err = abuse.RunAttacker(context.Background(), os.Args[2:])
	} else {
		err = run(os.Args[1:])
	}
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tokencart-abuse:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	opts := abuse.Options{Progress: os.Stderr}
	fs := flag.NewFlagSet("tokencart-abuse", flag.ContinueOnError)
	fs.DurationVar(&opts.Duration, "duration", time.Minute, "length of the flood")
	fs.DurationVar(&opts.Warmup, "warmup", 20*time.Second, "every kind of traffic before the readings, so that what grows during the flood is state")
	fs.IntVar(&opts.Cycles, "cycles", 20000, "refresh-and-reuse cycles the churn begins at most")
	fs.StringVar(&opts.BinDir, "bin", "", "directory of prebuilt authsvc and catalogsvc binaries (default: build them)")
	procLog := fs.String("process-log", "", "write the services' output to this file (default: discard)")
	out := fs.String("out", "", "also write the Markdown report to this file")
	fs.Var(version.NewFlag("tokencart-abuse"), "version", version.Usage)
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return nil
	case err != nil:
		return errUsage
	case opts.Duration <= 0 || opts.Cycles <= 0 || fs.NArg() > 0:
		fmt.Fprintln(fs.Output(), "--duration and --cycles must be positive, and no arguments follow the flags")
		return errUsage
	}

	// Both files are created before the run, so that a bad path fails
	// before minutes of work.
	report := io.Writer(os.Stdout)
	for _, f := range []struct {
		path string
		use  func(io.Writer)
	}{
		{*procLog, func(w io.Writer) { opts.ProcessLog = w }},
		{*out, func(w io.Writer) { report = io.MultiWriter(os.Stdout, w) }},
	} {
		if f.path == "" {
			continue
		}
		file, err := os.Create(f.path)
		if err != nil {
			return err
		}
		defer file.Close()
		f.use(file)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := abuse.Run(ctx, opts)
	if err != nil {
		return err
	}
	rep.WriteMarkdown(report)
	return nil
}
