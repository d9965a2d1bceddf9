package grpcauth_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// server, client, feed and poller must stop when its test ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
