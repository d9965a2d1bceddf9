// Package expect holds the checks that tests of more than one package
// share: a condition that must come to hold before a deadline
// (Eventually), the gRPC status code of a call (Code, MustCode), a
// service log free of secrets (NoSecrets), and committed fuzz seed
// corpora in step with the code that generates them (FuzzSeed, FuzzSeeds).
//
// Test support follows one naming rule, that of net/http/httptest: what
// helps test package P (fakes, in-process servers, fixtures) lives in a
// subdirectory of P named P + "test": authsvc/authsvctest,
// internal/grpcauth/grpcauthtest, internal/tlsconfig/tlsconfigtest,
// internal/sqldb/sqldbtest. Only checks tied to no one package live here.
package expect

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pollInterval is how often Eventually checks its condition: short beside
// any timeout a test waits for, long enough not to spin a core.
const pollInterval = 5 * time.Millisecond

// Eventually calls cond until it returns true, and ends the test
// (t.Fatalf) if it has not within timeout. what names the condition in
// the report. It is for state that nothing signals; where the code under
// test offers a signal (a channel, a stream message), wait on that.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// Code reports an error (t.Errorf), and lets the test go on, unless err
// carries the gRPC status code want (a nil err carries codes.OK). what
// names the call in the report; it may be empty when the test's name says
// enough. Code returns whether the code was want.
func Code(t testing.TB, what string, err error, want codes.Code) bool {
	t.Helper()
	if msg, ok := codeReport(what, err, want); !ok {
		t.Errorf("%s", msg)
		return false
	}
	return true
}

// MustCode is Code for a test that cannot go on after a wrong code: it
// ends the test (t.Fatalf).
func MustCode(t testing.TB, what string, err error, want codes.Code) {
	t.Helper()
	if msg, ok := codeReport(what, err, want); !ok {
		t.Fatalf("%s", msg)
	}
}

// codeReport says what is wrong with err's code, or reports ok.
func codeReport(what string, err error, want codes.Code) (msg string, ok bool) {
	got := status.Code(err)
	if got == want {
		return "", true
	}
	msg = fmt.Sprintf("code %v (%v), want %v", got, err, want)
	if what != "" {
		msg = what + ": " + msg
	}
	return msg, false
}
