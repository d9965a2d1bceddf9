package version_test

import (
	"bytes"
	"flag"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/internal/version"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	rev := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123"}}
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"tagged", debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "v0.1.0"}},
			"authsvc v0.1.0 go1.27.3"},
		{"checkout with VCS stamping", debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "(devel)"}, Settings: rev},
			"authsvc (devel) (revision 0123456789ab) go1.27.3"},
		{"modified tree", debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "v0.1.1-0.20261201-0123456789ab"},
			Settings: append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})},
			"authsvc v0.1.1-0.20261201-0123456789ab (revision 0123456789ab, modified) go1.27.3"},
		{"no version", debug.BuildInfo{GoVersion: "go1.27.3"}, "authsvc (devel) go1.27.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := version.Format("authsvc", &tt.bi); got != tt.want {
				t.Errorf("Format = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFlag: --version prints this binary's version and exits 0 during
// parsing, before any other flag is looked at; without it nothing happens.
func TestFlag(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args     []string
		wantExit bool
	}{
		{[]string{"--version", "--no-such-flag"}, true},
		{[]string{"-version=true"}, true},
		{[]string{"--version=false"}, false},
		{nil, false},
	} {
		var out bytes.Buffer
		exited := -1
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(&out)
		fs.Var(version.NewFlagTo("tool", &out, func(code int) { exited = code; panic(exitPanic{}) }), "version", version.Usage)
		func() {
			defer func() {
				if r := recover(); r != nil && r != (exitPanic{}) {
					panic(r)
				}
			}()
			_ = fs.Parse(tt.args)
		}()
		if gotExit := exited == 0; gotExit != tt.wantExit {
			t.Errorf("%q: exited %d, want exit 0: %v", tt.args, exited, tt.wantExit)
		}
		if tt.wantExit && (!strings.HasPrefix(out.String(), "tool ") || !strings.HasSuffix(out.String(), runtime.Version()+"\n")) {
			t.Errorf("%q printed %q, want the tool's name and Go version", tt.args, out.String())
		}
	}
}

type exitPanic struct{}
