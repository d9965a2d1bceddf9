// Package envflag fills the flags of a [flag.FlagSet] that were not given on
// the command line from environment variables, so every setting of a binary
// can come from either place (command line first, then environment, then the
// flag's default).
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// EnvName returns the environment variable that backs the flag flagName for
// a binary with the given prefix: both upper-cased, '-' and '.' replaced by
// '_', joined by '_'. EnvName("catalogsvc", "grpc-addr") is
// "CATALOGSVC_GRPC_ADDR". An empty prefix yields the bare name.
func EnvName(prefix, flagName string) string {
	name := envPart(flagName)
	if prefix == "" {
		return name
	}
	return envPart(prefix) + "_" + name
}

func envPart(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' {
			return '_'
		}
		return unicode.ToUpper(r)
	}, s)
}

// Parse parses args into fs and then, for every flag not set on the command
// line, sets it from the environment variable EnvName(prefix, name) when that
// variable is set and non-empty (an empty variable means "use the default").
// Before parsing it appends " (env NAME)" to each flag's usage so -h shows
// where a setting can come from. An invalid environment value is reported
// with the variable's name (not its value, which may be a secret); all such
// errors are returned together. Errors from fs.Parse, including
// [flag.ErrHelp], are returned as they are.
func Parse(fs *flag.FlagSet, prefix string, args []string) error {
	fs.VisitAll(func(f *flag.Flag) {
		suffix := " (env " + EnvName(prefix, f.Name) + ")"
		if !strings.HasSuffix(f.Usage, suffix) {
			f.Usage += suffix
		}
	})
	if err := fs.Parse(args); err != nil {
		return err
	}

	onCommandLine := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if onCommandLine[f.Name] {
			return
		}
		env := EnvName(prefix, f.Name)
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s (flag --%s): %w", env, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// MustParse is a command's whole reading of its configuration: Parse, then
// validate. It returns only when both succeed; otherwise it exits, 0 after
// -h (the usage is printed), and 2 after printing the error, prefixed by
// fs.Name(), to stderr.
func MustParse(fs *flag.FlagSet, prefix string, args []string, validate func() error) {
	err := Parse(fs, prefix, args)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err == nil {
		err = validate()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", fs.Name(), err)
		os.Exit(2)
	}
}
