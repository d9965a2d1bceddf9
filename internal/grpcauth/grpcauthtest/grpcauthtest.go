// Package grpcauthtest is an in-process stand-in for authsvc's
// token-facing API (GetKeySet, WatchRevocations, IntrospectToken), the
// upstream of package grpcauth, on a real gRPC server, for tests of
// services that validate tokens. It mints tokens with real keys, revokes
// them, rotates keys, and can cut or silence its revocation feed and fail
// introspection, so tests can exercise every path of grpcauth.
package grpcauthtest

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/token"
)

// Defaults of the fake.
const (
	Issuer   = grpcauth.DefaultIssuer
	Audience = "tokencart"
	// ClientID is the client_id of the tokens Mint signs.
	ClientID = "tokencart"
	// DefaultHeartbeat is the fake feed's heartbeat interval.
	DefaultHeartbeat = 100 * time.Millisecond
)

// Server is a running fake authsvc.
type Server struct {
	authv1.UnimplementedAuthServiceServer

	addr      string
	heartbeat time.Duration

	serving struct {
		sync.Mutex // guards gs and done
		gs         *grpc.Server
		done       chan struct{}
	}

	mu              sync.Mutex // guards the fields below
	signer          token.SigningKey
	published       []token.SigningKey // keys in the JWKS, signer included
	history         []*authv1.Revocation
	revoked         map[string]bool      // token ids
	revokedSessions map[string]bool      // session ids
	cutoffs         map[string]time.Time // account: sessions created before it are revoked
	serviceCred     string               // required on the service methods when set
	feedDown        bool                 // WatchRevocations fails and open streams end
	feedSilent      bool                 // open streams stay open but send nothing
	introspectDown  bool                 // IntrospectToken fails with Unavailable
	keySetDown      bool                 // GetKeySet fails with Unavailable
	changed         chan struct{}        // closed and replaced on every change
	verifierForKeys *token.Verifier

	keySetCalls     atomic.Int64
	introspectCalls atomic.Int64
	watchCalls      atomic.Int64
}

// Option changes a fake before it starts.
type Option func(*Server)

// WithHeartbeat sets the feed's heartbeat interval.
func WithHeartbeat(d time.Duration) Option { return func(s *Server) { s.heartbeat = d } }

// WithServiceCredential makes WatchRevocations and IntrospectToken require
// cred in the service-credential metadata, as authsvc does.
func WithServiceCredential(cred string) Option { return func(s *Server) { s.serviceCred = cred } }

// Start runs a fake authsvc on 127.0.0.1:0 until the test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	key, err := token.GenerateSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{
		heartbeat:       DefaultHeartbeat,
		signer:          key,
		published:       []token.SigningKey{key},
		revoked:         map[string]bool{},
		revokedSessions: map[string]bool{},
		cutoffs:         map[string]time.Time{},
		changed:         make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.rebuildVerifierLocked()
	s.addr = "127.0.0.1:0"
	s.serve(tb)
	tb.Cleanup(s.Stop)
	return s
}

// serve listens on s.addr (choosing a port the first time) and serves.
func (s *Server) serve(tb testing.TB) {
	tb.Helper()
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = lis.Addr().String()
	gs := grpc.NewServer()
	authv1.RegisterAuthServiceServer(gs, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	s.serving.Lock()
	s.serving.gs, s.serving.done = gs, done
	s.serving.Unlock()
}

// Stop stops serving: connections are closed and new ones refused, as
// when authsvc is down, until Restart.
func (s *Server) Stop() {
	s.serving.Lock()
	defer s.serving.Unlock()
	if s.serving.gs == nil {
		return
	}
	s.serving.gs.Stop()
	<-s.serving.done
	s.serving.gs = nil
}

// Restart serves again on the same address, with the same keys and
// revocations.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.serve(tb)
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Mint returns a token for subject with roles, in a new session, valid for
// an hour, signed by the current signing key.
func (s *Server) Mint(tb testing.TB, subject string, roles ...string) string {
	tb.Helper()
	now := time.Now()
	return s.MintClaims(tb, token.Claims{
		Issuer: Issuer, Subject: subject, Audience: []string{Audience}, Roles: roles, ClientID: ClientID,
		TokenID: token.NewID(), SessionID: token.NewSessionID(now), IssuedAt: now.Add(-time.Second), Expiry: now.Add(time.Hour),
	})
}

// MintClaims signs c with the current signing key.
func (s *Server) MintClaims(tb testing.TB, c token.Claims) string {
	tb.Helper()
	s.mu.Lock()
	key := s.signer
	s.mu.Unlock()
	raw, err := token.Sign(key, c)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// MintRaw signs header and payload, as JSON, with the current signing key
// and sets the header's kid; unlike MintClaims it checks nothing, so tests
// can build the tokens an older or foreign issuer would.
func (s *Server) MintRaw(tb testing.TB, header, payload map[string]any) string {
	tb.Helper()
	s.mu.Lock()
	key := s.signer
	s.mu.Unlock()
	header["kid"] = key.ID
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key.Private, []byte(input)))
}

// Revoke revokes the one token raw (which must be a token this fake
// minted) and pushes the entry to every open feed.
func (s *Server) Revoke(tb testing.TB, raw string) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.verifyLocked(tb, raw)
	s.revoked[c.TokenID] = true
	s.publishLocked(&authv1.Revocation{
		Kind: authv1.RevocationKind_REVOCATION_KIND_TOKEN, TokenId: c.TokenID, Subject: c.Subject, SessionId: c.SessionID,
		ExpireTime: timestamppb.New(c.Expiry), RevokeTime: timestamppb.Now(),
	})
}

// RevokeSession revokes the session of raw, as authsvc's Logout does.
func (s *Server) RevokeSession(tb testing.TB, raw string) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.verifyLocked(tb, raw)
	s.revokedSessions[c.SessionID] = true
	s.publishLocked(&authv1.Revocation{
		Kind: authv1.RevocationKind_REVOCATION_KIND_SESSION, SessionId: c.SessionID, Subject: c.Subject,
		ExpireTime: timestamppb.New(c.Expiry), RevokeTime: timestamppb.Now(),
	})
}

// RevokeAccount revokes every session of subject created before before.
func (s *Server) RevokeAccount(subject string, before time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutoffs[subject] = before
	s.publishLocked(&authv1.Revocation{
		Kind: authv1.RevocationKind_REVOCATION_KIND_ACCOUNT, Subject: subject, SessionsBefore: timestamppb.New(before),
		ExpireTime: timestamppb.New(time.Now().Add(2 * time.Hour)), RevokeTime: timestamppb.Now(),
	})
}

// PublishEntry sends rev, as it is, to every open feed: for entries authsvc
// would not send.
func (s *Server) PublishEntry(rev *authv1.Revocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked(rev)
}

func (s *Server) verifyLocked(tb testing.TB, raw string) token.Claims {
	tb.Helper()
	c, err := s.verifierForKeys.Verify(raw)
	if err != nil {
		tb.Fatalf("grpcauthtest: not a token of this fake: %v", err)
	}
	return c
}

func (s *Server) publishLocked(rev *authv1.Revocation) {
	s.history = append(s.history, rev)
	s.notifyLocked()
}

// revokedLocked reports whether an entry revokes c.
func (s *Server) revokedLocked(c token.Claims) bool {
	if s.revoked[c.TokenID] || (c.SessionID != "" && s.revokedSessions[c.SessionID]) {
		return true
	}
	cut, ok := s.cutoffs[c.Subject]
	return ok && cut.After(c.CoveredBefore())
}

// RotateKey makes a new key the signer and publishes it; the old keys stay
// published. It returns the new key's id.
func (s *Server) RotateKey(tb testing.TB) string {
	tb.Helper()
	key, err := token.GenerateSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signer = key
	s.published = append(s.published, key)
	s.rebuildVerifierLocked()
	return key.ID
}

// SignWithUnpublished makes a new key the signer without publishing it, as
// an attacker's key (or a key published too late) would be.
func (s *Server) SignWithUnpublished(tb testing.TB) token.SigningKey {
	tb.Helper()
	key, err := token.GenerateSigningKey()
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signer = key
	return key
}

// Publish adds key to the published set.
func (s *Server) Publish(key token.SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = append(s.published, key)
	s.rebuildVerifierLocked()
}

// Withdraw removes the key kid from the published set.
func (s *Server) Withdraw(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = slices.DeleteFunc(s.published, func(k token.SigningKey) bool { return k.ID == kid })
	s.rebuildVerifierLocked()
}

// SetFeedDown ends every open revocation stream and fails new ones with
// Unavailable while down is true.
func (s *Server) SetFeedDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feedDown = down
	s.notifyLocked()
}

// SetFeedSilent keeps streams open but stops every message (heartbeats
// included) while silent is true: a feed that looks connected but is dead.
func (s *Server) SetFeedSilent(silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feedSilent = silent
	s.notifyLocked()
}

// SetIntrospectDown makes IntrospectToken fail with Unavailable.
func (s *Server) SetIntrospectDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.introspectDown = down
}

// SetKeySetDown makes GetKeySet fail with Unavailable.
func (s *Server) SetKeySetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keySetDown = down
}

// Calls returns how many GetKeySet, IntrospectToken and WatchRevocations
// calls the fake has served.
func (s *Server) Calls() (keySets, introspections, watches int64) {
	return s.keySetCalls.Load(), s.introspectCalls.Load(), s.watchCalls.Load()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) rebuildVerifierLocked() {
	pubs := map[string]ed25519.PublicKey{}
	for _, k := range s.published {
		pubs[k.ID] = k.Public()
	}
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: Issuer, Audience: Audience, Keys: token.NewKeySet(pubs)})
	if err != nil {
		panic(err) // static configuration
	}
	s.verifierForKeys = v
}

// GetKeySet serves the published keys as JWKS.
func (s *Server) GetKeySet(context.Context, *authv1.GetKeySetRequest) (*authv1.GetKeySetResponse, error) {
	s.keySetCalls.Add(1)
	s.mu.Lock()
	if s.keySetDown {
		s.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "key set down")
	}
	pubs := map[string]ed25519.PublicKey{}
	for _, k := range s.published {
		pubs[k.ID] = k.Public()
	}
	s.mu.Unlock()
	doc, err := json.Marshal(token.NewKeySet(pubs))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &authv1.GetKeySetResponse{JwksJson: string(doc), MaxAge: durationpb.New(time.Minute)}, nil
}

// IntrospectToken reports whether a token verifies and is not revoked.
func (s *Server) IntrospectToken(ctx context.Context, req *authv1.IntrospectTokenRequest) (*authv1.IntrospectTokenResponse, error) {
	s.introspectCalls.Add(1)
	if err := s.checkService(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.introspectDown {
		return nil, status.Error(codes.Unavailable, "introspection down")
	}
	c, err := s.verifierForKeys.Verify(req.GetToken())
	if err != nil || s.revokedLocked(c) {
		return &authv1.IntrospectTokenResponse{}, nil
	}
	return &authv1.IntrospectTokenResponse{
		Active: true, Subject: c.Subject, Roles: c.Roles, ExpireTime: timestamppb.New(c.Expiry),
		IssueTime: timestamppb.New(c.IssuedAt), NotBeforeTime: timestamppb.New(c.NotBefore),
		TokenId: c.TokenID, Issuer: c.Issuer, Audience: c.Audience, TokenType: "Bearer", SessionId: c.SessionID,
	}, nil
}

// checkService refuses a caller without the service credential, when one
// is required.
func (s *Server) checkService(ctx context.Context) error {
	if s.serviceCred == "" {
		return nil
	}
	if v := metadata.ValueFromIncomingContext(ctx, grpcauth.ServiceCredentialHeader); len(v) != 1 || v[0] != s.serviceCred {
		return status.Error(codes.Unauthenticated, "service credential required")
	}
	return nil
}

// WatchRevocations replays the revocations after the cursor (an index into
// the history), then follows new ones with heartbeats.
func (s *Server) WatchRevocations(req *authv1.WatchRevocationsRequest, stream authv1.AuthService_WatchRevocationsServer) error {
	s.watchCalls.Add(1)
	if err := s.checkService(stream.Context()); err != nil {
		return err
	}
	pos := 0
	if c := req.GetCursor(); c != "" {
		n, err := strconv.Atoi(c)
		s.mu.Lock()
		known := len(s.history)
		s.mu.Unlock()
		if err != nil || n < 0 || n > known {
			return status.Error(codes.InvalidArgument, "unknown cursor")
		}
		pos = n
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	beat := true // the first message goes out at once, even when empty
	for {
		s.mu.Lock()
		down, silent, changed := s.feedDown, s.feedSilent, s.changed
		batch := slices.Clone(s.history[pos:])
		s.mu.Unlock()
		if down {
			return status.Error(codes.Unavailable, "feed down")
		}
		if !silent && (len(batch) > 0 || beat) {
			pos += len(batch)
			err := stream.Send(&authv1.WatchRevocationsResponse{
				Revocations: batch, Cursor: strconv.Itoa(pos), HeartbeatInterval: durationpb.New(s.heartbeat),
			})
			if err != nil {
				return err
			}
		}
		beat = false
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-changed:
		case <-tick.C:
			beat = true
		}
	}
}
