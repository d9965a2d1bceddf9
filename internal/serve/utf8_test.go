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
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/serve"
)

const notUTF8 = "caf\xe9" // Latin-1 é

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

// TestInvalidUTF8 sends strings that are not UTF-8 through a real server,
// unary and streaming. The API is proto3, whose strings must be UTF-8:
// gRPC-Go's codec refuses such a request with INTERNAL before any
// interceptor or handler runs, and the server counts it under
// reason="invalid_utf8". Valid strings reach the handlers.
func TestInvalidUTF8(t *testing.T) {
	t.Parallel()
	carts, auth := &cartStub{}, &revocationStub{}
	ended := newEndNotifier()
	ts := startWith(t, serve.Config{}, func(s grpc.ServiceRegistrar) {
		catalogv1.RegisterCartServiceServer(s, carts)
		authv1.RegisterAuthServiceServer(s, auth)
	}, serve.WithServerOptions(grpc.StatsHandler(ended)))
	conn := dial(t, ts.GRPCAddr())
	ctx := testContext(t)

	// Go's stubs do not even send one: marshalling fails.
	if _, err := proto.Marshal(&catalogv1.AddItemRequest{ProductId: notUTF8}); err == nil || !strings.Contains(err.Error(), "invalid UTF-8") {
		t.Fatalf("marshal of a string that is not UTF-8: %v, want an invalid UTF-8 error", err)
	}
	stringField := func(field protowire.Number, v string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, field, protowire.BytesType), v)
	}
	calls := []struct {
		method       string
		clientStream bool
		payload      []byte
	}{
		{"AddItem", false, stringField(1, notUTF8)},                                 // product_id
		{"WatchRevocations", true, stringField(1, notUTF8)},                         // cursor
		{"AddItem", false, append(stringField(1, "p"), stringField(3, "r\xff")...)}, // request_id
	}
	for _, c := range calls {
		service := catalogv1.CartService_ServiceDesc.ServiceName
		if c.method == "WatchRevocations" {
			service = authv1.AuthService_ServiceDesc.ServiceName
		}
		err := sendRaw(ctx, conn, "/"+service+"/"+c.method, c.clientStream, c.payload)
		msg := status.Convert(err).Message()
		if status.Code(err) != codes.Internal || !strings.HasPrefix(msg, unmarshalFailure) || !strings.Contains(msg, "invalid UTF-8") {
			t.Fatalf("%s with a string that is not UTF-8: %v, want Internal %q... invalid UTF-8", c.method, err, unmarshalFailure)
		}
	}
	ended.wait(t, len(calls))
	if n, m := carts.calls.Load(), auth.calls.Load(); n != 0 || m != 0 {
		t.Fatalf("handlers ran %d and %d times for invalid requests", n, m)
	}
	_, body := httpGet(t, ts.AdminAddr(), "/metrics")
	for _, want := range []struct {
		method, reason string
		value          float64
	}{
		{"AddItem", "invalid_utf8", 2},
		{"WatchRevocations", "invalid_utf8", 1},
		{"AddItem", "wire_format", 0},
	} {
		if got, ok := metricValue(body, malformedMetric, "grpc_method="+want.method, "reason="+want.reason); !ok || got != want.value {
			t.Errorf("%s{grpc_method=%q,reason=%q} = %v (found %v), want %v", malformedMetric, want.method, want.reason, got, ok, want.value)
		}
	}

	cartClient, authClient := catalogv1.NewCartServiceClient(conn), authv1.NewAuthServiceClient(conn)
	if _, err := cartClient.AddItem(ctx, &catalogv1.AddItemRequest{ProductId: "caf\u00e9", Quantity: 1}); err != nil {
		t.Fatalf("valid AddItem: %v", err)
	}
	stream, err := authClient.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{Cursor: "c"})
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
