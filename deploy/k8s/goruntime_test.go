package k8s_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime/metrics"
	"strings"
	"testing"
)

// runtimeHelperEnv makes the test binary, instead of running tests, report
// the GC settings the Go runtime read from its environment (TestMain);
// TestGoRuntimeParsing runs it so.
const runtimeHelperEnv = "TOKENCART_K8S_GO_RUNTIME_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(runtimeHelperEnv) != "1" {
		os.Exit(m.Run())
	}
	s := []metrics.Sample{{Name: "/gc/gomemlimit:bytes"}, {Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	fmt.Printf("gomemlimit=%d gogc=%d\n", s[0].Value.Uint64(), s[1].Value.Uint64())
	os.Exit(0)
}

// The checker's reading of GOMEMLIMIT and GOGC must be the Go runtime's:
// start this test binary with each value and compare what the runtime took
// (or whether it refused to start) with what parseGoByteCount and
// parseGoInt say.
func TestGoRuntimeParsing(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, name, value string) (out string, started bool) {
		t.Helper()
		cmd := exec.Command(os.Args[0])
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "GOMEMLIMIT=") && !strings.HasPrefix(e, "GOGC=") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		cmd.Env = append(cmd.Env, runtimeHelperEnv+"=1", name+"="+value)
		b, err := cmd.CombinedOutput()
		if err != nil {
			if strings.Contains(string(b), "malformed "+name) {
				return "", false
			}
			t.Fatalf("%s=%q: helper failed: %v\n%s", name, value, err, b)
		}
		return string(b), true
	}
	for _, v := range []string{
		"200MiB", "209715200", "1GiB", "5B", "0", "3KiB", "1TiB",
		"200Mi", "200M", "200MB", "200mib", "0.8GiB", "200 MiB", "-5", "+5", "+5MiB", "-0", "KiB", "iB", "B", "1_000",
		"9223372036854775807", "8388608TiB",
	} {
		t.Run("GOMEMLIMIT="+v, func(t *testing.T) {
			t.Parallel()
			n, err := parseGoByteCount(v)
			out, started := run(t, "GOMEMLIMIT", v)
			switch {
			case started != (err == nil):
				t.Fatalf("runtime started: %v, but parseGoByteCount(%q) = %d, %v", started, v, n, err)
			case started && !strings.Contains(out, fmt.Sprintf("gomemlimit=%d ", n)):
				t.Fatalf("parseGoByteCount(%q) = %d, but the runtime reports\n%s", v, n, out)
			}
		})
	}
	for _, v := range []string{"400", "100", "1000", "abc", "+400", "4e2", " 400", "-1", "4_00", "3000000000"} {
		t.Run("GOGC="+v, func(t *testing.T) {
			t.Parallel()
			n, err := parseGoInt(v)
			want := uint64(100) // the runtime's default for what it cannot parse
			switch {
			case err == nil && n < 0:
				want = math.MaxUint64 // off: reported as -1
			case err == nil:
				want = uint64(n)
			}
			if out, _ := run(t, "GOGC", v); !strings.Contains(out, fmt.Sprintf("gogc=%d\n", want)) {
				t.Fatalf("parseGoInt(%q) = %d, %v, so want the runtime's GOGC %d; it reports\n%s", v, n, err, int64(want), out)
			}
		})
	}
}
