package gen_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// serverOnly are module path prefixes that a program using only the API
// module must not download: the services' databases (pgx, SQLite),
// migrations, Kubernetes test libraries, Prometheus and the middleware.
// (OpenTelemetry and go-jose are in grpc's own module graph, so they are
// not the services' to keep out.)
var serverOnly = []string{
	"github.com/jackc/",
	"modernc.org/",
	"github.com/pressly/goose",
	"k8s.io/",
	"sigs.k8s.io/",
	"github.com/prometheus/",
	"github.com/grpc-ecosystem/",
}

// stubUser is a program that a team outside this repository writes against
// the API module: it builds a client of every service.
const stubUser = `package main

import (
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

func main() {
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	_ = authv1.NewAuthServiceClient(conn)
	_ = catalogv1.NewCatalogServiceClient(conn)
	_ = catalogv1.NewCartServiceClient(conn)
	fmt.Println(authv1.AuthService_Login_FullMethodName, catalogv1.CartService_AddItem_FullMethodName)
}
`

// TestModuleStandsAlone builds a program in a new module outside this
// repository's root module that requires the API module (through a
// replace to this directory, as `go get` would fetch it), and checks that
// nothing in its module graph or go.sum belongs to the servers.
func TestModuleStandsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: downloads and builds a module (-short)")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	apiDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	goMod := "module example.com/stubuser\n\ngo 1.26.0\n\n" +
		"require github.com/tokencart/tokencart/gen v0.0.0-00010101000000-000000000000\n\n" +
		"replace github.com/tokencart/tokencart/gen => " + apiDir + "\n"
	for name, content := range map[string]string{"go.mod": goMod, "main.go": stubUser} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goCmd, args...)
		cmd.Dir = dir
		// The new module is on its own: no workspace, and GOFLAGS from this
		// repository's Makefile apply to it as to any module.
		cmd.Env = append(os.Environ(), "GOWORK=off")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return string(out)
	}
	run("mod", "tidy")
	run("build", "-o", filepath.Join(dir, "stubuser"), ".")
	if got, want := run("run", "."), "/tokencart.auth.v1.AuthService/Login /tokencart.catalog.v1.CartService/AddItem\n"; got != want {
		t.Errorf("the program printed %q, want %q", got, want)
	}

	modules := run("list", "-m", "all")
	if !strings.Contains(modules, "github.com/tokencart/tokencart/gen ") {
		t.Fatalf("go list -m all has no API module:\n%s", modules)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for source, text := range map[string]string{"go list -m all": modules, "go.sum": string(sum)} {
		for _, line := range strings.Split(text, "\n") {
			path, _, _ := strings.Cut(line, " ")
			if path == "github.com/tokencart/tokencart" {
				t.Errorf("%s has the services' module: %s", source, line)
			}
			for _, prefix := range serverOnly {
				if strings.HasPrefix(path, prefix) {
					t.Errorf("%s has a server dependency: %s", source, line)
				}
			}
		}
	}
}
