package cluster_test

import (
	"bufio"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/cluster"
)

// TestStopAllInParallel stops processes that ignore SIGTERM: each is killed
// after the timeout, and stopping them all takes about one timeout, not
// one per process.
func TestStopAllInParallel(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to launch")
	}
	pr, pw := io.Pipe()
	out := cluster.NewOutput(pw)
	var procs []*cluster.Process
	for range 3 {
		// exec keeps the ignored SIGTERM, and leaves no child behind.
		p, err := cluster.Start(cluster.Spec{Name: "stubborn", Path: "sh", Args: []string{"-c", `trap "" TERM; echo ready; exec sleep 300`}}, out)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		procs = append(procs, p)
	}
	sc := bufio.NewScanner(pr)
	for range procs {
		if !sc.Scan() {
			t.Fatalf("a process ended before it was ready: %v", sc.Err())
		}
	}

	const timeout = 500 * time.Millisecond
	began := time.Now()
	err := cluster.StopAll(timeout, procs...)
	took := time.Since(began)
	if err == nil {
		t.Error("StopAll of processes it had to kill: nil error")
	}
	for _, p := range procs {
		select {
		case <-p.Done():
		default:
			t.Errorf("process %d still running after StopAll", p.Pid())
		}
	}
	// One after the other, they would take a timeout each.
	if took < timeout || took >= time.Duration(len(procs))*timeout {
		t.Errorf("StopAll of %d processes that ignore SIGTERM took %v, want about %v (one timeout)", len(procs), took, timeout)
	}
}
