package e2e_test

import (
	"strings"
	"testing"
	"time"
)

// idleWindow is how long a healthy idle cluster must print nothing: long
// enough for a dozen of the replicas' revocation stream renewals (every
// 5 s) and for their connections to authsvc to reach their maximum age.
const idleWindow = 60 * time.Second

// TestMakeRunIdleQuietAndStopsFast starts the `make run` launcher as a
// newcomer does and checks what they see: after the walkthrough, which is
// its last block, a healthy idle cluster prints nothing for idleWindow
// (routine reconnects are not news); then Ctrl-C closes every gRPC and
// admin port within stopBudget.
func TestMakeRunIdleQuietAndStopsFast(t *testing.T) {
	t.Parallel()
	l := startLauncher(t)
	l.waitWalkthrough(t)

	var printed []string
	idle := time.NewTimer(idleWindow)
	defer idle.Stop()
	for waiting := true; waiting; {
		select {
		case line := <-l.later:
			printed = append(printed, line)
		case err := <-l.exited:
			t.Fatalf("launcher exited while idle: %v\n%s", err, l.log.String())
		case <-idle.C:
			waiting = false
		}
	}
	if len(printed) > 0 {
		t.Errorf("an idle cluster printed %d lines in %v after the walkthrough, want none:\n%s", len(printed), idleWindow, strings.Join(printed, "\n"))
	}

	took := l.interrupt(t)
	t.Logf("SIGINT to launcher exit, every port closed: %v (budget %v)", took.Round(time.Millisecond), stopBudget)
}
