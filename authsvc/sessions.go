package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/token"
)

// refreshTokenBytes is the entropy of a refresh token: 256 bits.
const refreshTokenBytes = 32

// tokenPair is what Login and RefreshToken hand out.
type tokenPair struct {
	access        string
	accessExpire  time.Time
	refresh       string
	refreshExpire time.Time
}

// newRefreshToken returns a random refresh token and its stored form.
func (s *Service) newRefreshToken(now time.Time) (string, RefreshToken) {
	b := make([]byte, refreshTokenBytes)
	_, _ = rand.Read(b)
	raw := base64.RawURLEncoding.EncodeToString(b)
	return raw, RefreshToken{Hash: hashRefreshToken(raw), ExpireTime: now.Add(s.cfg.RefreshTokenLifetime)}
}

// hashRefreshToken is the only form in which a refresh token is stored. A
// fast hash suffices: the token is 256 random bits, not a password.
func hashRefreshToken(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// accessClaims returns the claims of an access token for u issued at now.
func (s *Service) accessClaims(u User, now time.Time) token.Claims {
	return token.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   u.ID,
		Audience:  []string{s.cfg.Audience},
		Roles:     u.Roles,
		TokenID:   token.NewID(),
		IssuedAt:  now,
		NotBefore: now,
		Expiry:    now.Add(s.cfg.TokenLifetime),
	}
}

// mint signs an access token for u, issued at now.
func (s *Service) mint(u User, now time.Time) (string, token.Claims, error) {
	key, err := s.keys.signer()
	if err != nil {
		return "", token.Claims{}, err
	}
	c := s.accessClaims(u, now)
	raw, err := token.Sign(key, c)
	if err != nil {
		return "", token.Claims{}, fmt.Errorf("sign access token: %w", err)
	}
	return raw, c, nil
}

// newSession starts a refresh-token family for u.
func (s *Service) newSession(ctx context.Context, u User) (tokenPair, error) {
	now := s.now()
	access, c, err := s.mint(u, now)
	if err != nil {
		return tokenPair{}, err
	}
	refresh, rt := s.newRefreshToken(now)
	err = s.store.CreateSession(ctx, NewSession{
		FamilyID:         token.NewID(),
		UserID:           u.ID,
		Refresh:          rt,
		AccessTokenID:    c.TokenID,
		AccessExpireTime: c.Expiry,
		Now:              now,
	})
	if err != nil {
		return tokenPair{}, fmt.Errorf("create session: %w", err)
	}
	return tokenPair{access: access, accessExpire: c.Expiry, refresh: refresh, refreshExpire: rt.ExpireTime}, nil
}

// RefreshToken implements authv1.AuthServiceServer.
func (s *Service) RefreshToken(ctx context.Context, req *authv1.RefreshTokenRequest) (*authv1.RefreshTokenResponse, error) {
	resp, err := s.refreshToken(ctx, req)
	return resp, s.rpcError(ctx, err)
}

// refreshToken spends the presented token. Of concurrent refreshes with one
// token (two tabs, two replicas), the store lets exactly one spend it; the
// others find it spent moments ago and get Aborted, without harming the
// winner's successor. A spent token presented after RefreshReuseGrace is a
// replay, as when a stolen token is used after its owner refreshed: the
// whole family is revoked, with every access token issued in it.
func (s *Service) refreshToken(ctx context.Context, req *authv1.RefreshTokenRequest) (*authv1.RefreshTokenResponse, error) {
	raw := req.GetRefreshToken()
	if raw == "" || len(raw) > 256 {
		return nil, errBadRefreshToken
	}
	// The signing key is taken first so that nothing after the rotation,
	// which spends the presented token, can fail. The new access token's id
	// is recorded in the rotation's transaction, with the successor.
	key, err := s.keys.signer()
	if err != nil {
		return nil, err
	}
	now := s.now()
	hash := hashRefreshToken(raw)
	refresh, rt := s.newRefreshToken(now)
	c := s.accessClaims(User{}, now)
	u, err := s.store.RotateRefreshToken(ctx, RefreshRotation{
		OldHash: hash, New: rt, AccessTokenID: c.TokenID, AccessExpireTime: c.Expiry, Now: now,
	})
	if errors.Is(err, ErrNotFound) {
		return nil, s.refreshRefused(ctx, hash, now)
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
		RefreshTokenExpireTime: timestamppb.New(rt.ExpireTime),
		TokenType:              "Bearer",
	}, nil
}

// refreshRefused says why the token hashed hash could not be spent, and
// revokes its family when it is a replay.
func (s *Service) refreshRefused(ctx context.Context, hash []byte, now time.Time) error {
	info, err := s.store.RefreshToken(ctx, hash)
	switch {
	case errors.Is(err, ErrNotFound):
		return errBadRefreshToken
	case err != nil:
		return fmt.Errorf("find refresh token: %w", err)
	case !info.FamilyRevokeTime.IsZero(), !now.Before(info.ExpireTime), info.UsedTime.IsZero():
		// Revoked or expired (an unspent, unexpired token in a live family
		// cannot fail to rotate; if one did, refusing is still safe).
		return errBadRefreshToken
	case now.Sub(info.UsedTime) <= s.cfg.RefreshReuseGrace:
		return errRefreshRace
	}
	if err := s.revokeFamily(ctx, info.FamilyID, now); err != nil {
		return fmt.Errorf("replayed refresh token: %w", err)
	}
	s.log.WarnContext(ctx, "spent refresh token replayed; its family is revoked", "user", info.UserID, "family", info.FamilyID)
	return errBadRefreshToken
}

// Logout implements authv1.AuthServiceServer.
func (s *Service) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	resp, err := s.logout(ctx, req)
	return resp, s.rpcError(ctx, err)
}

func (s *Service) logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	family := ""
	if raw := req.GetRefreshToken(); raw != "" {
		info, err := s.store.RefreshToken(ctx, hashRefreshToken(raw))
		switch {
		case errors.Is(err, ErrNotFound):
			// Unknown or pruned: nothing left to revoke.
		case err != nil:
			return nil, fmt.Errorf("find refresh token: %w", err)
		case info.UserID != c.Subject:
			return nil, errNotYours
		default:
			family = info.FamilyID
		}
	}
	if err := s.revokeAccess(ctx, c); err != nil {
		return nil, err
	}
	if family != "" {
		if err := s.revokeFamily(ctx, family, s.now()); err != nil {
			return nil, err
		}
	}
	return &authv1.LogoutResponse{}, nil
}

func (s *Service) revokeAccess(ctx context.Context, c token.Claims) error {
	err := s.store.Revoke(ctx, Revocation{TokenID: c.TokenID, Subject: c.Subject, ExpireTime: c.Expiry, RevokeTime: s.now()})
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	s.feed.notify()
	return nil
}

// revokeFamily revokes a refresh-token family and the access tokens issued
// from it, and wakes this replica's revocation streams.
func (s *Service) revokeFamily(ctx context.Context, family string, now time.Time) error {
	if err := s.store.RevokeFamily(ctx, family, now); err != nil {
		return fmt.Errorf("revoke refresh family: %w", err)
	}
	s.feed.notify()
	return nil
}

// RevokeToken implements authv1.AuthServiceServer.
func (s *Service) RevokeToken(ctx context.Context, req *authv1.RevokeTokenRequest) (*authv1.RevokeTokenResponse, error) {
	resp, err := s.revokeToken(ctx, req)
	return resp, s.rpcError(ctx, err)
}

// revokeToken revokes an access token (a JWT, recognised by its three
// segments) or a refresh token's family. Revoking a token that can no
// longer be used (expired, pruned, or unknown as a refresh token) succeeds
// and does nothing, as in RFC 7009; a JWT that does not verify as ours is
// InvalidArgument, so that nobody can revoke token ids of their choosing.
func (s *Service) revokeToken(ctx context.Context, req *authv1.RevokeTokenRequest) (*authv1.RevokeTokenResponse, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	raw := req.GetToken()
	if raw == "" {
		return nil, errMissingToken
	}
	if strings.Count(raw, ".") == 2 {
		c, err := s.verifier.Verify(raw)
		switch {
		case errors.Is(err, token.ErrExpired):
			// Verify checks the signature before the time: it is ours.
			return &authv1.RevokeTokenResponse{}, nil
		case err != nil:
			return nil, errNotOurToken
		case c.Subject != me.Subject && !me.HasRole(token.RoleAdmin):
			return nil, errNotYours
		}
		if err := s.revokeAccess(ctx, c); err != nil {
			return nil, err
		}
		return &authv1.RevokeTokenResponse{}, nil
	}
	info, err := s.store.RefreshToken(ctx, hashRefreshToken(raw))
	switch {
	case errors.Is(err, ErrNotFound):
		return &authv1.RevokeTokenResponse{}, nil
	case err != nil:
		return nil, fmt.Errorf("find refresh token: %w", err)
	case info.UserID != me.Subject && !me.HasRole(token.RoleAdmin):
		return nil, errNotYours
	}
	if err := s.revokeFamily(ctx, info.FamilyID, s.now()); err != nil {
		return nil, err
	}
	return &authv1.RevokeTokenResponse{}, nil
}
