package expect

// Keeping the committed seed corpora of fuzz targets in step with the code
// that generates them: a test builds the seed files with FuzzSeed, and
// FuzzSeeds either checks testdata/fuzz against them or, with the test's
// -update-fuzz-seeds flag, rewrites them.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzSeed encodes values as one corpus file in the `go test fuzz v1` format.
// It supports the argument types tokencart's fuzz targets take.
func FuzzSeed(values ...any) string {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case int64:
			fmt.Fprintf(&b, "int64(%d)\n", v)
		case int32:
			fmt.Fprintf(&b, "int32(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%t)\n", v)
		default:
			panic(fmt.Sprintf("expect.FuzzSeed: unsupported %T", v))
		}
	}
	return b.String()
}

// FuzzSeeds compares files (paths relative to testdata/fuzz, such as
// "FuzzVerify/seed-valid") with what is committed there and fails the test
// for each one missing or stale; with update it writes them instead.
func FuzzSeeds(t *testing.T, files map[string]string, update bool) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz")
	if !update {
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(got) != want {
				t.Errorf("%s is missing or stale (%v); rerun with -update-fuzz-seeds", name, err)
			}
		}
		return
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
