package ratelimit_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/grpcauth"
	limit "github.com/tokencart/tokencart/internal/ratelimit"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/token"
)

type testService struct {
	grpc_testing.UnimplementedTestServiceServer
}

func (testService) EmptyCall(context.Context, *grpc_testing.Empty) (*grpc_testing.Empty, error) {
	return &grpc_testing.Empty{}, nil
}

// authenticator accepts any token and makes it the subject.
type authenticator struct{}

func (authenticator) Authenticate(_ context.Context, raw string) (token.Claims, error) {
	return token.Claims{Subject: raw}, nil
}

// TestOneCallerCannotStarveAnother runs a real server with the per-caller
// limiter behind the auth interceptor: alice exhausts her bucket and is
// refused with ResourceExhausted, a RetryInfo and a retry-after header, while bob's
// calls, interleaved with hers, all pass.
func TestOneCallerCannotStarveAnother(t *testing.T) {
	lim, err := limit.New(0.1, 5, 1024, grpcauth.CallerKey(0)) // one token per 10 s: nothing refills during the test
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(serve.Config{Name: "ratelimit-test", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"},
		serve.WithAuth(grpcauth.AuthFunc(authenticator{}), nil),
		serve.WithUnaryInterceptors(lim.UnaryServerInterceptor()),
	)
	if err != nil {
		t.Fatal(err)
	}
	grpc_testing.RegisterTestServiceServer(srv.GRPC(), testService{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	<-srv.Ready()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := grpc_testing.NewTestServiceClient(conn)
	call := func(user string) (metadata.MD, error) {
		var hdr metadata.MD
		cctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+user), 5*time.Second)
		defer cancel()
		_, err := tc.EmptyCall(cctx, &grpc_testing.Empty{}, grpc.Header(&hdr))
		return hdr, err
	}

	// alice floods: 20 calls at once against a burst of 5.
	var aliceOK, aliceLimited int
	var retryAfter string
	for range 20 {
		hdr, err := call("alice")
		switch status.Code(err) {
		case codes.OK:
			aliceOK++
		case codes.ResourceExhausted:
			aliceLimited++
			if v := hdr.Get(limit.RetryAfterHeader); len(v) == 1 {
				retryAfter = v[0]
			}
			if d, ok := client.RetryDelay(err); !ok || d <= 0 || d > 10*time.Second {
				t.Errorf("%v: RetryInfo %v, %v; want a delay of at most 10s", err, d, ok)
			}
		default:
			t.Fatalf("alice: %v", err)
		}
	}
	if aliceLimited == 0 {
		t.Errorf("alice made 20 calls at once and none was limited (ok=%d)", aliceOK)
	}
	if aliceOK < 5 {
		t.Errorf("alice got %d calls through, want at least her burst of 5", aliceOK)
	}
	if retryAfter == "" {
		t.Error("no retry-after header on a limited call")
	}
	// While alice is limited, bob gets his whole burst.
	bobOK := 0
	for range 5 {
		if _, err := call("bob"); err != nil {
			t.Errorf("bob refused while alice is limited: %v", err)
		} else {
			bobOK++
		}
	}
	if _, err := call("alice"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("alice after bob's calls: %v, want still ResourceExhausted", err)
	}
	t.Logf("alice ok=%d limited=%d; bob ok=%d; retry-after=%ss", aliceOK, aliceLimited, bobOK, retryAfter)
}

func TestNewRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name              string
		perSecond         float64
		burst, maxCallers int
	}{
		{"zero rate", 0, 1, 1024},
		{"zero burst", 1, 0, 1024},
		{"too few callers", 1, 1, 4},
	}
	for _, tt := range tests {
		if _, err := limit.New(tt.perSecond, tt.burst, tt.maxCallers, grpcauth.CallerKey(0)); err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
}

// TestMemoryBounded shows the number of remembered callers stays bounded:
// many distinct callers each get their full burst (forgetting a caller only
// lets it through sooner), and the limiter keeps working.
func TestMemoryBounded(t *testing.T) {
	lim, err := limit.New(1, 1, 64, grpcauth.CallerKey(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		ctx := grpcauth.WithClaims(context.Background(), token.Claims{Subject: "user-" + strconv.Itoa(i)})
		if err := lim.Limit(ctx); err != nil {
			t.Fatalf("caller %d refused on its first call: %v", i, err)
		}
	}
	if got := limit.Remembered(lim); got > 64 {
		t.Errorf("remembers %d callers, bound is 64", got)
	}
}
