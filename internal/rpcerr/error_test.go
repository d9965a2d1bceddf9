package rpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/google/go-cmp/cmp"

	"github.com/tokencart/tokencart/internal/rpcerr"
)

// TestErrorDetails: each kind of Error becomes a status with exactly the
// details a client reads: ErrorInfo always, BadRequest for a field,
// RetryInfo (rounded up to the millisecond) for a limit.
func TestErrorDetails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     *rpcerr.Error
		code    codes.Code
		message string
		details []any
	}{
		{"plain", rpcerr.Errorf(codes.NotFound, "THING_NOT_FOUND", "no thing %d", 7), codes.NotFound, "no thing 7",
			[]any{&errdetails.ErrorInfo{Reason: "THING_NOT_FOUND", Domain: rpcerr.Domain}}},
		{"with metadata", rpcerr.Errorf(codes.PermissionDenied, "ROLE", "no").With("role", "admin"), codes.PermissionDenied, "no",
			[]any{&errdetails.ErrorInfo{Reason: "ROLE", Domain: rpcerr.Domain, Metadata: map[string]string{"role": "admin"}}}},
		{"invalid field", rpcerr.Invalid("product.price", "must not exceed %d", 5), codes.InvalidArgument, "product.price: must not exceed 5",
			[]any{
				&errdetails.ErrorInfo{Reason: rpcerr.ReasonFieldInvalid, Domain: rpcerr.Domain, Metadata: map[string]string{"field": "product.price"}},
				&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "product.price", Description: "must not exceed 5"}}},
			}},
		{"limit", rpcerr.Exhausted(rpcerr.ReasonRateLimited, "slow down", 1500*time.Millisecond+300*time.Microsecond), codes.ResourceExhausted, "slow down",
			[]any{
				&errdetails.ErrorInfo{Reason: rpcerr.ReasonRateLimited, Domain: rpcerr.Domain},
				&errdetails.RetryInfo{RetryDelay: durpb(1501 * time.Millisecond)},
			}},
		{"limit already over", rpcerr.Exhausted(rpcerr.ReasonRateLimited, "now", -time.Second), codes.ResourceExhausted, "now",
			[]any{
				&errdetails.ErrorInfo{Reason: rpcerr.ReasonRateLimited, Domain: rpcerr.Domain},
				&errdetails.RetryInfo{RetryDelay: durpb(time.Millisecond)},
			}},
	}
	m := rpcerr.New(slog.New(slog.DiscardHandler))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Through the Mapper, wrapped, as a handler returns it.
			got := status.Convert(m.Status(context.Background(), fmt.Errorf("context: %w", tt.err)))
			if got.Code() != tt.code || got.Message() != tt.message {
				t.Errorf("status %v %q, want %v %q", got.Code(), got.Message(), tt.code, tt.message)
			}
			if diff := cmp.Diff(tt.details, got.Details(), protocmp.Transform()); diff != "" {
				t.Errorf("details (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFallbackErrorInfo: a status declared without details, and the
// Mapper's own outcomes, still reach the client with an ErrorInfo.
func TestFallbackErrorInfo(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	m := rpcerr.New(slog.New(slog.DiscardHandler))
	for _, tt := range []struct {
		ctx    context.Context
		err    error
		reason string
	}{
		{context.Background(), status.Error(codes.FailedPrecondition, "declared bare"), "FAILED_PRECONDITION"},
		{context.Background(), errors.New("unexpected"), rpcerr.ReasonInternal},
		{cancelled, context.Canceled, "CANCELLED"},
	} {
		var info *errdetails.ErrorInfo
		for _, d := range status.Convert(m.Status(tt.ctx, tt.err)).Details() {
			if i, ok := d.(*errdetails.ErrorInfo); ok {
				info = i
			}
		}
		if info.GetReason() != tt.reason || info.GetDomain() != rpcerr.Domain {
			t.Errorf("%v: ErrorInfo %v, want reason %s in %s", tt.err, info, tt.reason, rpcerr.Domain)
		}
	}
}

// TestErrorIs: a declared Error matches its copies (With, a wrap), and not
// another reason.
func TestErrorIs(t *testing.T) {
	t.Parallel()
	base := rpcerr.Errorf(codes.NotFound, "A", "a")
	if !errors.Is(fmt.Errorf("x: %w", base.With("k", "v")), base) {
		t.Error("a copy with metadata does not match")
	}
	if errors.Is(rpcerr.Errorf(codes.NotFound, "B", "a"), base) {
		t.Error("another reason matches")
	}
}

func durpb(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
