package envflag_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/envflag"
)

func TestEnvName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix, flag, want string
	}{
		{"CATALOGSVC", "grpc-addr", "CATALOGSVC_GRPC_ADDR"},
		{"catalogsvc", "grpc-addr", "CATALOGSVC_GRPC_ADDR"},
		{"authsvc", "dsn", "AUTHSVC_DSN"},
		{"auth-svc", "log.level", "AUTH_SVC_LOG_LEVEL"},
		{"", "max-recv-msg-size", "MAX_RECV_MSG_SIZE"},
	}
	for _, tt := range tests {
		if got := envflag.EnvName(tt.prefix, tt.flag); got != tt.want {
			t.Errorf("EnvName(%q, %q) = %q, want %q", tt.prefix, tt.flag, got, tt.want)
		}
	}
}

type values struct {
	addr  string
	n     int
	delay time.Duration
	debug bool
}

func newFlagSet(v *values) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&v.addr, "grpc-addr", ":8082", "gRPC listen address")
	fs.IntVar(&v.n, "max-items", 10, "maximum items")
	fs.DurationVar(&v.delay, "drain-delay", 5*time.Second, "drain delay")
	fs.BoolVar(&v.debug, "debug", false, "debug mode")
	return fs
}

// Not parallel: t.Setenv changes the process environment.
func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    values
		wantErr string // the variable the error must name; "" for no error
	}{
		{
			name: "defaults",
			want: values{addr: ":8082", n: 10, delay: 5 * time.Second},
		},
		{
			name: "command line only",
			args: []string{"--grpc-addr", ":1", "--max-items=3", "--debug"},
			want: values{addr: ":1", n: 3, delay: 5 * time.Second, debug: true},
		},
		{
			name: "environment only",
			env: map[string]string{
				"SVC_GRPC_ADDR": ":2", "SVC_MAX_ITEMS": "4", "SVC_DRAIN_DELAY": "1s", "SVC_DEBUG": "true",
			},
			want: values{addr: ":2", n: 4, delay: time.Second, debug: true},
		},
		{
			name: "command line wins over environment",
			args: []string{"--grpc-addr=:1"},
			env:  map[string]string{"SVC_GRPC_ADDR": ":2", "SVC_MAX_ITEMS": "4"},
			want: values{addr: ":1", n: 4, delay: 5 * time.Second},
		},
		{
			name: "empty variable means default",
			env:  map[string]string{"SVC_GRPC_ADDR": "", "SVC_MAX_ITEMS": ""},
			want: values{addr: ":8082", n: 10, delay: 5 * time.Second},
		},
		{
			name: "other prefixes are ignored",
			env:  map[string]string{"OTHER_GRPC_ADDR": ":3", "GRPC_ADDR": ":4"},
			want: values{addr: ":8082", n: 10, delay: 5 * time.Second},
		},
		{
			name:    "invalid int",
			env:     map[string]string{"SVC_MAX_ITEMS": "many"},
			wantErr: "SVC_MAX_ITEMS",
		},
		{
			name:    "invalid duration",
			env:     map[string]string{"SVC_DRAIN_DELAY": "5"},
			wantErr: "SVC_DRAIN_DELAY",
		},
		{
			name:    "invalid bool",
			env:     map[string]string{"SVC_DEBUG": "yes please"},
			wantErr: "SVC_DEBUG",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var got values
			err := envflag.Parse(newFlagSet(&got), "svc", tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseReportsEveryBadVariable(t *testing.T) {
	t.Setenv("SVC_MAX_ITEMS", "x")
	t.Setenv("SVC_DRAIN_DELAY", "y")
	var v values
	err := envflag.Parse(newFlagSet(&v), "SVC", nil)
	for _, name := range []string{"SVC_MAX_ITEMS", "SVC_DRAIN_DELAY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Parse error = %v, want it to name %s", err, name)
		}
	}
}

func TestParseCommandLineErrorAndHelp(t *testing.T) {
	var v values
	if err := envflag.Parse(newFlagSet(&v), "SVC", []string{"--no-such-flag"}); err == nil {
		t.Error("Parse accepted an unknown flag")
	}
	if err := envflag.Parse(newFlagSet(&v), "SVC", []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Parse(-h) = %v, want flag.ErrHelp", err)
	}
}

func TestUsageNamesVariables(t *testing.T) {
	var v values
	fs := newFlagSet(&v)
	// Parsing twice must not repeat the suffix.
	for range 2 {
		if err := envflag.Parse(fs, "catalogsvc", nil); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.PrintDefaults()
	out := buf.String()
	for _, want := range []string{"(env CATALOGSVC_GRPC_ADDR)", "(env CATALOGSVC_MAX_ITEMS)", "(env CATALOGSVC_DEBUG)"} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("usage mentions %q %d times, want once:\n%s", want, n, out)
		}
	}
}
