// Package clientaddr names the client of a gRPC call by network address, for
// the limits that apply to callers before they are authenticated (failed
// logins, registrations, failed token checks).
package clientaddr

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Unknown is the address of a call whose peer address cannot be read.
const Unknown = "unknown"

// FromContext returns the address a call is limited under: the peer's IP,
// or with trustedHops > 0 the x-forwarded-for entry that many hops from the
// right (the address the outermost trusted proxy saw). IPv6 addresses count
// per /64, the block one subscriber usually holds, so that one subscriber
// cannot take a fresh budget with every address of its block.
func FromContext(ctx context.Context, trustedHops int) string {
	var addr string
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = host
		}
	}
	if trustedHops > 0 {
		var hops []string
		for _, v := range metadata.ValueFromIncomingContext(ctx, "x-forwarded-for") {
			for h := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
		if len(hops) >= trustedHops {
			addr = hops[len(hops)-trustedHops]
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return Unknown
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
