package retryinfo_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/retryinfo"
)

func TestError(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		after, want time.Duration
	}{
		{1500 * time.Millisecond, 1501 * time.Millisecond},
		{1500*time.Millisecond + 300*time.Microsecond, 1501 * time.Millisecond},
		{0, time.Millisecond},
		{-time.Second, time.Millisecond},
	} {
		err := retryinfo.Error(codes.ResourceExhausted, "slow down", tt.after)
		if status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != "slow down" {
			t.Errorf("Error(%v) = %v", tt.after, err)
		}
		if got, ok := retryinfo.Delay(err); !ok || got != tt.want {
			t.Errorf("Delay(Error(%v)) = %v, %v; want %v", tt.after, got, ok, tt.want)
		}
	}
	if _, ok := retryinfo.Delay(errors.New("plain")); ok {
		t.Error("a plain error carries a delay")
	}
	if _, ok := retryinfo.Delay(status.Error(codes.Unavailable, "no detail")); ok {
		t.Error("a status without details carries a delay")
	}
}
