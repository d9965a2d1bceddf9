package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/clientaddr"
	"github.com/tokencart/tokencart/internal/token"
)

// A refresh token is base64url of: a version byte, the session id's 16
// bytes, the generation (big-endian uint64) and 256 random bits. The store
// keeps one row per session, with the hash of its current token and the
// one spent last: a presented token of an older generation is a replay,
// however many rotations ago it was spent, with nothing stored per token.
const (
	refreshTokenVersion = 1
	refreshSecretBytes  = 32
	sessionIDBytes      = 16
	refreshTokenBytes   = 1 + sessionIDBytes + 8 + refreshSecretBytes
)

// maxRefreshTokenLen bounds what parseRefreshToken decodes.
const maxRefreshTokenLen = 256

// newRefreshToken returns the refresh token of generation gen of session
// sid, and its hash, the only form in which it is stored.
func newRefreshToken(sid string, gen int64) (string, []byte) {
	b := make([]byte, refreshTokenBytes)
	b[0] = refreshTokenVersion
	// sid comes from token.NewSessionID: 16 bytes, base64url.
	_, _ = base64.RawURLEncoding.Decode(b[1:1+sessionIDBytes], []byte(sid))
	binary.BigEndian.PutUint64(b[1+sessionIDBytes:], uint64(gen))
	_, _ = rand.Read(b[1+sessionIDBytes+8:])
	raw := base64.RawURLEncoding.EncodeToString(b)
	return raw, hashRefreshToken(raw)
}

// parseRefreshToken returns the session and generation that raw names, if
// it is shaped like a refresh token. It proves nothing: the store decides.
func parseRefreshToken(raw string) (sid string, gen int64, ok bool) {
	if len(raw) > maxRefreshTokenLen || base64.RawURLEncoding.DecodedLen(len(raw)) != refreshTokenBytes {
		return "", 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != refreshTokenBytes || b[0] != refreshTokenVersion ||
		base64.RawURLEncoding.EncodeToString(b) != raw {
		return "", 0, false
	}
	g := binary.BigEndian.Uint64(b[1+sessionIDBytes:])
	if g == 0 || g > 1<<62 {
		return "", 0, false
	}
	return base64.RawURLEncoding.EncodeToString(b[1 : 1+sessionIDBytes]), int64(g), true
}

// hashRefreshToken is the stored form of a refresh token. A fast hash
// suffices: the token carries 256 random bits, it is not a password.
func hashRefreshToken(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// accessClaims returns the claims of an access token for u in session sid,
// issued at now. Its times are whole seconds, as the token carries them, so
// that the expiry the store records is the token's own.
func (s *Service) accessClaims(u User, sid string, now time.Time) token.Claims {
	issued := now.Truncate(time.Second)
	c := token.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   u.ID,
		Audience:  []string{s.cfg.Audience},
		ClientID:  s.cfg.ClientID,
		Roles:     u.Roles,
		TokenID:   token.NewID(),
		SessionID: sid,
		IssuedAt:  issued,
		NotBefore: issued,
		Expiry:    issued.Add(s.cfg.TokenLifetime),
	}
	// The session began with the login that authenticated the user; a
	// clock behind another replica's may put that after iat.
	if login, ok := token.SessionTime(sid); ok {
		c.AuthTime = login.Truncate(time.Second)
		if c.AuthTime.After(issued) {
			c.AuthTime = issued
		}
	}
	return c
}

// tokenPair is what Login and RefreshToken hand out.
type tokenPair struct {
	access        string
	accessExpire  time.Time
	refresh       string
	refreshExpire time.Time
}

// newSession starts a session for u: its id carries its creation time,
// never before the account's last revocation cutoff (which a replica with a
// clock ahead of this one may have put in this replica's future), so that
// the cutoff does not cover it.
func (s *Service) newSession(ctx context.Context, u User) (tokenPair, error) {
	key, err := s.keys.signer()
	if err != nil {
		return tokenPair{}, err
	}
	now := s.now()
	created := now
	if cut := u.SessionsRevokedBefore; !cut.IsZero() {
		if up := cut.Add(time.Millisecond - 1).Truncate(time.Millisecond); up.After(created) {
			created = up
		}
	}
	sid := token.NewSessionID(created)
	c := s.accessClaims(u, sid, now)
	access, err := token.Sign(key, c)
	if err != nil {
		return tokenPair{}, fmt.Errorf("sign access token: %w", err)
	}
	refresh, hash := newRefreshToken(sid, 1)
	refreshExpire := now.Add(s.cfg.RefreshTokenLifetime)
	err = s.store.CreateSession(ctx, NewSession{
		ID:                sid,
		UserID:            u.ID,
		CreateTime:        created.Truncate(time.Millisecond),
		RefreshHash:       hash,
		RefreshExpireTime: refreshExpire,
		AccessExpireTime:  c.Expiry,
	})
	if err != nil {
		return tokenPair{}, fmt.Errorf("create session: %w", err)
	}
	return tokenPair{access: access, accessExpire: c.Expiry, refresh: refresh, refreshExpire: refreshExpire}, nil
}

// limitSessions makes room for one more session of u, revoking its oldest
// beyond SessionsPerAccount, and returns u as it is then.
func (s *Service) limitSessions(ctx context.Context, u User) (User, error) {
	now := s.now()
	u, revoked, err := s.store.LimitSessions(ctx, u.ID, s.cfg.SessionsPerAccount, now, s.policy(now))
	if err != nil {
		return User{}, fmt.Errorf("limit sessions: %w", err)
	}
	if revoked > 0 {
		s.metrics.revocations.WithLabelValues("session").Add(float64(revoked))
		s.feed.notify()
	}
	return u, nil
}

// RefreshToken implements authv1.AuthServiceServer: it spends the
// presented token. Text not shaped like a refresh
// token is refused without touching the store; the others count against
// the client address's limit, and the store counts rotations against the
// session's. Of concurrent refreshes with one token (two tabs, two
// replicas), the store lets exactly one spend it; the others find it spent
// moments ago and get Aborted, without harming the winner's successor. A
// token of an older generation presented after RefreshReuseGrace is a
// replay, as when a stolen token is used after its owner refreshed: the
// session is revoked, with every access token issued in it (one entry).
func (s *Service) RefreshToken(ctx context.Context, req *authv1.RefreshTokenRequest) (*authv1.RefreshTokenResponse, error) {
	raw := req.GetRefreshToken()
	sid, gen, ok := parseRefreshToken(raw)
	if !ok {
		return nil, errBadRefreshToken
	}
	// The signing key is taken first so that nothing after the rotation,
	// which spends the presented token, can fail.
	key, err := s.keys.signer()
	if err != nil {
		return nil, err
	}
	now := s.now()
	if err := s.countCall(ctx, "refresh-address:"+clientaddr.FromContext(ctx, s.cfg.Guard.TrustedProxyHops), now,
		s.cfg.RefreshAddressLimit, s.cfg.RefreshLimitWindow, "too many refreshes from this address"); err != nil {
		return nil, err
	}
	hash := hashRefreshToken(raw)
	refresh, newHash := newRefreshToken(sid, gen+1)
	refreshExpire := now.Add(s.cfg.RefreshTokenLifetime)
	c := s.accessClaims(User{}, sid, now)
	u, err := s.store.RotateRefreshToken(ctx, RefreshRotation{
		SessionID: sid, Generation: gen, OldHash: hash, NewHash: newHash,
		RefreshExpireTime: refreshExpire, AccessExpireTime: c.Expiry, Now: now,
		Limit: s.cfg.RefreshLimit, Window: s.cfg.RefreshLimitWindow,
	})
	if errors.Is(err, ErrNotFound) {
		return nil, s.refreshRefused(ctx, sid, gen, hash, now)
	}
	if err != nil {
		return nil, fmt.Errorf("rotate refresh token: %w", err)
	}
	c.Subject, c.Roles = u.ID, u.Roles
	access, err := token.Sign(key, c)
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	return &authv1.RefreshTokenResponse{
		AccessToken:            access,
		AccessTokenExpireTime:  timestamppb.New(c.Expiry),
		RefreshToken:           refresh,
		RefreshTokenExpireTime: timestamppb.New(refreshExpire),
		TokenType:              "Bearer",
	}, nil
}

// refreshRefused says why the token of generation gen, hashed hash, of
// session sid could not be spent, and revokes the session when it is a
// replay.
func (s *Service) refreshRefused(ctx context.Context, sid string, gen int64, hash []byte, now time.Time) error {
	ss, err := s.store.Session(ctx, sid)
	switch {
	case errors.Is(err, ErrNotFound):
		return errBadRefreshToken
	case err != nil:
		return fmt.Errorf("find session: %w", err)
	case !now.Before(ss.RefreshExpireTime):
		return errBadRefreshToken
	case gen == ss.RefreshGeneration && subtle.ConstantTimeCompare(hash, ss.RefreshHash) == 1:
		// The current token of a live session: only the session's
		// rotation limit can have refused it. (Not remembered by the
		// replica as refused: the session's older tokens must still reach
		// the store, where their replay revokes it.)
		s.metrics.limited.WithLabelValues("refresh-session").Inc()
		return limited("too many refreshes of this session", ss.Rotations.WindowEnd.Sub(now))
	case gen >= ss.RefreshGeneration:
		return errBadRefreshToken // not a token this session issued
	case now.Sub(ss.PrevUsedTime) <= s.cfg.RefreshReuseGrace:
		// The session was refreshed moments ago: another tab or replica
		// racing this one, not (yet) a replay.
		return errRefreshRace
	}
	if _, err := s.revokeSession(ctx, sid); err != nil {
		return fmt.Errorf("replayed refresh token: %w", err)
	}
	s.log.WarnContext(ctx, "spent refresh token replayed; its session is revoked", "user", ss.UserID)
	return errBadRefreshToken
}

// Logout implements authv1.AuthServiceServer.
func (s *Service) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetAllSessions() {
		if err := s.revokeAccount(ctx, c.Subject); err != nil {
			return nil, err
		}
		return &authv1.LogoutResponse{}, nil
	}
	// Another session named by its refresh token: checked before anything
	// is revoked, so a refusal changes nothing.
	other := ""
	if sid, _, ok := parseRefreshToken(req.GetRefreshToken()); ok && sid != c.SessionID {
		ss, err := s.store.Session(ctx, sid)
		switch {
		case errors.Is(err, ErrNotFound):
			// Unknown or pruned: nothing left to revoke.
		case err != nil:
			return nil, fmt.Errorf("find session: %w", err)
		case ss.UserID != c.Subject:
			return nil, errNotYours
		default:
			other = sid
		}
	}
	if err := s.revokeCallerSession(ctx, c); err != nil {
		return nil, err
	}
	if other != "" {
		if _, err := s.revokeSession(ctx, other); err != nil {
			return nil, err
		}
	}
	return &authv1.LogoutResponse{}, nil
}

// revokeCallerSession revokes the session of the token with claims c, or
// the token alone if it names no session.
func (s *Service) revokeCallerSession(ctx context.Context, c token.Claims) error {
	if c.SessionID == "" {
		return s.revokeSingle(ctx, c)
	}
	_, err := s.revokeSession(ctx, c.SessionID, c)
	return err
}

// RevokeToken implements authv1.AuthServiceServer: it revokes what an access token (a JWT, recognised by its three
// segments) or a refresh token names, by scope. Revoking a token that can
// no longer be used (expired, pruned, or unknown as a refresh token)
// succeeds and does nothing, as in RFC 7009; a JWT that does not verify as
// ours is InvalidArgument, so that nobody can revoke ids of their choosing.
func (s *Service) RevokeToken(ctx context.Context, req *authv1.RevokeTokenRequest) (*authv1.RevokeTokenResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	raw, scope := req.GetToken(), req.GetScope()
	switch scope {
	case authv1.RevocationScope_REVOCATION_SCOPE_UNSPECIFIED, authv1.RevocationScope_REVOCATION_SCOPE_SESSION,
		authv1.RevocationScope_REVOCATION_SCOPE_TOKEN, authv1.RevocationScope_REVOCATION_SCOPE_ACCOUNT:
	default:
		return nil, errUnknownScope
	}
	if raw == "" {
		return nil, errMissingToken
	}
	if strings.Count(raw, ".") == 2 {
		return &authv1.RevokeTokenResponse{}, s.revokeAccessToken(ctx, me, raw, scope)
	}
	sid, _, ok := parseRefreshToken(raw)
	if !ok {
		return &authv1.RevokeTokenResponse{}, nil
	}
	ss, err := s.store.Session(ctx, sid)
	switch {
	case errors.Is(err, ErrNotFound):
		return &authv1.RevokeTokenResponse{}, nil
	case err != nil:
		return nil, fmt.Errorf("find session: %w", err)
	case ss.UserID != me.Subject && !me.HasRole(token.RoleAdmin):
		return nil, errNotYours
	}
	switch scope {
	case authv1.RevocationScope_REVOCATION_SCOPE_TOKEN:
		return nil, errTokenScopeRefresh
	case authv1.RevocationScope_REVOCATION_SCOPE_ACCOUNT:
		err = s.revokeAccount(ctx, ss.UserID)
	default:
		_, err = s.revokeSession(ctx, sid)
	}
	if err != nil {
		return nil, err
	}
	return &authv1.RevokeTokenResponse{}, nil
}

// revokeAccessToken revokes what the access token raw names, by scope.
func (s *Service) revokeAccessToken(ctx context.Context, me token.Claims, raw string, scope authv1.RevocationScope) error {
	c, err := s.verifier.Verify(raw)
	switch {
	case errors.Is(err, token.ErrExpired):
		// Verify checks the signature before the time: it is ours.
		return nil
	case err != nil:
		return errNotOurToken
	case c.Subject != me.Subject && !me.HasRole(token.RoleAdmin):
		return errNotYours
	}
	switch scope {
	case authv1.RevocationScope_REVOCATION_SCOPE_TOKEN:
		if err := s.countCall(ctx, "revoke-token:"+me.Subject, s.now(), s.cfg.TokenRevocationLimit, time.Hour,
			"too many single-token revocations; revoke the session instead"); err != nil {
			return err
		}
		return s.revokeSingle(ctx, c)
	case authv1.RevocationScope_REVOCATION_SCOPE_ACCOUNT:
		return s.revokeAccount(ctx, c.Subject)
	default:
		return s.revokeCallerSession(ctx, c)
	}
}
