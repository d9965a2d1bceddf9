package authsvc

import (
	"context"
	"errors"
	"time"
)

// Errors a Store wraps (with %w) around its failures, so that the service
// can tell an expected outcome from a broken database.
var (
	// ErrNotFound: no row matched.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value is taken, or a compare-and-set lost.
	ErrConflict = errors.New("conflict")
)

// Store is all the state authsvc shares between its replicas. The authsvc/store
// package implements it over SQLite and PostgreSQL; each part is the small
// interface one component of the service consumes. Times go in and out
// with microsecond precision; the store never reads a clock of its own, so
// every decision about expiry is made with the time the service passes in.
type Store interface {
	UserStore
	SessionStore
	RevocationStore
	KeyStore
	ThrottleStore
	// Prune deletes what can no longer matter (see PruneTimes).
	Prune(ctx context.Context, p PruneTimes) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}

// PruneTimes say what Prune deletes.
type PruneTimes struct {
	// Now: sessions whose refresh token and access tokens have all expired,
	// and call counts whose window has closed.
	Now time.Time
	// RevokedBefore: revocation entries that expired before it.
	RevokedBefore time.Time
	// FailuresBefore: login failures last counted before it.
	FailuresBefore time.Time
	// LoginAddressesBefore: addresses whose last successful login to an
	// account was before it.
	LoginAddressesBefore time.Time
}

// User is an account.
type User struct {
	ID    string
	Email string
	// PasswordHash is the PHC string of the password's argon2id hash.
	PasswordHash string
	// Roles, sorted.
	Roles      []string
	CreateTime time.Time
	// SessionsRevokedBefore is the cutoff of the account's latest
	// revocation: every session created before it is revoked. A session
	// created now must not be older (zero when never revoked).
	SessionsRevokedBefore time.Time
}

// UserStore keeps accounts.
type UserStore interface {
	// CreateUser stores u; ErrConflict when the email (or id) is taken.
	CreateUser(ctx context.Context, u User) error
	// UserByEmail finds the user with the (normalised) email; ErrNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// UserByID finds the user with id; ErrNotFound.
	UserByID(ctx context.Context, id string) (User, error)
	// SetPasswordHash replaces the user's hash with newHash if it is still
	// oldHash, and does nothing otherwise (a concurrent change wins).
	SetPasswordHash(ctx context.Context, userID, oldHash, newHash string) error
	// AddRole grants role to the user with email; ErrNotFound if there is
	// none. Granting a role the user has is a no-op.
	AddRole(ctx context.Context, email, role string) error
}

// Session is one live login: the `sid` of the access tokens issued in it,
// and the state of its refresh token. The store keeps one row per session,
// however often it is refreshed: the current refresh token's hash and
// generation, and the one spent last (for the reuse grace). Revoking a
// session deletes it: its revocation entry covers its access tokens, and
// its refresh tokens are unknown from then on.
type Session struct {
	ID     string
	UserID string
	// CreateTime is the time encoded in ID (token.SessionTime), to the
	// millisecond.
	CreateTime time.Time
	// RefreshGeneration counts the session's refresh tokens: 1 for the one
	// Login issued, one more with every rotation.
	RefreshGeneration int64
	// RefreshHash is the SHA-256 of the current refresh token.
	RefreshHash       []byte
	RefreshExpireTime time.Time
	// PrevRefreshHash is the hash of the token spent last, PrevUsedTime
	// when; nil and zero before the first rotation.
	PrevRefreshHash []byte
	PrevUsedTime    time.Time
	// AccessExpireTime is the exp of the newest access token issued in it.
	AccessExpireTime time.Time
	// Rotations counts the rotations in the session's current window.
	Rotations CallCount
}

// NewSession is what Login records.
type NewSession struct {
	ID     string
	UserID string
	// CreateTime is the time encoded in ID.
	CreateTime        time.Time
	RefreshHash       []byte
	RefreshExpireTime time.Time
	AccessExpireTime  time.Time
}

// RefreshRotation spends the session's refresh token of generation
// Generation, hashed OldHash, and records its successor, of generation
// Generation+1, hashed NewHash.
type RefreshRotation struct {
	SessionID         string
	Generation        int64
	OldHash, NewHash  []byte
	RefreshExpireTime time.Time
	AccessExpireTime  time.Time
	Now               time.Time
	// Limit and Window bound the session's rotations: at most Limit in a
	// window of Window that opens with the first rotation after the last
	// window closed.
	Limit  int
	Window time.Duration
}

// SessionStore keeps sessions.
type SessionStore interface {
	// CreateSession records a login.
	CreateSession(ctx context.Context, s NewSession) error
	// RotateRefreshToken spends r's token and records its successor,
	// atomically: of concurrent calls for one token, exactly one succeeds.
	// It returns the session's user. It returns ErrNotFound when the token
	// cannot be spent (an unknown or revoked session, not its current token,
	// expired, or the session over its rotation limit); Session tells which.
	RotateRefreshToken(ctx context.Context, r RefreshRotation) (User, error)
	// Session returns the live session with id; ErrNotFound.
	Session(ctx context.Context, id string) (Session, error)
	// LimitSessions revokes the user's oldest live sessions, at now, until
	// fewer than limit remain, so that one more login keeps the account at
	// limit. It returns the user as it is then (its cutoff may have moved)
	// and how many sessions it revoked.
	LimitSessions(ctx context.Context, userID string, limit int, now time.Time, p RevocationPolicy) (User, int, error)
}

// RevocationKind is what a revocation entry revokes.
type RevocationKind int

// The kinds of revocation entries.
const (
	// RevokedToken is one access token, by jti.
	RevokedToken RevocationKind = 1
	// RevokedSession is a session, by sid: every access token issued in it.
	RevokedSession RevocationKind = 2
	// RevokedAccount is every session of an account created before
	// SessionsBefore, and every token of it without a session issued at
	// or before SessionsBefore.
	RevokedAccount RevocationKind = 3
)

// Revocation is one entry of the revocation state. The state is bounded:
// one entry per revoked session or token, and at most
// RevocationPolicy.MaxEntriesPerAccount per account before they collapse
// into one RevokedAccount entry.
type Revocation struct {
	// Seq orders the entries as they were recorded or last changed; set
	// by the store.
	Seq  int64
	Kind RevocationKind
	// ID is the jti (RevokedToken), sid (RevokedSession) or account id
	// (RevokedAccount).
	ID      string
	Subject string
	// SessionID is the session of a revoked token (empty if it names none)
	// or the revoked session.
	SessionID string
	// SessionsBefore is the cutoff of a RevokedAccount entry.
	SessionsBefore time.Time
	// ExpireTime is when the entry stops mattering: the newest access token
	// it covers expires.
	ExpireTime time.Time
	RevokeTime time.Time
}

// RevocationPolicy bounds the revocation entries of one account.
type RevocationPolicy struct {
	// MaxEntriesPerAccount is the most RevokedSession and RevokedToken
	// entries an account keeps; recording one more revokes the account
	// instead (every session created until then), which replaces them all
	// with one RevokedAccount entry.
	MaxEntriesPerAccount int
	// AccountExpire is the least ExpireTime of a RevokedAccount entry
	// recorded now: when the longest-lived access token that can have been
	// issued until now expires.
	AccountExpire time.Time
}

// TokenRef is what a revocation check needs to know of an access token.
type TokenRef struct {
	TokenID   string
	SessionID string
	Subject   string
	// CoveredBefore: the token is revoked by a RevokedAccount entry of
	// Subject whose SessionsBefore is after it. It is the session's creation
	// time for a token whose sid carries one, and one microsecond before
	// its iat otherwise.
	CoveredBefore time.Time
}

// RevocationStore keeps the revocation entries until they expire.
type RevocationStore interface {
	// RevokeSession revokes session r.ID at r.RevokeTime: it is deleted, so
	// no refresh token of it can be spent, and an entry revokes its access
	// tokens until the newest of them expires. r.Subject and r.ExpireTime,
	// when set, say whose session it is and when its token expires, for a
	// session the store no longer holds (its account deleted): it gets its
	// entry all the same, unless one (or its account's cutoff) covers it
	// already. It reports whether it recorded an entry.
	RevokeSession(ctx context.Context, r Revocation, p RevocationPolicy) (bool, error)
	// RevokeToken records an entry for one access token (r.Kind
	// RevokedToken, without Seq). Revoking a token twice is a no-op.
	RevokeToken(ctx context.Context, r Revocation, p RevocationPolicy) error
	// RevokeAccount revokes every session of the user created before now,
	// or before the newest of them if a replica's clock is behind, and
	// records one RevokedAccount entry that replaces the account's others.
	// It returns the entry.
	RevokeAccount(ctx context.Context, userID string, now time.Time, p RevocationPolicy) (Revocation, error)
	// IsRevoked reports whether an entry revokes the token.
	IsRevoked(ctx context.Context, t TokenRef) (bool, error)
	// RevocationsAfter returns up to limit entries with Seq > seq and
	// ExpireTime after expireAfter, by Seq. An entry with a smaller Seq than
	// one returned never appears later: the store makes sequence order and
	// commit order agree.
	RevocationsAfter(ctx context.Context, seq int64, expireAfter time.Time, limit int) ([]Revocation, error)
	// LastRevocationSeq returns the highest Seq ever given (0 if none).
	LastRevocationSeq(ctx context.Context) (int64, error)
}

// StoredKey is a signing key as stored.
type StoredKey struct {
	ID        string
	PublicKey []byte
	// PrivateKey is the Ed25519 private key, sealed as Encryption says.
	PrivateKey []byte
	// Encryption names how PrivateKey is sealed: encryptionNone or
	// encryptionAESGCM.
	Encryption   string
	CreateTime   time.Time
	ActivateTime time.Time
}

// KeyStore keeps the signing keys.
type KeyStore interface {
	// SigningKeys returns every stored key, by activate time, and the id of
	// the newest: the one last added, which AddSigningKey compares with
	// (not necessarily the latest create time, should replicas' clocks
	// disagree).
	SigningKeys(ctx context.Context) (keys []StoredKey, newestID string, err error)
	// AddSigningKey stores k as the newest key if the newest key is still
	// the one with id newestID ("" when there is none); ErrConflict
	// otherwise, so two replicas rotating at once add one key.
	AddSigningKey(ctx context.Context, k StoredKey, newestID string) error
	// DeleteSigningKeys deletes the keys with the given ids, except the
	// newest key.
	DeleteSigningKeys(ctx context.Context, ids []string) error
	// ResealSigningKey replaces the sealed private key of the key id if it
	// is still sealed as oldEncryption; ErrConflict otherwise.
	ResealSigningKey(ctx context.Context, id, oldEncryption string, sealed []byte, encryption string) error
}

// LoginFailures counts recent failed logins under one throttle key.
type LoginFailures struct {
	Key      string
	Failures int
	Last     time.Time
}

// CallCount is the number of calls counted under a key in its current
// window, and when that window closes.
type CallCount struct {
	Calls     int
	WindowEnd time.Time
}

// ThrottleStore keeps what limits callers across replicas: failed logins,
// the addresses an account logged in from, and calls counted per key in
// fixed windows.
type ThrottleStore interface {
	// RecordLoginFailure counts one failure at now under each key, restarting
	// the count of a key whose last failure was before windowStart.
	RecordLoginFailure(ctx context.Context, keys []string, now, windowStart time.Time) error
	// LoginFailures returns the counts of keys whose last failure was at or
	// after since.
	LoginFailures(ctx context.Context, keys []string, since time.Time) ([]LoginFailures, error)
	// ResetLoginFailures forgets the failures under key.
	ResetLoginFailures(ctx context.Context, key string) error
	// RememberLoginAddress records a successful login to the account from
	// address at now.
	RememberLoginAddress(ctx context.Context, account, address string, now time.Time) error
	// KnownLoginAddress reports whether the account had a successful login
	// from address at or after since.
	KnownLoginAddress(ctx context.Context, account, address string, since time.Time) (bool, error)
	// CountCall counts one call under key at now, in a window of length
	// window that opens with the first call after the previous one closed,
	// and returns the window's count, this call included.
	CountCall(ctx context.Context, key string, now time.Time, window time.Duration) (CallCount, error)
}
