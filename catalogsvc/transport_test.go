package catalogsvc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/serve"
)

// TestHostileTransport attacks a replica below gRPC's generated clients:
// an oversized message, a request :path without its leading "/", a ping
// flood, and more concurrent streams than the server allows. Nothing may
// reach a handler that should not, and no store may change.
func TestHostileTransport(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	tg := newTarget(t, c)
	r, v := tg.r, tg.victim
	victimRaw := strings.TrimPrefix(outgoingAuth(t, v.ctx), "Bearer ")

	t.Run("message over MaxRecvMsgSize", func(t *testing.T) {
		// The default limit, 1 MiB; the product id alone is larger.
		tg.expect(t, codes.ResourceExhausted, func() error {
			return v.add(strings.Repeat("a", 1<<20+1), 1).err
		})
	})

	t.Run(":path without its leading slash", func(t *testing.T) {
		body, err := proto.Marshal(&catalogv1.AddItemRequest{ProductId: espresso, Quantity: 1})
		if err != nil {
			t.Fatal(err)
		}
		path := strings.TrimPrefix(catalogv1.CartService_AddItem_FullMethodName, "/")
		for _, tc := range []struct {
			name string
			md   []hpack.HeaderField
		}{
			{"no token", nil},
			{"the victim's token", []hpack.HeaderField{{Name: "authorization", Value: "Bearer " + victimRaw}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// grpc-go (1.79.3 on) refuses a method name that does not
				// start with "/" before looking for a handler: Unimplemented.
				// Had it been routed, the auth selector would have required a
				// token anyway: it exempts exact public names only.
				tg.expect(t, codes.Unimplemented, func() error {
					h := dialH2(t, r.addr)
					h.request(1, path, body, tc.md...)
					return h.status(t, 1)
				})
			})
		}
		// The same raw client with a well-formed path does reach the
		// handler, so the refusal above is about the path.
		h := dialH2(t, r.addr)
		h.request(1, catalogv1.CartService_GetCart_FullMethodName, nil, hpack.HeaderField{Name: "authorization", Value: "Bearer " + victimRaw})
		if err := h.status(t, 1); err != nil {
			t.Fatalf("well-formed raw request: %v", err)
		}
	})

	t.Run("ping flood gets GOAWAY", func(t *testing.T) {
		// grpc-go clamps a client's keepalive time to at least 10s, so
		// a raw framer sends the pings. The server's policy (serve:
		// MinTime 10s) allows two early pings, then sends GOAWAY
		// ENHANCE_YOUR_CALM "too_many_pings" and closes the connection.
		h := dialH2(t, r.addr)
		for i := range 10 {
			if err := h.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
				break // the server may already have closed the connection
			}
		}
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatalf("connection ended without GOAWAY: %v", err)
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				if ga.ErrCode != http2.ErrCodeEnhanceYourCalm || string(ga.DebugData()) != "too_many_pings" {
					t.Errorf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", ga.ErrCode, ga.DebugData())
				}
				return
			}
		}
	})
}

// TestMaxConcurrentStreams: a replica allowing 4 concurrent calls per
// connection never runs more than 4 handlers for one connection. A gRPC
// client honours the limit the server advertises (SETTINGS), so its
// excess calls wait in the client and all complete as slots free; a raw
// client that ignores it has the excess streams refused (RST_STREAM
// REFUSED_STREAM, safe to retry: nothing ran). A blocking interceptor,
// inside the real chain, counts the handlers in flight.
func TestMaxConcurrentStreams(t *testing.T) {
	t.Parallel()
	const limit = 4
	var inflight, peak atomic.Int64
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	block := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info.FullMethod != catalogv1.CatalogService_GetProduct_FullMethodName {
			return handler(ctx, req)
		}
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return handler(ctx, req)
	}
	c := newCluster(t, modes[0])
	cfg := c.config()
	cfg.Serve.MaxConcurrentStreams = limit
	r := startReplica(t, cfg, true, serve.WithUnaryInterceptors(block))
	get := &catalogv1.GetProductRequest{ProductId: espresso}

	t.Run("gRPC client: the excess waits", func(t *testing.T) {
		const calls = 3 * limit
		var wg sync.WaitGroup
		errs := make(chan error, calls)
		for range calls {
			wg.Go(func() {
				_, err := r.catalog.GetProduct(testContext(t), get)
				errs <- err
			})
		}
		// Release one call at a time, each once `limit` are in flight
		// (or all that remain), so the excess has every chance to crowd in.
		for i := range calls {
			<-entered
			expect.Eventually(t, testTimeout, "handlers to fill", func() bool { return inflight.Load() == int64(min(limit, calls-i)) })
			release <- struct{}{}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("call: %v", err)
			}
		}
		if got := peak.Load(); got != limit {
			t.Errorf("at most %d handlers ran at once, want exactly the limit %d", got, limit)
		}
	})

	t.Run("raw client: the excess is refused", func(t *testing.T) {
		peak.Store(0)
		body, err := proto.Marshal(get)
		if err != nil {
			t.Fatal(err)
		}
		h := dialH2(t, r.addr)
		// Ignore the server's SETTINGS: open limit+2 streams at once.
		ids := make([]uint32, limit+2)
		for i := range ids {
			ids[i] = uint32(2*i + 1)
			h.request(ids[i], catalogv1.CatalogService_GetProduct_FullMethodName, body)
		}
		for range limit {
			<-entered
		}
		refused := map[uint32]bool{}
		for len(refused) < 2 {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok {
				if rst.ErrCode != http2.ErrCodeRefusedStream {
					t.Errorf("stream %d reset with %v, want REFUSED_STREAM", rst.StreamID, rst.ErrCode)
				}
				refused[rst.StreamID] = true
			}
		}
		if !refused[ids[limit]] || !refused[ids[limit+1]] {
			t.Errorf("refused streams %v, want the last two of %v", refused, ids)
		}
		if got := inflight.Load(); got != limit {
			t.Errorf("%d handlers in flight, want %d", got, limit)
		}
		for range limit {
			release <- struct{}{}
		}
		for _, id := range ids[:limit] {
			if err := h.status(t, id); err != nil {
				t.Errorf("stream %d: %v", id, err)
			}
		}
		if got := peak.Load(); got > limit {
			t.Errorf("%d handlers ran at once, over the limit %d", got, limit)
		}
	})
}

// outgoingAuth returns the authorization value ctx carries.
func outgoingAuth(t *testing.T, ctx context.Context) string {
	t.Helper()
	md, _ := metadata.FromOutgoingContext(ctx)
	if v := md["authorization"]; len(v) == 1 {
		return v[0]
	}
	t.Fatal("no authorization in the context")
	return ""
}

// h2 is a raw HTTP/2 client connection: it sends what it is told, with no
// regard for the server's settings.
type h2 struct {
	fr     *http2.Framer
	addr   string
	enc    *hpack.Encoder
	encBuf bytes.Buffer
	// Read by status: responses to streams other than the one awaited.
	seen map[uint32]*h2Response
}

type h2Response struct {
	grpcStatus string
	message    string
	done       bool
}

func dialH2(t *testing.T, addr string) *h2 {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	h := &h2{fr: http2.NewFramer(conn, conn), addr: addr, seen: map[uint32]*h2Response{}}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.encBuf)
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// request sends a unary gRPC call on stream id: headers for path, then
// body as one length-prefixed message, ending the stream.
func (h *h2) request(id uint32, path string, body []byte, md ...hpack.HeaderField) {
	h.encBuf.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: path}, {Name: ":authority", Value: h.addr},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	}, md...) {
		_ = h.enc.WriteField(f)
	}
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.encBuf.Bytes(), EndHeaders: true})
	msg := make([]byte, 5+len(body))
	binary.BigEndian.PutUint32(msg[1:], uint32(len(body)))
	copy(msg[5:], body)
	_ = h.fr.WriteData(id, true, msg)
}

// status reads frames until stream id ends and returns its gRPC status as
// an error (nil for OK). It answers the server's SETTINGS and PINGs.
func (h *h2) status(t *testing.T, id uint32) error {
	t.Helper()
	for {
		if r := h.seen[id]; r != nil && r.done {
			code, err := strconv.Atoi(r.grpcStatus)
			if err != nil {
				t.Fatalf("stream %d ended without grpc-status", id)
			}
			if code == 0 {
				return nil
			}
			return status.Error(codes.Code(code), r.message)
		}
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = h.fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			r := h.response(f.StreamID)
			for _, hf := range f.Fields {
				switch hf.Name {
				case "grpc-status":
					r.grpcStatus = hf.Value
				case "grpc-message":
					r.message = hf.Value
				}
			}
			r.done = r.done || f.StreamEnded()
		case *http2.DataFrame:
			h.response(f.StreamID).done = h.response(f.StreamID).done || f.StreamEnded()
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v %q", f.ErrCode, f.DebugData())
		}
	}
}

func (h *h2) response(id uint32) *h2Response {
	r := h.seen[id]
	if r == nil {
		r = &h2Response{}
		h.seen[id] = r
	}
	return r
}
