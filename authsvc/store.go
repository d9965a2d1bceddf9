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

// Store is all the state authsvc shares between its replicas. The sqlstore
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
	// Prune deletes what can no longer matter at now: expired refresh
	// tokens and families, access-token records and revocations that
	// expired before revokedBefore (the newest revocation is always kept,
	// so the feed's sequence never goes backwards), and login failures
	// older than failuresBefore.
	Prune(ctx context.Context, now, revokedBefore, failuresBefore time.Time) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
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

// RefreshToken is the stored form of a refresh token: its SHA-256 hash,
// never the token.
type RefreshToken struct {
	Hash       []byte
	ExpireTime time.Time
}

// NewSession is what Login records: a new refresh-token family with its
// first refresh token and the access token issued with it.
type NewSession struct {
	FamilyID         string
	UserID           string
	Refresh          RefreshToken
	AccessTokenID    string
	AccessExpireTime time.Time
	Now              time.Time
}

// RefreshRotation spends the refresh token hashed OldHash and records its
// successor and the access token issued with it, in the same family.
type RefreshRotation struct {
	OldHash          []byte
	New              RefreshToken
	AccessTokenID    string
	AccessExpireTime time.Time
	Now              time.Time
}

// RefreshTokenInfo describes a stored refresh token, spent or not.
type RefreshTokenInfo struct {
	FamilyID   string
	UserID     string
	ExpireTime time.Time
	// UsedTime is when the token was spent; zero while it is unspent.
	UsedTime time.Time
	// FamilyRevokeTime is when the family was revoked; zero if it is not.
	FamilyRevokeTime time.Time
}

// SessionStore keeps refresh tokens, grouped in families (one per login),
// and the ids of the access tokens issued in each family so they can be
// revoked with it.
type SessionStore interface {
	// CreateSession records a login.
	CreateSession(ctx context.Context, s NewSession) error
	// RotateRefreshToken spends r.OldHash and records r.New, atomically: of
	// concurrent calls for one token, exactly one succeeds. It returns the
	// family's user. It returns ErrNotFound when the token cannot be spent
	// (unknown, expired, already spent, or its family revoked);
	// RefreshToken tells which.
	RotateRefreshToken(ctx context.Context, r RefreshRotation) (User, error)
	// RefreshToken describes the token hashed hash; ErrNotFound.
	RefreshToken(ctx context.Context, hash []byte) (RefreshTokenInfo, error)
	// RevokeFamily marks the family revoked at now, so none of its refresh
	// tokens can be spent, and revokes every access token issued in it
	// (whose records Prune keeps as long as it keeps revocations).
	// Revoking a revoked or unknown family is a no-op.
	RevokeFamily(ctx context.Context, familyID string, now time.Time) error
}

// Revocation is a revoked access token.
type Revocation struct {
	// Seq orders revocations as they were recorded; set by the store.
	Seq        int64
	TokenID    string
	Subject    string
	ExpireTime time.Time
	RevokeTime time.Time
}

// RevocationStore keeps revoked access-token ids until their tokens expire.
type RevocationStore interface {
	// Revoke records r (without Seq). Revoking a token id twice is a no-op.
	Revoke(ctx context.Context, r Revocation) error
	// IsRevoked reports whether the token id is revoked.
	IsRevoked(ctx context.Context, tokenID string) (bool, error)
	// RevocationsAfter returns up to limit revocations with Seq > seq and
	// ExpireTime after expireAfter, by Seq. A revocation with a smaller Seq
	// than one returned never appears later: the store makes sequence order
	// and commit order agree.
	RevocationsAfter(ctx context.Context, seq int64, expireAfter time.Time, limit int) ([]Revocation, error)
	// LastRevocationSeq returns the highest Seq ever recorded (0 if none).
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
}

// LoginFailures counts recent failed logins under one throttle key.
type LoginFailures struct {
	Key      string
	Failures int
	Last     time.Time
}

// ThrottleStore counts failed logins per account and per client address.
type ThrottleStore interface {
	// RecordLoginFailure counts one failure at now under each key, restarting
	// the count of a key whose last failure was before windowStart.
	RecordLoginFailure(ctx context.Context, keys []string, now, windowStart time.Time) error
	// LoginFailures returns the counts of keys whose last failure was at or
	// after since.
	LoginFailures(ctx context.Context, keys []string, since time.Time) ([]LoginFailures, error)
	// ResetLoginFailures forgets the failures under key.
	ResetLoginFailures(ctx context.Context, key string) error
}
