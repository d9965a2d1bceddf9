package clientaddr_test

import (
	"net"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/tokencart/tokencart/internal/clientaddr"
)

func TestFromContext(t *testing.T) {
	tests := []struct {
		name string
		hops int
		peer string
		xff  []string
		want string
	}{
		{"peer v4", 0, "192.0.2.1:5555", nil, "192.0.2.1"},
		{"header ignored without trusted hops", 0, "192.0.2.1:5555", []string{"203.0.113.9"}, "192.0.2.1"},
		{"one trusted hop", 1, "10.0.0.1:5555", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"two trusted hops", 2, "10.0.0.1:5555", []string{"198.51.100.1, 203.0.113.9", "10.0.0.2"}, "203.0.113.9"},
		{"fewer entries than hops", 3, "10.0.0.1:5555", []string{"203.0.113.9"}, "10.0.0.1"},
		{"v6 per /64", 0, "[2001:db8:1:2:3:4:5:6]:5555", nil, "2001:db8:1:2::/64"},
		{"v4-mapped v6", 0, "[::ffff:192.0.2.1]:5555", nil, "192.0.2.1"},
		{"garbage header", 1, "10.0.0.1:5555", []string{"not-an-ip"}, clientaddr.Unknown},
		{"no peer", 0, "", nil, clientaddr.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			if tt.peer != "" {
				addr, err := net.ResolveTCPAddr("tcp", tt.peer)
				if err != nil {
					t.Fatal(err)
				}
				ctx = peer.NewContext(ctx, &peer.Peer{Addr: addr})
			}
			if tt.xff != nil {
				ctx = metadata.NewIncomingContext(ctx, metadata.MD{"x-forwarded-for": tt.xff})
			}
			if got := clientaddr.FromContext(ctx, tt.hops); got != tt.want {
				t.Errorf("FromContext = %q, want %q", got, tt.want)
			}
		})
	}
}
