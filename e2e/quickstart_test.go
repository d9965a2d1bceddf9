package e2e_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/cluster"
)

// TestMakeRunQuickStart starts the `make run` launcher, takes the grpcurl
// walkthrough it prints, runs it verbatim in bash with the real grpcurl,
// and checks the cart written through one replica is read through another.
// Then it stops the launcher as Ctrl-C does and expects every process gone.
func TestMakeRunQuickStart(t *testing.T) {
	grpcurl, err := exec.LookPath("grpcurl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("grpcurl not on PATH (make test puts the pinned one there)")
		}
		t.Skip("skipping: grpcurl not on PATH; run through make test")
	}
	port := freePortRange(t, "127.0.0.1", 4)
	data := t.TempDir()
	cmd := exec.Command(filepath.Join(binDir, "tokencart-run"),
		"--bin", binDir, "--data", data, "--port", strconv.Itoa(port), "--grpcurl", grpcurl)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	commands := make(chan []string, 1)
	var logTail tail
	go func() {
		commands <- readWalkthrough(stdout, &logTail)
		_, _ = io.Copy(&logTail, stdout)
	}()
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	var script []string
	select {
	case script = <-commands:
	case err := <-exited:
		t.Fatalf("launcher exited before serving: %v\n%s", err, logTail.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("no walkthrough printed within 90 s\n%s", logTail.String())
	}
	if len(script) < 5 {
		t.Fatalf("walkthrough has %d commands:\n%s\n--- launcher output (tail)\n%s", len(script), strings.Join(script, "\n"), logTail.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, "bash", "-c", cluster.Script(script))
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n--- script\n%s\n--- output\n%s", err, strings.Join(script, "\n"), out)
	}
	got := string(out)
	// The list, the registered account, the cart read back through the
	// last replica after the write through the first, and the admin's
	// roles.
	for _, want := range []string{"tokencart.catalog.v1.CartService", `"email": "ada@example.com"`, `"quantity": "2"`, `"version": "1"`,
		`"email": "admin@tokencart.local"`, `"admin",`} {
		if !strings.Contains(got, want) {
			t.Errorf("walkthrough output lacks %s:\n%s", want, got)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("launcher exit after Ctrl-C: %v\n%s", err, logTail.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("launcher did not stop within 60 s of Ctrl-C\n%s", logTail.String())
	}
	for i := range 4 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port+i))
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the launcher stopped", addr)
		}
	}
}

// readWalkthrough copies the launcher's output into log and returns the
// indented commands that follow its "Try it" line.
func readWalkthrough(r io.Reader, log io.Writer) []string {
	sc := bufio.NewScanner(r)
	var cmds []string
	in := false
	for sc.Scan() {
		line := sc.Text()
		_, _ = io.WriteString(log, line+"\n")
		switch {
		case strings.HasPrefix(line, "Try it"):
			in = true
		case in && strings.TrimSpace(line) == "" && len(cmds) > 0:
			return cmds
		case in && strings.HasPrefix(line, "  "):
			cmds = append(cmds, strings.TrimSpace(line))
		}
	}
	return cmds
}
