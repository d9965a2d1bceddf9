package expect_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/expect"
)

// recorder is a testing.TB that keeps what is reported through it. Its
// Fatalf ends the goroutine, as testing's does, so a check that ends the
// test must run under run.
type recorder struct {
	testing.TB
	errors []string
	fatal  bool
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.Errorf(format, a...)
	r.fatal = true
	runtime.Goexit()
}

// run calls check with r on a goroutine of its own and reports whether
// check returned (rather than ending with Fatalf).
func (r *recorder) run(check func(testing.TB)) (returned bool) {
	done := make(chan bool)
	go func() {
		defer func() { done <- !r.fatal }()
		check(r)
	}()
	return <-done
}

func TestCode(t *testing.T) {
	denied := status.Error(codes.PermissionDenied, "no")
	tests := []struct {
		name       string
		err        error
		want       codes.Code
		wantReport string // "" for none
	}{
		{"matching code", denied, codes.PermissionDenied, ""},
		{"nil error is OK", nil, codes.OK, ""},
		{"wrong code", denied, codes.NotFound, "GetCart: code PermissionDenied (rpc error: code = PermissionDenied desc = no), want NotFound"},
		{"nil error, failure wanted", nil, codes.Unauthenticated, "GetCart: code OK (<nil>), want Unauthenticated"},
		{"plain error is Unknown", errors.New("boom"), codes.Internal, "GetCart: code Unknown (boom), want Internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			var ok bool
			if !r.run(func(tb testing.TB) { ok = expect.Code(tb, "GetCart", tt.err, tt.want) }) {
				t.Fatal("Code ended the test")
			}
			if ok != (tt.wantReport == "") {
				t.Errorf("Code returned %v", ok)
			}
			if got := strings.Join(r.errors, "\n"); got != tt.wantReport {
				t.Errorf("reported %q, want %q", got, tt.wantReport)
			}

			r = &recorder{TB: t}
			returned := r.run(func(tb testing.TB) { expect.MustCode(tb, "GetCart", tt.err, tt.want) })
			if returned != (tt.wantReport == "") {
				t.Errorf("MustCode returned %v, want %v", returned, tt.wantReport == "")
			}
			if got := strings.Join(r.errors, "\n"); got != tt.wantReport {
				t.Errorf("MustCode reported %q, want %q", got, tt.wantReport)
			}
		})
	}

	r := &recorder{TB: t}
	r.run(func(tb testing.TB) { expect.Code(tb, "", status.Error(codes.Aborted, "x"), codes.OK) })
	if want := "code Aborted (rpc error: code = Aborted desc = x), want OK"; len(r.errors) != 1 || r.errors[0] != want {
		t.Errorf("without what: reported %q, want %q", r.errors, want)
	}
}

func TestEventually(t *testing.T) {
	t.Parallel()
	calls := 0
	r := &recorder{TB: t}
	if !r.run(func(tb testing.TB) {
		expect.Eventually(tb, time.Minute, "the third call", func() bool { calls++; return calls == 3 })
	}) || len(r.errors) != 0 {
		t.Errorf("a condition that comes to hold: reported %q", r.errors)
	}
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}

	r = &recorder{TB: t}
	start := time.Now()
	if r.run(func(tb testing.TB) { expect.Eventually(tb, 20*time.Millisecond, "never", func() bool { return false }) }) {
		t.Error("Eventually returned for a condition that never holds")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", took)
	}
	if want := "timed out after 20ms waiting for never"; len(r.errors) != 1 || r.errors[0] != want {
		t.Errorf("reported %q, want %q", r.errors, want)
	}
}
