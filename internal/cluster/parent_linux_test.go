package cluster_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/cluster"
)

// helperEnv makes the test binary the launcher of TestServicesDieWithLauncher.
const helperEnv = "TOKENCART_CLUSTER_TEST_LAUNCHER"

// TestMain lets TestServicesDieWithLauncher run this binary as a launcher:
// it starts a long-running process through cluster.Start, prints its pid
// and waits to be killed.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "" {
		os.Exit(m.Run())
	}
	p, err := cluster.Start(cluster.Spec{Name: "sleeper", Path: "sleep", Args: []string{"300"}}, cluster.NewOutput(os.Stderr))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("pid", p.Pid())
	<-p.Done()
	os.Exit(0)
}

// TestServicesDieWithLauncher SIGKILLs a launcher (this test binary, see
// TestMain) and sees the process it started end too, instead
// of living on with its ports.
func TestServicesDieWithLauncher(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep binary to launch")
	}
	launcher := exec.Command(os.Args[0])
	launcher.Env = append(os.Environ(), helperEnv+"=1")
	launcher.Stderr = os.Stderr
	stdout, err := launcher.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := launcher.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = launcher.Process.Kill(); _ = launcher.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("launcher printed no pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil {
		t.Fatalf("launcher printed %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !alive(pid) {
		t.Fatalf("process %d not running before the launcher was killed", pid)
	}

	if err := launcher.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = launcher.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running 10 s after its launcher was SIGKILLed", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// alive reports whether pid runs: it exists and is not a zombie waiting
// for whoever inherited it to reap it.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
