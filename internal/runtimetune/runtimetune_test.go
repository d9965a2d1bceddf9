package runtimetune

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// The Go runtime reads GOGC and GOMEMLIMIT when the process starts, so each
// case runs this test binary anew with its environment: TestMain, seeing
// helperEnv, runs apply with the cgroup limit that helperLimitEnv names,
// prints its log and what the runtime then reports, and exits.
const (
	helperEnv      = "TOKENCART_RUNTIMETUNE_HELPER"
	helperLimitEnv = "TOKENCART_RUNTIMETUNE_HELPER_LIMIT" // bytes, "none" or "error"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "1" {
		os.Exit(m.Run())
	}
	var limit memlimit.Provider
	switch v := os.Getenv(helperLimitEnv); v {
	case "none":
		limit = func() (uint64, error) { return 0, memlimit.ErrNoLimit }
	case "error":
		limit = func() (uint64, error) { return 0, errors.New("no cgroup here") }
	default:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		limit = memlimit.Limit(n)
	}
	apply(slog.New(slog.NewJSONHandler(os.Stdout, nil)), limit)
	s := []metrics.Sample{{Name: "/gc/gomemlimit:bytes"}, {Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	fmt.Printf(`{"msg":"runtime reports","gomemlimit":%d,"gogc":%d}`+"\n", s[0].Value.Uint64(), s[1].Value.Uint64())
	os.Exit(0)
}

// TestApply: with GOGC and GOMEMLIMIT unset the process runs at DefaultGOGC
// and MemoryLimitRatio of the cgroup's limit (none when there is none, or
// when it cannot be read); a GOGC or GOMEMLIMIT in the environment wins;
// AUTOMEMLIMIT=off turns the limit off; and the settings are logged once.
func TestApply(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	noLimit := uint64(math.MaxInt64)
	ratio := MemoryLimitRatio // a variable: the library rounds at run time
	fromCgroup := uint64(float64(gib) * ratio)
	tests := []struct {
		name       string
		env        []string
		cgroup     string
		wantGOGC   uint64 // as the runtime reports it: off is MaxUint64
		wantLimit  uint64
		wantLogged map[string]any
	}{
		{
			name: "defaults", cgroup: strconv.Itoa(gib),
			wantGOGC: DefaultGOGC, wantLimit: fromCgroup,
			wantLogged: map[string]any{"gogc": float64(DefaultGOGC), "gogc_from": "default", "gomemlimit": float64(fromCgroup), "gomemlimit_from": "cgroup"},
		},
		{
			name: "no cgroup limit", cgroup: "none",
			wantGOGC: DefaultGOGC, wantLimit: noLimit,
			wantLogged: map[string]any{"gogc_from": "default", "gomemlimit": "none", "gomemlimit_from": "none"},
		},
		{
			name: "cgroup unreadable", cgroup: "error",
			wantGOGC: DefaultGOGC, wantLimit: noLimit,
			wantLogged: map[string]any{"gomemlimit": "none", "gomemlimit_from": "none", "gomemlimit_error": "failed to set GOMEMLIMIT: no cgroup here"},
		},
		{
			name: "environment wins", env: []string{"GOGC=150", "GOMEMLIMIT=100MiB"}, cgroup: strconv.Itoa(gib),
			wantGOGC: 150, wantLimit: 100 << 20,
			wantLogged: map[string]any{"gogc": float64(150), "gogc_from": "env", "gomemlimit": float64(100 << 20), "gomemlimit_from": "env"},
		},
		{
			name: "GOGC off", env: []string{"GOGC=off"}, cgroup: strconv.Itoa(gib),
			wantGOGC: math.MaxUint64, wantLimit: fromCgroup,
			wantLogged: map[string]any{"gogc": float64(-1), "gogc_from": "env", "gomemlimit_from": "cgroup"},
		},
		{
			name: "AUTOMEMLIMIT off", env: []string{"AUTOMEMLIMIT=off"}, cgroup: strconv.Itoa(gib),
			wantGOGC: DefaultGOGC, wantLimit: noLimit,
			wantLogged: map[string]any{"gogc_from": "default", "gomemlimit": "none", "gomemlimit_from": "none"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0])
			for _, e := range os.Environ() {
				if !strings.HasPrefix(e, "GOGC=") && !strings.HasPrefix(e, "GOMEMLIMIT=") && !strings.HasPrefix(e, "AUTOMEMLIMIT=") {
					cmd.Env = append(cmd.Env, e)
				}
			}
			cmd.Env = append(cmd.Env, helperEnv+"=1", helperLimitEnv+"="+tt.cgroup)
			cmd.Env = append(cmd.Env, tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, stderr.Bytes())
			}
			var logged []map[string]any
			var runtime struct{ GOMemLimit, GOGC uint64 }
			for line := range strings.Lines(string(out)) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("output line is not JSON: %v: %s", err, line)
				}
				switch rec["msg"] {
				case "runtime settings":
					logged = append(logged, rec)
				case "runtime reports":
					if err := json.Unmarshal([]byte(line), &struct {
						GOMemLimit *uint64 `json:"gomemlimit"`
						GOGC       *uint64 `json:"gogc"`
					}{&runtime.GOMemLimit, &runtime.GOGC}); err != nil {
						t.Fatal(err)
					}
				default:
					t.Errorf("unexpected line: %s", line)
				}
			}
			if runtime.GOGC != tt.wantGOGC || runtime.GOMemLimit != tt.wantLimit {
				t.Errorf("runtime runs at GOGC %d, GOMEMLIMIT %d; want %d, %d", runtime.GOGC, runtime.GOMemLimit, tt.wantGOGC, tt.wantLimit)
			}
			if len(logged) != 1 {
				t.Fatalf("%d runtime settings lines, want 1:\n%s", len(logged), out)
			}
			for k, want := range tt.wantLogged {
				if got := logged[0][k]; got != want {
					t.Errorf("logged %s = %v (%T), want %v (%T)", k, got, got, want, want)
				}
			}
			if _, ok := logged[0]["gomaxprocs"]; !ok {
				t.Errorf("logged %v, want gomaxprocs too", logged[0])
			}
		})
	}
}
