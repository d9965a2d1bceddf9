package rpcerr_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/rpcerr"
)

var (
	errExpected = errors.New("expected outcome")
	errOperator = errors.New("outcome an operator should see")
	wantRule    = status.Error(codes.NotFound, "no such thing")
	wantLogged  = status.Error(codes.Unavailable, "not now")
)

// TestStatus: each kind of handler error becomes the status its client
// should get, and the detail is logged exactly when it must be, never sent.
func TestStatus(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		code    codes.Code
		message string
		logged  bool
	}{
		{"nil", context.Background(), nil, codes.OK, "", false},
		{"declared status", context.Background(), status.Error(codes.PermissionDenied, "not yours"), codes.PermissionDenied, "not yours", false},
		{"declared status under context", context.Background(), fmt.Errorf("secret-detail: %w", status.Error(codes.InvalidArgument, "bad field")), codes.InvalidArgument, "bad field", true},
		{"the call cancelled", cancelled, fmt.Errorf("query: %w", context.Canceled), codes.Canceled, "", false},
		{"a deadline of the handler's own", context.Background(), fmt.Errorf("secret-detail: %w", context.DeadlineExceeded), codes.Internal, "internal error", true},
		{"rule", context.Background(), fmt.Errorf("secret-detail: %w", errExpected), codes.NotFound, "no such thing", false},
		{"rule that logs", context.Background(), fmt.Errorf("secret-detail: %w", errOperator), codes.Unavailable, "not now", true},
		{"database gone", context.Background(), fmt.Errorf("secret-detail: %w", io.ErrUnexpectedEOF), codes.Unavailable, "database unavailable; retry shortly", true},
		{"anything else", context.Background(), errors.New("secret-detail"), codes.Internal, "internal error", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			m := rpcerr.New(slog.New(slog.NewTextHandler(&log, nil)),
				rpcerr.Rule{Target: errExpected, Status: wantRule},
				rpcerr.Rule{Target: errOperator, Status: wantLogged, Log: true})
			got := m.Status(tt.ctx, tt.err)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("Status(nil) = %v", got)
				}
				return
			}
			st, ok := status.FromError(got)
			if !ok || st.Code() != tt.code || (tt.message != "" && st.Message() != tt.message) {
				t.Errorf("Status = %v, want %v %q", got, tt.code, tt.message)
			}
			if strings.Contains(st.Message(), "secret-detail") {
				t.Errorf("the client is told the detail: %v", got)
			}
			if logged := strings.Contains(log.String(), "secret-detail"); logged != tt.logged {
				t.Errorf("detail logged = %v, want %v; log: %s", logged, tt.logged, log.String())
			}
		})
	}
}
