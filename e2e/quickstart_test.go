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
// and checks the cart written through one replica is read through another
// and that curl finds authsvc's discovery document and key set at the
// issuer URL the launcher printed. Then it stops the launcher as Ctrl-C does and expects every process gone.
func TestMakeRunQuickStart(t *testing.T) {
	grpcurl, err := exec.LookPath("grpcurl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("grpcurl not on PATH (make test puts the pinned one there)")
		}
		t.Skip("skipping: grpcurl not on PATH; run through make test")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl not on PATH: the walkthrough fetches the discovery document with it")
		}
		t.Skip("skipping: curl not on PATH")
	}
	t.Parallel()
	l := startLauncher(t, "--grpcurl", grpcurl)
	script := l.waitWalkthrough(t)
	if len(script) < 5 {
		t.Fatalf("walkthrough has %d commands:\n%s\n--- launcher output (tail)\n%s", len(script), strings.Join(script, "\n"), l.log.String())
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
	issuer := "http://127.0.0.1:" + strconv.Itoa(l.port-1)
	for _, want := range []string{"tokencart.catalog.v1.CartService", `"email": "ada@example.com"`, `"quantity": "2"`, `"version": "1"`,
		`"email": "admin@tokencart.local"`, `"admin",`,
		`"issuer":"` + issuer + `"`, `"jwks_uri":"` + issuer + `/.well-known/jwks.json"`, `{"keys":[{`, `"kty":"OKP","kid":`} {
		if !strings.Contains(got, want) {
			t.Errorf("walkthrough output lacks %s:\n%s", want, got)
		}
	}

	l.interrupt(t)
}

// launcherReplicas is how many catalogsvc replicas the launcher starts by
// default: with authsvc, a cluster of launcherReplicas+1 processes, each
// with a gRPC port and an admin port 1000 above it.
const launcherReplicas = 3

// stopBudget is how long after Ctrl-C every port of the launcher's cluster
// must be closed.
const stopBudget = 3 * time.Second

// launcher is a running `make run` launcher (tokencart-run) with its
// default replicas, and what it prints.
type launcher struct {
	cmd  *exec.Cmd
	port int // authsvc's gRPC port; the replicas' follow it, its public HTTP port is the one below
	log  *tail
	// script receives the walkthrough's commands once it is printed.
	script chan []string
	// later receives each line printed after the walkthrough; lines that
	// find it full are only in log.
	later chan string
	// exited receives the launcher's exit error once it has exited and
	// its output has been read.
	exited chan error
}

// startLauncher starts tokencart-run on free ports and a fresh data
// directory, with args added, and kills it when the test ends.
func startLauncher(t *testing.T, args ...string) *launcher {
	t.Helper()
	l := &launcher{
		// One more port, below authsvc's: its public HTTP listener.
		port:   freePortRange(t, "127.0.0.1", launcherReplicas+2) + 1,
		log:    &tail{},
		script: make(chan []string, 1),
		later:  make(chan string, 64),
		exited: make(chan error, 1),
	}
	l.cmd = exec.Command(filepath.Join(binDir, "tokencart-run"),
		append([]string{"--bin", binDir, "--data", t.TempDir(), "--port", strconv.Itoa(l.port)}, args...)...)
	// Through a pipe of our own, so that every line is read before the
	// exit is reported.
	pr, pw := io.Pipe()
	l.cmd.Stdout, l.cmd.Stderr = pw, pw
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		l.read(pr)
	}()
	go func() {
		err := l.cmd.Wait()
		pw.Close()
		<-read
		l.exited <- err
	}()
	t.Cleanup(func() {
		_ = l.cmd.Process.Kill()
		<-read
	})
	return l
}

// read copies the launcher's output into log, and sends the walkthrough to
// script and the lines after it to later.
func (l *launcher) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	var w walkthrough
	done := false
	for sc.Scan() {
		line := sc.Text()
		_, _ = io.WriteString(l.log, line+"\n")
		switch {
		case done:
			select {
			case l.later <- line:
			default:
			}
		case w.add(line):
			done = true
			l.script <- w.cmds
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// waitWalkthrough returns the walkthrough's commands once the launcher has
// printed them, failing the test if it exits or takes too long first.
func (l *launcher) waitWalkthrough(t *testing.T) []string {
	t.Helper()
	select {
	case script := <-l.script:
		return script
	case err := <-l.exited:
		t.Fatalf("launcher exited before serving: %v\n%s", err, l.log.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("no walkthrough printed within 90 s\n%s", l.log.String())
	}
	return nil
}

// interrupt sends the launcher SIGINT, as Ctrl-C at a terminal does, and
// checks that it exits cleanly and that every port of its cluster is
// closed within stopBudget of the signal. It returns how long the launcher
// took to exit after the signal, or stopBudget if it did not.
func (l *launcher) interrupt(t *testing.T) time.Duration {
	t.Helper()
	sent := time.Now()
	if err := l.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	took := stopBudget
	select {
	case err := <-l.exited:
		took = time.Since(sent)
		if err != nil {
			t.Errorf("launcher exit after SIGINT: %v\n%s", err, l.log.String())
		}
	case <-time.After(stopBudget):
		t.Errorf("launcher still running %v after SIGINT\n%s", stopBudget, l.log.String())
	}
	// The launcher exits after its processes have: their ports are closed
	// by then, and must be by stopBudget in any case.
	for i := range launcherReplicas + 1 {
		ports := []int{l.port + i, l.port + 1000 + i}
		if i == 0 {
			ports = append(ports, l.port-1) // authsvc's public HTTP listener
		}
		for _, port := range ports {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections %v after SIGINT", addr, time.Since(sent).Round(time.Millisecond))
			}
		}
	}
	return took
}

// walkthrough collects the indented commands that follow the launcher's
// "Try it" line.
type walkthrough struct {
	in   bool
	cmds []string
}

// add takes the launcher's next line and reports whether the walkthrough
// is complete: a blank line after its commands.
func (w *walkthrough) add(line string) bool {
	switch {
	case strings.HasPrefix(line, "Try it"):
		w.in = true
	case w.in && strings.TrimSpace(line) == "" && len(w.cmds) > 0:
		return true
	case w.in && strings.HasPrefix(line, "  "):
		w.cmds = append(w.cmds, strings.TrimSpace(line))
	}
	return false
}
