// Package client dials tokencart's services the way a production client
// should: one connection per replica, calls spread over them by gRPC's
// round_robin policy, UNAVAILABLE retried by a service-config retry policy,
// a deadline on every call, keepalive pings that drop a half-open
// connection, and an idempotency key on every cart mutation so that a
// retried mutation is applied once.
//
// Targets are either a list of replica addresses ("host:port,host:port"),
// fed to a resolver that the caller may update as replicas come and go, or
// any gRPC target such as "dns:///catalogsvc-headless.tokencart:8082" for a
// Kubernetes headless service, whose addresses the DNS resolver refreshes.
//
//	conn, err := client.Dial("127.0.0.1:8082,127.0.0.1:8083,127.0.0.1:8084", client.Options{})
//	cart := catalogv1.NewCartServiceClient(conn)
//	ctx = client.WithToken(ctx, accessToken)
//	resp, err := cart.AddItem(ctx, &catalogv1.AddItemRequest{ProductId: "espresso-blend-1kg", Quantity: 1})
//
// Errors carry details (AIP-193) that FieldViolations, RetryDelay, Reason
// and Describe read; see the examples.
package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ServiceConfig spreads calls over every resolved address and retries
// UNAVAILABLE (a replica that is draining or gone) on another one. Retried
// cart mutations are safe because Dial's interceptor gives each one a
// request_id that the retry carries unchanged.
const ServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [
      {"service": "tokencart.auth.v1.AuthService"},
      {"service": "tokencart.catalog.v1.CatalogService"},
      {"service": "tokencart.catalog.v1.CartService"}
    ],
    "timeout": "10s",
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// DefaultCallTimeout is the deadline Dial puts on calls that have none.
const DefaultCallTimeout = 10 * time.Second

// ConnectParams bound the reconnection backoff: gRPC's default grows to 120 s,
// so after a long outage a client could wait minutes after the service is
// back. Here the wait between attempts stays under 2.4 s (2 s plus 20%
// jitter) and an attempt that gets no answer gives up after 3 s, so a
// connection is back within about 5 s of the service, however long it was
// away. (The services' own connection to authsvc uses the same settings.)
var ConnectParams = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  100 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   2 * time.Second,
	},
	MinConnectTimeout: 3 * time.Second,
}

// Keepalive makes a connection that went silent fail while calls wait on it:
// a replica that vanished without a FIN or RST (a host powered off, a NAT or
// firewall that forgot the flow) leaves a half-open connection that TCP alone
// does not notice for many minutes, and round_robin keeps sending calls to
// it. With these settings the client pings once a call has waited 10 s with
// nothing received, closes the connection when the ping gets no answer
// within 5 s, and the calls move to the other replicas: a half-open
// connection is gone within about 15 s. Idle connections are not pinged
// (PermitWithoutStream false). 10 s is gRPC's floor for Time and the
// services' keepalive enforcement minimum, so these pings are never
// punished as abuse. (The services' own connection to authsvc uses the same
// settings.)
var Keepalive = keepalive.ClientParameters{
	Time:    10 * time.Second,
	Timeout: 5 * time.Second,
}

// Options adjust Dial.
type Options struct {
	// Creds are the transport credentials; nil means plaintext, for local
	// development only.
	Creds credentials.TransportCredentials
	// CallTimeout is the deadline for calls without one; 0 means
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// Extra dial options, appended last.
	DialOptions []grpc.DialOption
}

// Conn is a client connection with, for address-list targets, the resolver
// that feeds it.
type Conn struct {
	*grpc.ClientConn
	replicas *manual.Resolver
}

// Dial connects to target: a comma-separated list of addresses, or a gRPC
// target with a scheme (dns:///..., unix:...).
func Dial(target string, opts Options) (*Conn, error) {
	if opts.Creds == nil {
		opts.Creds = insecure.NewCredentials()
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(opts.Creds),
		grpc.WithDefaultServiceConfig(ServiceConfig),
		grpc.WithConnectParams(ConnectParams),
		grpc.WithKeepaliveParams(Keepalive),
		grpc.WithChainUnaryInterceptor(deadline(opts.CallTimeout), idempotencyKey),
	}
	c := &Conn{}
	if !strings.Contains(target, "://") && !strings.HasPrefix(target, "unix:") {
		addrs := splitAddrs(target)
		if len(addrs) == 0 {
			return nil, fmt.Errorf("client: no address in %q", target)
		}
		c.replicas = manual.NewBuilderWithScheme("tokencart-replicas")
		c.replicas.InitialState(resolver.State{Addresses: toResolverAddrs(addrs)})
		dialOpts = append(dialOpts, grpc.WithResolvers(c.replicas))
		target = c.replicas.Scheme() + ":///replicas"
	}
	dialOpts = append(dialOpts, opts.DialOptions...)
	cc, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.ClientConn = cc
	return c, nil
}

// SetReplicas replaces the replica addresses of a connection dialled with an
// address list: new replicas get calls as soon as they connect, removed ones
// are drained. It is an error for other targets, whose resolver decides.
func (c *Conn) SetReplicas(addrs []string) error {
	if c.replicas == nil {
		return fmt.Errorf("client: target was not an address list")
	}
	c.replicas.UpdateState(resolver.State{Addresses: toResolverAddrs(addrs)})
	return nil
}

// WithToken returns ctx whose outgoing calls carry the access token.
func WithToken(ctx context.Context, accessToken string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+accessToken)
}

// NewRequestID returns a random idempotency key.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func toResolverAddrs(addrs []string) []resolver.Address {
	out := make([]resolver.Address, len(addrs))
	for i, a := range addrs {
		out[i] = resolver.Address{Addr: a}
	}
	return out
}

func deadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// idempotencyKey fills an empty request_id field of the request, in place:
// the retry policy resends the same bytes, and a caller that resends the
// same message after an error sends the same key too, so neither can apply
// a mutation twice.
func idempotencyKey(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if m, ok := req.(proto.Message); ok {
		r := m.ProtoReflect()
		if fd := r.Descriptor().Fields().ByName("request_id"); fd != nil && fd.Kind() == protoreflect.StringKind && r.Get(fd).String() == "" {
			r.Set(fd, protoreflect.ValueOfString(NewRequestID()))
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
