package jwtbench

import (
	"os"
	"strings"
	"testing"
)

// TestSameJoseAsServices: the benchmark is the evidence for the go-jose that
// internal/token uses, and in a module of its own nothing else keeps the two
// versions together.
func TestSameJoseAsServices(t *testing.T) {
	const jose = "github.com/go-jose/go-jose/v4"
	got, want := requiredVersion(t, "go.mod", jose), requiredVersion(t, "../../go.mod", jose)
	if got != want {
		t.Errorf("this module benchmarks %s %s, the services use %s: run `go get %s@%s` here", jose, got, want, jose, want)
	}
}

// requiredVersion returns the version of module path that the go.mod file
// requires (in a require block or on a one-line require).
func requiredVersion(t *testing.T, file, path string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == path {
			return f[1]
		}
	}
	t.Fatalf("%s does not require %s", file, path)
	return ""
}
