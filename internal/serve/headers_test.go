package serve_test

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/tokencart/tokencart/internal/serve"
)

// TestHeaderListLimit shows the metadata bound. A header the size of the
// largest accepted token passes. A client that ignores the advertised limit
// and sends 1 MiB of headers, as one value or as a thousand, gets no call:
// the transport gives up on the header block and closes the connection
// (gRPC-Go with x/net/http2: COMPRESSION_ERROR for the one value,
// PROTOCOL_ERROR for the many) before any interceptor runs, and the server
// serves on.
func TestHeaderListLimit(t *testing.T) {
	t.Parallel()
	ts := start(t, serve.Config{})
	client := testgrpc.NewTestServiceClient(dial(t, ts.GRPCAddr()))
	ctx := metadata.AppendToOutgoingContext(testContext(t), "authorization", "Bearer "+strings.Repeat("A", 8<<10))
	if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatalf("call with an 8 KiB token: %v", err)
	}

	oneLarge := []hpack.HeaderField{{Name: "authorization", Value: "Bearer " + strings.Repeat("A", 1<<20)}}
	var manySmall []hpack.HeaderField
	for i := range 1024 {
		manySmall = append(manySmall, hpack.HeaderField{Name: "x-filler-" + strconv.Itoa(i), Value: strings.Repeat("A", 1<<10)})
	}
	tests := []struct {
		name  string
		extra []hpack.HeaderField
	}{
		{"one 1 MiB value", oneLarge},
		{"1024 values of 1 KiB", manySmall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			advertised, answer := rawCall(t, ts.GRPCAddr(), tt.extra)
			if advertised != serve.MaxHeaderListSize {
				t.Errorf("server advertised SETTINGS_MAX_HEADER_LIST_SIZE %d, want %d", advertised, serve.MaxHeaderListSize)
			}
			switch answer.(type) {
			case nil, *http2.GoAwayFrame, *http2.RSTStreamFrame:
			default:
				t.Errorf("server answered the oversized call: %v", answer)
			}
			if _, err := client.EmptyCall(testContext(t), &testgrpc.Empty{}); err != nil {
				t.Errorf("call after the oversized one: %v", err)
			}
		})
	}
}

// rawCall sends a gRPC call to EmptyCall with the extra headers over a new
// HTTP/2 connection, ignoring the server's limits, and returns the header
// list size the server advertised and its answer to the call: the first
// HEADERS or RST_STREAM frame of stream 1, a GOAWAY, or nil when the
// connection ended without one.
func rawCall(t *testing.T, addr string, extra []hpack.HeaderField) (advertised uint32, answer http2.Frame) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	fields := append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/" + testServiceName + "/EmptyCall"},
		{Name: ":authority", Value: addr},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}, extra...)
	for _, f := range fields {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	// Written while the answer is read: the server may stop reading, or
	// close the connection, before the block is through.
	fr := http2.NewFramer(conn, conn)
	written := make(chan error, 1)
	go func() { written <- writeCall(conn, fr, block.Bytes()) }()
	defer func() {
		conn.Close()
		// The server may close the connection mid-write.
		if err := <-written; err != nil {
			t.Logf("writing the call: %v", err)
		}
	}()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Logf("connection ended: %v", err)
			return advertised, nil
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if v, ok := f.Value(http2.SettingMaxHeaderListSize); ok {
				advertised = v
			}
		case *http2.GoAwayFrame:
			return advertised, f
		case *http2.RSTStreamFrame, *http2.HeadersFrame:
			if f.Header().StreamID == 1 {
				return advertised, f
			}
		}
	}
}

// writeCall writes the client preface, SETTINGS and the header block of
// stream 1, in frames of HTTP/2's default maximum size.
func writeCall(conn net.Conn, fr *http2.Framer, block []byte) error {
	const frameSize = 16 << 10
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		return err
	}
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	n := min(len(block), frameSize)
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:n], EndStream: true, EndHeaders: n == len(block)}); err != nil {
		return err
	}
	for block = block[n:]; len(block) > 0; block = block[n:] {
		n = min(len(block), frameSize)
		if err := fr.WriteContinuation(1, n == len(block), block[:n]); err != nil {
			return err
		}
	}
	return nil
}
