package authsvc

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/token"
)

// revocationBatch bounds the revocation entries read, and sent, at once.
const revocationBatch = 500

// revocationFeed wakes the WatchRevocations streams of one replica when
// the store holds revocations they have not seen. One poller per replica
// (Service.pollRevocations, every RevocationPollInterval) reads the highest
// sequence number, so the store sees one cheap query per interval however
// many streams are open; streams query the store for rows only when woken.
// Revocations recorded by this replica wake the streams at once.
type revocationFeed struct {
	mu sync.Mutex // guards head and changed
	// head is the highest sequence number seen.
	head int64
	// changed is closed, and replaced, when head moves or notify is called.
	changed chan struct{}
}

func newRevocationFeed() *revocationFeed {
	return &revocationFeed{changed: make(chan struct{})}
}

// wait returns a channel closed at the next change. Take it before reading
// the store, so that a change during the read is not missed.
func (f *revocationFeed) wait() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// advance records head and wakes the streams if it moved.
func (f *revocationFeed) advance(head int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if head > f.head {
		f.head = head
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// notify wakes the streams: this replica just recorded a revocation.
func (f *revocationFeed) notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.changed)
	f.changed = make(chan struct{})
}

func (s *Service) pollRevocations(ctx context.Context) error {
	head, err := s.store.LastRevocationSeq(ctx)
	if err != nil {
		return err
	}
	s.feed.advance(head)
	return nil
}

// Cursors are opaque to clients: a version tag and the sequence number.
const cursorPrefix = "rv1:"

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, errBadCursor
	}
	digits := strings.TrimPrefix(string(b), cursorPrefix)
	seq, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != digits {
		return 0, errBadCursor
	}
	return seq, nil
}

// policy is the bound on an account's revocation entries, for a revocation
// recorded at now.
func (s *Service) policy(now time.Time) RevocationPolicy {
	return RevocationPolicy{
		MaxEntriesPerAccount: s.cfg.RevocationsPerAccount,
		// A token issued until now expires by now + its lifetime (a longer
		// lifetime configured earlier is covered by the store, which also
		// takes the newest access token of the account's sessions).
		AccountExpire: now.Add(s.cfg.TokenLifetime + token.MaxLeeway),
	}
}

// revokeSession revokes session sid, reports whether it recorded an entry,
// and wakes this replica's revocation streams. The claims of a token of the
// session, when the caller has them, revoke it even if the store no longer
// holds the session (its account was deleted).
func (s *Service) revokeSession(ctx context.Context, sid string, of ...token.Claims) (bool, error) {
	now := s.now()
	r := Revocation{Kind: RevokedSession, ID: sid, RevokeTime: now}
	if len(of) > 0 {
		r.Subject, r.ExpireTime = of[0].Subject, of[0].Expiry
	}
	revoked, err := s.store.RevokeSession(ctx, r, s.policy(now))
	if err != nil {
		return false, fmt.Errorf("revoke session: %w", err)
	}
	if revoked {
		s.metrics.revocations.WithLabelValues("session").Inc()
		s.feed.notify()
	}
	return revoked, nil
}

// revokeSingle revokes the one access token with claims c.
func (s *Service) revokeSingle(ctx context.Context, c token.Claims) error {
	now := s.now()
	err := s.store.RevokeToken(ctx, Revocation{
		Kind: RevokedToken, ID: c.TokenID, Subject: c.Subject, SessionID: c.SessionID,
		ExpireTime: c.Expiry, RevokeTime: now,
	}, s.policy(now))
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	s.metrics.revocations.WithLabelValues("token").Inc()
	s.feed.notify()
	return nil
}

// revokeAccount revokes every session of the account userID.
func (s *Service) revokeAccount(ctx context.Context, userID string) error {
	now := s.now()
	if _, err := s.store.RevokeAccount(ctx, userID, now, s.policy(now)); err != nil {
		return fmt.Errorf("revoke account: %w", err)
	}
	s.metrics.revocations.WithLabelValues("account").Inc()
	s.feed.notify()
	return nil
}

// tokenRef is what the store's revocation check needs of claims c.
func tokenRef(c token.Claims) TokenRef {
	return TokenRef{TokenID: c.TokenID, SessionID: c.SessionID, Subject: c.Subject, CoveredBefore: c.CoveredBefore()}
}

// revocationProto is r as the feed sends it.
func revocationProto(r Revocation) *authv1.Revocation {
	p := &authv1.Revocation{
		Subject:    r.Subject,
		SessionId:  r.SessionID,
		ExpireTime: timestamppb.New(r.ExpireTime),
		RevokeTime: timestamppb.New(r.RevokeTime),
	}
	switch r.Kind {
	case RevokedToken:
		p.Kind, p.TokenId = authv1.RevocationKind_REVOCATION_KIND_TOKEN, r.ID
	case RevokedSession:
		p.Kind, p.SessionId = authv1.RevocationKind_REVOCATION_KIND_SESSION, r.ID
	case RevokedAccount:
		p.Kind, p.SessionsBefore = authv1.RevocationKind_REVOCATION_KIND_ACCOUNT, timestamppb.New(r.SessionsBefore)
	}
	return p
}

// WatchRevocations implements authv1.AuthServiceServer. Only services get
// here (the auth function), at most RevocationStreamsPerConnection streams
// per client connection and MaxRevocationStreams in all.
//
// Delay: an entry recorded by this replica is sent at once; one recorded
// by another replica within RevocationPollInterval (200ms by default) plus
// a store round trip. Ordering: the store assigns sequence numbers in
// commit order (see RevocationStore.RevocationsAfter), so following
// "seq > cursor" never skips an entry. A replay from an empty cursor is the
// current state: the unexpired entries, bounded per account.
func (s *Service) WatchRevocations(req *authv1.WatchRevocationsRequest, stream authv1.AuthService_WatchRevocationsServer) error {
	ctx := stream.Context()
	cursor, err := decodeCursor(req.GetCursor())
	if err != nil {
		return err
	}
	release, err := s.streams.acquire(connectionOf(ctx))
	if err != nil {
		return err
	}
	defer release()
	last, err := s.store.LastRevocationSeq(ctx)
	if err != nil {
		return fmt.Errorf("read revocation sequence: %w", err)
	}
	if cursor > last {
		// From another store, or forged: following it would skip revocations.
		return errBadCursor
	}
	heartbeat := durationpb.New(s.cfg.RevocationHeartbeat)
	idle := time.NewTimer(s.cfg.RevocationHeartbeat)
	defer idle.Stop()
	send := func(revs []*authv1.Revocation) error {
		idle.Reset(s.cfg.RevocationHeartbeat)
		return stream.Send(&authv1.WatchRevocationsResponse{Revocations: revs, Cursor: encodeCursor(cursor), HeartbeatInterval: heartbeat})
	}
	for first := true; ; first = false {
		woken := s.feed.wait()
		for {
			revs, err := s.store.RevocationsAfter(ctx, cursor, s.now().Add(-token.MaxLeeway), revocationBatch)
			if err != nil {
				return fmt.Errorf("read revocations: %w", err)
			}
			if len(revs) == 0 {
				break
			}
			batch := make([]*authv1.Revocation, len(revs))
			for i, r := range revs {
				batch[i] = revocationProto(r)
			}
			cursor = revs[len(revs)-1].Seq
			if err := send(batch); err != nil {
				return err
			}
			if len(revs) < revocationBatch {
				break
			}
		}
		if first {
			// Caught up: a heartbeat right away tells the subscriber that
			// the replay is complete and the stream is live.
			if err := send(nil); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done(): // the client left, or the server is stopping
			return ctx.Err()
		case <-woken:
		case <-idle.C:
			if err := send(nil); err != nil {
				return err
			}
		}
	}
}

// IntrospectToken implements authv1.AuthServiceServer. Only services get
// here (the auth function), as RFC 7662 section 2.1 asks. It answers "active" for a token that verifies with the
// published keys and is not revoked, and a bare inactive answer for any
// other token: which check failed is not the caller's business.
func (s *Service) IntrospectToken(ctx context.Context, req *authv1.IntrospectTokenRequest) (*authv1.IntrospectTokenResponse, error) {
	c, err := s.verifier.Verify(req.GetToken())
	if err != nil {
		return &authv1.IntrospectTokenResponse{}, nil //nolint:nilerr // an invalid token is simply not active (RFC 7662 §2.2)
	}
	revoked, err := s.store.IsRevoked(ctx, tokenRef(c))
	if err != nil {
		return nil, fmt.Errorf("check revocation: %w", err)
	}
	if revoked {
		return &authv1.IntrospectTokenResponse{}, nil
	}
	resp := &authv1.IntrospectTokenResponse{
		Active:     true,
		Subject:    c.Subject,
		Roles:      c.Roles,
		ExpireTime: timestamppb.New(c.Expiry),
		IssueTime:  timestamppb.New(c.IssuedAt),
		TokenId:    c.TokenID,
		Issuer:     c.Issuer,
		Audience:   c.Audience,
		TokenType:  "Bearer",
		SessionId:  c.SessionID,
	}
	if !c.NotBefore.IsZero() {
		resp.NotBeforeTime = timestamppb.New(c.NotBefore)
	}
	return resp, nil
}
