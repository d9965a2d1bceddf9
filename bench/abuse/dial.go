package abuse

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"

	"github.com/tokencart/tokencart/client"
)

// Source addresses: the shopper's, and the attacker's, which the services'
// per-address limits and guards must tell apart.
const (
	legitSource    = "127.0.0.1"
	attackerSource = "127.0.0.2"
)

// dialFrom dials target with the production client (round robin, retries,
// deadlines), every connection leaving from the source address src.
func dialFrom(src, target string) (*client.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := client.Dial(target, client.Options{DialOptions: []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}),
	}})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", target, src, err)
	}
	return conn, nil
}
