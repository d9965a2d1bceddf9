package serve_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/serve"
)

const notUTF8 = "caf\xe9" // Latin-1 é

// TestCheckUTF8 walks every shape a string can take in a message: the
// path names the first bad field, and never shows the value.
func TestCheckUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  any
		want string // "" for accepted
	}{
		{"valid, nested", &catalogv1.UpsertProductRequest{Product: &catalogv1.Product{Id: "caf\u00e9", Name: "日本茶", Price: &catalogv1.Money{CurrencyCode: "EUR"}}}, ""},
		{"empty", &catalogv1.GetCartRequest{}, ""},
		{"bytes are not strings", &catalogv1.GetCartRequest{CartState: []byte(notUTF8)}, ""},
		{"not a protobuf message", notUTF8, ""},
		{"top-level field", &catalogv1.AddItemRequest{ProductId: notUTF8, Quantity: 1}, "product_id"},
		{"after a valid field", &catalogv1.AddItemRequest{ProductId: "espresso", RequestId: notUTF8}, "request_id"},
		{"nested two deep", &catalogv1.UpsertProductRequest{Product: &catalogv1.Product{Id: "p", Price: &catalogv1.Money{CurrencyCode: notUTF8}}}, "product.price.currency_code"},
		{"list element", &authv1.User{Roles: []string{"customer", notUTF8}}, "roles[1]"},
		{"map key", &structpb.Struct{Fields: map[string]*structpb.Value{notUTF8: structpb.NewNullValue()}}, "fields (a key)"},
		{"map value", &structpb.Struct{Fields: map[string]*structpb.Value{"k": structpb.NewStringValue(notUTF8)}}, "fields (a value).string_value"},
		{"truncated sequence", &authv1.LoginRequest{Email: "a@example.com", Password: "pass\xc3"}, "password"},
		{"surrogate half", &authv1.RegisterRequest{Email: "\xed\xa0\x80@example.com"}, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := serve.CheckUTF8(tt.msg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || st.Message() != tt.want+": not valid UTF-8" {
				t.Fatalf("got %v, want InvalidArgument %q", err, tt.want+": not valid UTF-8")
			}
		})
	}
}

// cartStub counts the AddItem calls that reach it.
type cartStub struct {
	catalogv1.UnimplementedCartServiceServer
	calls atomic.Int32
}

func (c *cartStub) AddItem(context.Context, *catalogv1.AddItemRequest) (*catalogv1.AddItemResponse, error) {
	c.calls.Add(1)
	return &catalogv1.AddItemResponse{}, nil
}

// revocationStub counts the WatchRevocations calls that reach it.
type revocationStub struct {
	authv1.UnimplementedAuthServiceServer
	calls atomic.Int32
}

func (r *revocationStub) WatchRevocations(*authv1.WatchRevocationsRequest, grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	r.calls.Add(1)
	return nil
}

// TestUTF8Interceptors sends strings that are not UTF-8 through a real
// server, unary and streaming: the API's protos let them past decoding, so
// the call ends with INVALID_ARGUMENT naming the field (not INTERNAL) and
// the handler never runs; valid ones reach it.
func TestUTF8Interceptors(t *testing.T) {
	t.Parallel()
	carts, auth := &cartStub{}, &revocationStub{}
	ts := startWith(t, serve.Config{}, func(s grpc.ServiceRegistrar) {
		catalogv1.RegisterCartServiceServer(s, carts)
		authv1.RegisterAuthServiceServer(s, auth)
	})
	conn := dial(t, ts.GRPCAddr())
	cartClient, authClient := catalogv1.NewCartServiceClient(conn), authv1.NewAuthServiceClient(conn)

	// The generated client does not check either: the raw bytes go out.
	if b, err := proto.Marshal(&catalogv1.AddItemRequest{ProductId: notUTF8}); err != nil || !strings.Contains(string(b), notUTF8) {
		t.Fatalf("marshal = %q, %v; want the bytes as they are", b, err)
	}
	_, err := cartClient.AddItem(testContext(t), &catalogv1.AddItemRequest{ProductId: notUTF8, Quantity: 1})
	wantStatus(t, err, codes.InvalidArgument, "product_id: not valid UTF-8")
	stream, err := authClient.WatchRevocations(testContext(t), &authv1.WatchRevocationsRequest{Cursor: notUTF8})
	if err == nil {
		_, err = stream.Recv()
	}
	wantStatus(t, err, codes.InvalidArgument, "cursor: not valid UTF-8")
	if n, m := carts.calls.Load(), auth.calls.Load(); n != 0 || m != 0 {
		t.Fatalf("handlers ran %d and %d times for invalid requests", n, m)
	}

	if _, err := cartClient.AddItem(testContext(t), &catalogv1.AddItemRequest{ProductId: "caf\u00e9", Quantity: 1}); err != nil {
		t.Fatalf("valid AddItem: %v", err)
	}
	stream, err = authClient.WatchRevocations(testContext(t), &authv1.WatchRevocationsRequest{Cursor: "c"})
	if err == nil {
		_, err = stream.Recv()
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("valid WatchRevocations: %v", err)
	}
	if n, m := carts.calls.Load(), auth.calls.Load(); n != 1 || m != 1 {
		t.Fatalf("handlers ran %d and %d times for valid requests, want 1 and 1", n, m)
	}
	if strings.Contains(ts.logs.String(), notUTF8) {
		t.Errorf("the invalid bytes reached the log")
	}
}

func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if st, _ := status.FromError(err); st.Code() != code || st.Message() != msg {
		t.Fatalf("got %v, want %v %q", err, code, msg)
	}
}

// BenchmarkCheckUTF8 is the check's cost on the hot path's requests.
func BenchmarkCheckUTF8(b *testing.B) {
	for _, bm := range []struct {
		name string
		req  any
	}{
		{"GetCart", &catalogv1.GetCartRequest{CartState: make([]byte, 200)}},
		{"AddItem", &catalogv1.AddItemRequest{ProductId: "espresso-blend-1kg", Quantity: 1, RequestId: "0f8fad5b-d9cb-469f-a165-70867728950e", CartState: make([]byte, 200)}},
		{"UpsertProduct", &catalogv1.UpsertProductRequest{Product: &catalogv1.Product{Id: "espresso-blend-1kg", Name: "Espresso blend", Description: strings.Repeat("Dark roast. ", 20), Category: "coffee", Price: &catalogv1.Money{CurrencyCode: "EUR", Units: 24, Nanos: 900_000_000}}}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := serve.CheckUTF8(bm.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
