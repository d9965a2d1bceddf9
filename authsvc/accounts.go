package authsvc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/clientaddr"
	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/token"
)

// Password length bounds, in characters.
const (
	minPasswordLen = 8
	maxPasswordLen = 256
)

// normalizeEmail trims and lower-cases email and checks that it is a bare
// address.
func normalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" || len(e) > 254 {
		return "", errInvalidEmail
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", errInvalidEmail
	}
	return e, nil
}

func validPassword(p string) bool {
	n := utf8.RuneCountInString(p)
	return utf8.ValidString(p) && n >= minPasswordLen && n <= maxPasswordLen
}

// Register implements authv1.AuthServiceServer.
func (s *Service) Register(ctx context.Context, req *authv1.RegisterRequest) (*authv1.RegisterResponse, error) {
	email, err := normalizeEmail(req.GetEmail())
	if err != nil {
		return nil, err
	}
	if !validPassword(req.GetPassword()) {
		return nil, errInvalidPassword
	}
	// Counted before the hash, which is what the limit protects (with the
	// store's growth); registrations hash at a lower priority than logins.
	now := s.now()
	if err := s.countCall(ctx, "register-address:"+clientaddr.FromContext(ctx, s.cfg.Guard.TrustedProxyHops), now,
		s.cfg.RegisterAddressLimit, s.cfg.RegisterLimitWindow, "too many registrations from this address"); err != nil {
		return nil, err
	}
	hash, err := s.hasher.hashLow(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	u := User{ID: token.NewID(), Email: email, PasswordHash: hash, Roles: []string{token.RoleCustomer}, CreateTime: now.Truncate(time.Microsecond)}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, errEmailTaken
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	return &authv1.RegisterResponse{User: userProto(u)}, nil
}

// Login implements authv1.AuthServiceServer.
func (s *Service) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	// A malformed email or an impossible password is just one more wrong
	// credential: say nothing more specific.
	email, err := normalizeEmail(req.GetEmail())
	if err != nil {
		// Counted under a key of its own, of fixed size however long the
		// input: a throttle key is a row and an index entry in the store.
		sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(req.GetEmail()))))
		email = "invalid:" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	address := clientaddr.FromContext(ctx, s.cfg.Guard.TrustedProxyHops)
	known, err := s.store.KnownLoginAddress(ctx, email, address, s.now().Add(-s.cfg.LoginAddressMemory))
	if err != nil {
		return nil, fmt.Errorf("read login addresses: %w", err)
	}
	keys := throttleKeys(email, address, known)
	// A throttled client is refused here, without taking a hashing slot.
	if _, err := s.checkThrottle(ctx, keys); err != nil {
		return nil, err
	}
	password := req.GetPassword()
	if len(password) > 4*maxPasswordLen {
		password = password[:4*maxPasswordLen] // bounds the hashing cost; it cannot match anyway
	}
	u, err := s.store.UserByEmail(ctx, email)
	encoded := u.PasswordHash
	switch {
	case errors.Is(err, ErrNotFound):
		encoded = s.dummyHash
	case err != nil:
		return nil, fmt.Errorf("find user: %w", err)
	}
	stale, pairFailed, err := s.checkPassword(ctx, keys, password, encoded, u.ID != "" && validPassword(req.GetPassword()))
	if err != nil {
		return nil, err
	}
	if pairFailed {
		if err := s.store.ResetLoginFailures(ctx, keys.pair); err != nil {
			return nil, fmt.Errorf("reset login failures: %w", err)
		}
	}
	if err := s.store.RememberLoginAddress(ctx, email, address, s.now()); err != nil {
		return nil, fmt.Errorf("remember login address: %w", err)
	}
	if u, err = s.limitSessions(ctx, u); err != nil {
		return nil, err
	}
	if stale {
		s.rehash(ctx, u, req.GetPassword())
	}
	pair, err := s.newSession(ctx, u)
	if err != nil {
		return nil, err
	}
	return &authv1.LoginResponse{
		AccessToken:            pair.access,
		AccessTokenExpireTime:  timestamppb.New(pair.accessExpire),
		RefreshToken:           pair.refresh,
		RefreshTokenExpireTime: timestamppb.New(pair.refreshExpire),
		TokenType:              "Bearer",
		User:                   userProto(u),
	}, nil
}

// loginKeys are the throttle keys of one login attempt: failures count
// per account and address (pair), per account from anywhere (account), and
// per address (address). The account's total limits only addresses that
// have not logged in to it before (checkAccount false for the others), so
// strangers' guesses, from any number of addresses, never lock the owner
// out of an address the owner uses.
type loginKeys struct {
	pair, account, address string
	checkAccount           bool
}

func throttleKeys(email, address string, known bool) loginKeys {
	return loginKeys{
		pair:         "account-address:" + email + "|" + address,
		account:      "account:" + email,
		address:      "address:" + address,
		checkAccount: !known,
	}
}

// loginLimit returns the failures allowed under key.
func (s *Service) loginLimit(keys loginKeys, key string) int {
	switch key {
	case keys.pair:
		return s.cfg.LoginAccountLimit
	case keys.account:
		return s.cfg.LoginAccountTotalLimit
	}
	return s.cfg.LoginAddressLimit
}

// checkPassword checks password against encoded, which can match only if
// possible, and counts a failure under the throttle keys before it fails
// with errBadCredentials. It does so holding a hashing slot, after checking
// the throttle again: guesses that queue for a slot together all passed
// login's first check before any of them had failed, and would all be
// tried. So a burst of guesses gets at most HashConcurrency-1 tried beyond
// a limit, per replica. It reports whether this account and address have
// recent failures (for a success to clear) and whether encoded should be
// rehashed.
func (s *Service) checkPassword(ctx context.Context, keys loginKeys, password, encoded string, possible bool) (stale, pairFailed bool, err error) {
	release, err := s.hasher.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	if pairFailed, err = s.checkThrottle(ctx, keys); err != nil {
		return false, false, err
	}
	ok, stale, err := s.hasher.verifyHeld(password, encoded)
	if err != nil {
		return false, false, err
	}
	if !ok || !possible {
		now := s.now()
		if err := s.store.RecordLoginFailure(ctx, []string{keys.pair, keys.account, keys.address}, now, now.Add(-s.cfg.LoginThrottleWindow)); err != nil {
			return false, false, fmt.Errorf("record login failure: %w", err)
		}
		return false, false, errBadCredentials
	}
	return stale, pairFailed, nil
}

// rehash stores a hash of password under the current parameters. It is an
// upgrade, not part of the login: a failure is logged and the login goes on.
func (s *Service) rehash(ctx context.Context, u User, password string) {
	h, err := s.hasher.hash(ctx, password)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, u.ID, u.PasswordHash, h)
	}
	if err != nil {
		s.log.WarnContext(ctx, "password rehash failed", "user", u.ID, "error", err)
	}
}

// checkThrottle fails with ResourceExhausted, and the time to wait, while
// one of the attempt's keys has had too many recent failed logins. It
// reports whether the account and address have recent failures, for a
// successful login to clear. The check and the count that follows a
// failure are not one transaction: checkPassword bounds how far concurrent
// guesses exceed a limit.
func (s *Service) checkThrottle(ctx context.Context, keys loginKeys) (pairFailed bool, err error) {
	now := s.now()
	counts, err := s.store.LoginFailures(ctx, []string{keys.pair, keys.account, keys.address}, now.Add(-s.cfg.LoginThrottleWindow))
	if err != nil {
		return false, fmt.Errorf("read login failures: %w", err)
	}
	var wait time.Duration
	for _, c := range counts {
		if c.Key == keys.pair {
			pairFailed = true
		}
		if c.Key == keys.account && !keys.checkAccount {
			continue
		}
		limit := s.loginLimit(keys, c.Key)
		if c.Failures < limit {
			continue
		}
		wait = max(wait, c.Last.Add(s.throttleDelay(c.Failures-limit)).Sub(now))
	}
	if wait <= 0 {
		return pairFailed, nil
	}
	return pairFailed, rpcerr.Exhausted(ReasonLoginThrottled, "too many failed logins; retry later", wait)
}

// throttleDelay is the wait after the (excess+1)th failure beyond a limit.
func (s *Service) throttleDelay(excess int) time.Duration {
	d := s.cfg.LoginThrottleDelay
	for range min(excess, 32) {
		d *= 2
		if d >= s.cfg.LoginThrottleWindow {
			return s.cfg.LoginThrottleWindow
		}
	}
	return d
}

// GetMe implements authv1.AuthServiceServer.
func (s *Service) GetMe(ctx context.Context, _ *authv1.GetMeRequest) (*authv1.GetMeResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, c.Subject)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errAccountGone
	case err != nil:
		return nil, fmt.Errorf("find user: %w", err)
	}
	return &authv1.GetMeResponse{User: userProto(u)}, nil
}

func userProto(u User) *authv1.User {
	return &authv1.User{
		Id:         u.ID,
		Email:      u.Email,
		Roles:      slices.Clone(u.Roles),
		CreateTime: timestamppb.New(u.CreateTime),
	}
}
