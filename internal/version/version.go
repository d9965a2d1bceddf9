// Package version says what a binary was built from, read from the build
// information the Go toolchain embeds: the main module's version (a tag
// such as v0.1.0 when built from one with `go install module@version`,
// "(devel)" from a checkout), the VCS revision and whether the tree was
// modified (when built with VCS stamping), and the Go version.
package version

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// String returns the one-line version of the running binary, named name,
// such as "authsvc v0.1.0 (revision 1a2b3c4d5e6f, modified) go1.27.3".
func String(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (no build information)"
	}
	return Format(name, bi)
}

// Format returns the one-line version that bi describes.
func Format(name string, bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", name, v)
	if rev != "" {
		fmt.Fprintf(&b, " (revision %.12s", rev)
		if modified == "true" {
			b.WriteString(", modified")
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " %s", bi.GoVersion)
	return b.String()
}

// Flag is a boolean flag that prints the version and exits 0 as soon as
// it is set: register it with fs.Var(version.NewFlag(name), "version",
// version.Usage), and --version works however strict the binary's other
// flags and their validation are.
type Flag struct {
	name string
	out  io.Writer
	exit func(int)
}

// Usage is the usage line of the --version flag.
const Usage = "print the version and exit"

// NewFlag returns the flag of the binary named name, printing to stdout.
func NewFlag(name string) *Flag { return &Flag{name: name, out: os.Stdout, exit: os.Exit} }

// String implements flag.Value.
func (f *Flag) String() string { return "false" }

// IsBoolFlag makes --version take no value.
func (f *Flag) IsBoolFlag() bool { return true }

// Set prints the version and exits when the flag is set to true.
func (f *Flag) Set(s string) error {
	if s != "true" {
		return nil
	}
	fmt.Fprintln(f.out, String(f.name))
	f.exit(0)
	return nil
}

var _ flag.Value = (*Flag)(nil)
