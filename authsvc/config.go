package authsvc

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/secret"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/token"
)

// EnvPrefix prefixes the environment variable of every flag:
// --key-encryption-key is also AUTHSVC_KEY_ENCRYPTION_KEY.
const EnvPrefix = "AUTHSVC"

// Config is authsvc's configuration. RegisterFlags binds every field but
// Now to a flag.
type Config struct {
	// Serve configures the gRPC and admin servers.
	Serve serve.Config
	// DSN selects the store: a postgres:// URL, or a SQLite file path.
	DSN string

	// PublicAddr is the listen address of the public HTTP listener: the
	// OpenID Connect discovery document and the JWKS.
	PublicAddr string
	// Issuer is the iss of every access token: an https URL (http for a
	// loopback host, or with IssuerAllowHTTP) whose /.well-known/ paths the
	// public listener serves. Audience is their aud, ClientID their
	// client_id (RFC 9068): the one OAuth client authsvc issues to, its
	// gRPC API.
	Issuer, Audience, ClientID string
	// IssuerAllowHTTP accepts an http Issuer for any host, for a network
	// where the plaintext public listener is acceptable (a mesh that adds
	// mutual TLS, a development cluster).
	IssuerAllowHTTP bool
	// TokenLifetime is an access token's lifetime.
	TokenLifetime time.Duration
	// RefreshTokenLifetime is a refresh token's lifetime; each rotation
	// issues a successor with a full lifetime.
	RefreshTokenLifetime time.Duration
	// RefreshReuseGrace is how long after a refresh token was spent a
	// second use counts as a concurrent refresh (Aborted) rather than a
	// replay (the session is revoked).
	RefreshReuseGrace time.Duration
	// RefreshLimit and RefreshAddressLimit are the refreshes allowed per
	// session and per client address within RefreshLimitWindow.
	RefreshLimit, RefreshAddressLimit int
	RefreshLimitWindow                time.Duration
	// Leeway is the clock skew tolerated when authsvc verifies tokens.
	Leeway time.Duration

	// KeyEncryptionKey, base64 of 32 bytes, seals private signing keys at
	// rest with AES-256-GCM. Empty stores them in the clear (development).
	KeyEncryptionKey string
	// KeyRotationInterval is how often a new signing key is created.
	KeyRotationInterval time.Duration
	// KeyPublishDelay is how long a new key is published before it signs:
	// at least KeyReloadInterval + JWKSMaxAge, so that every consumer that
	// keeps to the promised cache lifetime holds a key before its first
	// token.
	KeyPublishDelay time.Duration
	// KeyReloadInterval is how often each replica reloads the keys.
	KeyReloadInterval time.Duration
	// JWKSMaxAge is the cache lifetime of the key set that the deployment
	// promises its consumers: the Cache-Control max-age of the JWKS, and
	// the longest any consumer may go between fetches (Envoy's
	// remote_jwks cache_duration, istiod's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL).
	// Key publication and withdrawal are timed against it.
	JWKSMaxAge time.Duration

	// RevocationPollInterval is how often each replica looks for
	// revocations recorded by others: the bound on the feed's delay.
	RevocationPollInterval time.Duration
	// RevocationHeartbeat is the longest WatchRevocations stays silent.
	RevocationHeartbeat time.Duration
	// PruneInterval is how often expired rows are deleted.
	PruneInterval time.Duration

	// Argon2 are the parameters of new password hashes.
	Argon2 Argon2Params
	// HashConcurrency bounds the password hashes computed at once.
	HashConcurrency int
	// HashQueueTimeout is how long a request waits for a hashing slot
	// before it fails with ResourceExhausted.
	HashQueueTimeout time.Duration

	// LoginAccountLimit is the failed logins allowed per account from one
	// client address, LoginAccountTotalLimit per account from every
	// address that has not logged in to it successfully within
	// LoginAddressMemory, and LoginAddressLimit per client address, within
	// LoginThrottleWindow, before logins are delayed; the delay starts at
	// LoginThrottleDelay and doubles with every further failure, up to
	// LoginThrottleWindow. So a stranger's guesses delay the stranger, and
	// many strangers' delay only the addresses the owner never used.
	LoginAccountLimit, LoginAccountTotalLimit, LoginAddressLimit int
	LoginThrottleWindow                                          time.Duration
	LoginThrottleDelay                                           time.Duration
	LoginAddressMemory                                           time.Duration
	// BootstrapAdmin is the email of an account that gets the admin role at
	// start: created with BootstrapAdminPassword if it does not exist;
	// if it exists, granted the role only if it has that password, or,
	// without a password, granted the role as it stands (so register it
	// before starting authsvc with the flag).
	BootstrapAdmin string
	// BootstrapAdminPassword is the password of the bootstrap admin; a
	// secret.
	BootstrapAdminPassword string

	// RegisterAddressLimit is the accounts one client address may register
	// within RegisterLimitWindow.
	RegisterAddressLimit int
	RegisterLimitWindow  time.Duration
	// SessionsPerAccount bounds an account's live sessions: a login beyond
	// it revokes the oldest.
	SessionsPerAccount int
	// RevocationsPerAccount bounds the revoked sessions and tokens kept
	// per account (in the store and every replica): one more revokes the
	// account instead, with one entry.
	RevocationsPerAccount int
	// TokenRevocationLimit is the single access tokens a caller may revoke
	// per hour (RevokeToken with scope TOKEN).
	TokenRevocationLimit int
	// KeyRotationLimit is the RotateSigningKey calls allowed per hour,
	// across replicas.
	KeyRotationLimit int

	// ServiceCredentials are the accepted service credentials (comma
	// separated, each base64 of at least 32 random bytes): a service
	// presents one to call WatchRevocations and IntrospectToken.
	ServiceCredentials string
	// ServiceIdentities are the accepted identities (URI or DNS SANs) of
	// mutual-TLS client certificates, comma separated; needs
	// Serve.TLSClientCAFile.
	ServiceIdentities string
	// RevocationStreamsPerConnection and MaxRevocationStreams bound the open
	// WatchRevocations streams per client connection (a replica needs one
	// at a time) and in all.
	RevocationStreamsPerConnection, MaxRevocationStreams int
	// Guard limits the token checks of client addresses that keep failing
	// them, and its TrustedProxyHops (the proxies in front of authsvc that
	// append to x-forwarded-for) names the client address for every
	// per-address limit.
	Guard grpcauth.GuardConfig

	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Defaults of key publication, chosen for the consumers a Kubernetes user
// already runs: istiod refetches a JWKS every 20 minutes by default
// (PILOT_JWT_PUB_KEY_REFRESH_INTERVAL) and pushes it to its Envoys, and
// Envoy's jwt_authn caches a remote JWKS for cache_duration (a few minutes
// by default); both ignore Cache-Control. So the promised cache lifetime is
// 20 minutes, and a new key is published 25 minutes before it signs (the
// lifetime, plus margin for the reload, istiod's push and a retried fetch).
const (
	DefaultJWKSMaxAge      = 20 * time.Minute
	DefaultKeyPublishDelay = 25 * time.Minute
)

// RegisterFlags registers every setting on fs, with production defaults,
// and returns the Config they fill.
func RegisterFlags(fs *flag.FlagSet) *Config {
	c := &Config{}
	serve.RegisterFlags(fs, &c.Serve, ":8081", ":9081")
	c.Serve.Name = "authsvc"
	fs.StringVar(&c.DSN, "dsn", "var/authsvc.db", "store: a SQLite file path, or a postgres:// URL")
	fs.StringVar(&c.PublicAddr, "public-addr", ":8080",
		"public HTTP listen address: /.well-known/openid-configuration and /.well-known/jwks.json, for token consumers (no metrics or pprof)")
	fs.StringVar(&c.Issuer, "issuer", grpcauth.DefaultIssuer,
		"iss claim of access tokens: the https URL at which consumers reach --public-addr (http only for localhost, or with --issuer-allow-http)")
	fs.BoolVar(&c.IssuerAllowHTTP, "issuer-allow-http", false,
		"accept an http --issuer for any host (a mesh adds mutual TLS, or a development cluster); without it http is for loopback hosts only")
	fs.StringVar(&c.Audience, "audience", "tokencart", "aud claim of access tokens")
	fs.StringVar(&c.ClientID, "client-id", "tokencart", "client_id claim of access tokens (RFC 9068): the client they are issued to")
	fs.DurationVar(&c.TokenLifetime, "token-lifetime", token.DefaultLifetime, "access token lifetime")
	fs.DurationVar(&c.RefreshTokenLifetime, "refresh-token-lifetime", 30*24*time.Hour, "refresh token lifetime")
	fs.DurationVar(&c.RefreshReuseGrace, "refresh-reuse-grace", 10*time.Second,
		"a spent refresh token presented again within this time gets ABORTED (a concurrent refresh); later, its session is revoked")
	fs.IntVar(&c.RefreshLimit, "refresh-limit", 10, "refreshes allowed per session within --refresh-limit-window")
	fs.IntVar(&c.RefreshAddressLimit, "refresh-address-limit", 600, "refreshes allowed per client address within --refresh-limit-window")
	fs.DurationVar(&c.RefreshLimitWindow, "refresh-limit-window", time.Minute, "window of --refresh-limit and --refresh-address-limit")
	fs.DurationVar(&c.Leeway, "token-leeway", token.DefaultLeeway, fmt.Sprintf("clock skew tolerated on exp, nbf and iat (at most %v)", token.MaxLeeway))
	fs.StringVar(&c.KeyEncryptionKey, "key-encryption-key", "",
		"base64 of 32 random bytes that encrypt private signing keys at rest (secret; without it keys are stored unencrypted)")
	fs.DurationVar(&c.KeyRotationInterval, "key-rotation-interval", 24*time.Hour, "how often a new signing key is created")
	fs.DurationVar(&c.KeyPublishDelay, "key-publish-delay", DefaultKeyPublishDelay,
		"how long a new key is published before it signs; at least --key-reload-interval + --jwks-max-age")
	fs.DurationVar(&c.KeyReloadInterval, "key-reload-interval", 5*time.Second, "how often each replica reloads the signing keys from the store")
	fs.DurationVar(&c.JWKSMaxAge, "jwks-max-age", DefaultJWKSMaxAge,
		"the key set's cache lifetime promised to consumers (Cache-Control max-age): at least the longest refresh interval of any JWKS consumer (Envoy remote_jwks cache_duration, istiod PILOT_JWT_PUB_KEY_REFRESH_INTERVAL)")
	fs.DurationVar(&c.RevocationPollInterval, "revocation-poll-interval", 200*time.Millisecond,
		"how often each replica polls the store for revocations recorded by other replicas")
	fs.DurationVar(&c.RevocationHeartbeat, "revocation-heartbeat", 5*time.Second, "longest silence on a WatchRevocations stream")
	fs.DurationVar(&c.PruneInterval, "prune-interval", time.Minute, "how often expired tokens, revocations and throttle counts are deleted")
	c.Argon2 = MinArgon2Params
	fs.Func("argon2-memory", fmt.Sprintf("argon2id memory in KiB (default %d, the minimum)", MinArgon2Params.Memory), uintFlag(&c.Argon2.Memory, 1<<32-1))
	fs.Func("argon2-time", fmt.Sprintf("argon2id passes (default %d, the minimum)", MinArgon2Params.Time), uintFlag(&c.Argon2.Time, maxArgon2Time))
	fs.Func("argon2-threads", fmt.Sprintf("argon2id parallelism (default %d)", MinArgon2Params.Threads), func(s string) error {
		var v uint32
		if err := uintFlag(&v, 255)(s); err != nil {
			return err
		}
		c.Argon2.Threads = uint8(v)
		return nil
	})
	fs.IntVar(&c.HashConcurrency, "hash-concurrency", max(2, runtime.GOMAXPROCS(0)), "password hashes computed at once (each holds --argon2-memory)")
	fs.DurationVar(&c.HashQueueTimeout, "hash-queue-timeout", time.Second, "how long a request waits for a hashing slot before RESOURCE_EXHAUSTED")
	fs.IntVar(&c.LoginAccountLimit, "login-account-limit", 5,
		"failed logins per account from one client address within --login-throttle-window before that address's logins to it are delayed")
	fs.IntVar(&c.LoginAccountTotalLimit, "login-account-total-limit", 50,
		"failed logins per account from all addresses within --login-throttle-window before logins to it are delayed, except from addresses that logged in to it before")
	fs.DurationVar(&c.LoginAddressMemory, "login-address-memory", 30*24*time.Hour,
		"how long an address that logged in to an account successfully keeps its own failed-login budget for it")
	fs.IntVar(&c.LoginAddressLimit, "login-address-limit", 50, "failed logins per client address within --login-throttle-window before logins are delayed")
	fs.DurationVar(&c.LoginThrottleWindow, "login-throttle-window", 15*time.Minute, "how long failed logins are remembered; also the longest delay")
	fs.DurationVar(&c.LoginThrottleDelay, "login-throttle-delay", time.Second, "first delay once a limit is reached; doubles with each further failure")
	fs.StringVar(&c.BootstrapAdmin, "bootstrap-admin", "",
		"email of an account that gets the admin role at start: created with --bootstrap-admin-password if missing; an existing one only if it has that password (or, without a password, as it stands)")
	fs.StringVar(&c.BootstrapAdminPassword, "bootstrap-admin-password", "", "password of --bootstrap-admin (secret; prefer the environment variable)")
	fs.IntVar(&c.RegisterAddressLimit, "register-address-limit", 20, "accounts one client address may register within --register-limit-window")
	fs.DurationVar(&c.RegisterLimitWindow, "register-limit-window", time.Hour, "window of --register-address-limit")
	fs.IntVar(&c.SessionsPerAccount, "sessions-per-account", 50, "live sessions (logins) an account may have; a login beyond it revokes the oldest")
	fs.IntVar(&c.RevocationsPerAccount, "revocations-per-account", 16,
		"revoked sessions and tokens kept per account; one more revokes every session of the account instead, with one entry")
	fs.IntVar(&c.TokenRevocationLimit, "token-revocation-limit", 20, "single access tokens a caller may revoke per hour (RevokeToken scope TOKEN)")
	fs.IntVar(&c.KeyRotationLimit, "key-rotation-limit", 6, "RotateSigningKey calls allowed per hour, across replicas")
	fs.StringVar(&c.ServiceCredentials, "service-credentials", "",
		"comma-separated secrets (base64 of at least 32 random bytes) that services present to call WatchRevocations and IntrospectToken")
	fs.StringVar(&c.ServiceIdentities, "service-identities", "",
		"comma-separated client-certificate identities (URI or DNS SANs) accepted as services; needs --tls-client-ca")
	fs.IntVar(&c.RevocationStreamsPerConnection, "revocation-streams-per-connection", 4, "open WatchRevocations streams allowed per client connection (a replica needs one at a time)")
	fs.IntVar(&c.MaxRevocationStreams, "max-revocation-streams", 512, "open WatchRevocations streams allowed in all; at least a few per service replica")
	grpcauth.RegisterGuardFlags(fs, &c.Guard)
	return c
}

// DefaultConfig returns the configuration of RegisterFlags' defaults.
func DefaultConfig() Config {
	return *RegisterFlags(flag.NewFlagSet("authsvc", flag.ContinueOnError))
}

func uintFlag(dst *uint32, limit uint64) func(string) error {
	return func(s string) error {
		var v uint64
		if _, err := fmt.Sscan(s, &v); err != nil || fmt.Sprint(v) != strings.TrimSpace(s) || v > limit {
			return fmt.Errorf("must be a whole number from 0 to %d", limit)
		}
		*dst = uint32(v)
		return nil
	}
}

// Validate reports every invalid setting, naming its flag.
func (c *Config) Validate() error {
	errs := []error{c.Serve.Validate()}
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.DSN != "", "--dsn is required: a SQLite file path or a postgres:// URL")
	errs = append(errs, serve.ValidateAddr("--public-addr", c.PublicAddr))
	if _, err := c.issuerURL(); err != nil {
		errs = append(errs, err)
	}
	check(c.Audience != "", "--audience is required")
	check(c.ClientID != "" && len(c.ClientID) <= 255, "--client-id must be 1 to 255 characters")
	check(c.TokenLifetime >= time.Second, "--token-lifetime must be at least 1s, got %v", c.TokenLifetime)
	check(c.RefreshTokenLifetime >= time.Second, "--refresh-token-lifetime must be at least 1s, got %v", c.RefreshTokenLifetime)
	check(c.RefreshReuseGrace >= 0 && c.RefreshReuseGrace <= time.Minute, "--refresh-reuse-grace must be from 0 to 1m, got %v", c.RefreshReuseGrace)
	check(c.Leeway > 0 && c.Leeway <= token.MaxLeeway, "--token-leeway must be more than 0 and at most %v, got %v", token.MaxLeeway, c.Leeway)
	if _, err := c.kek(); err != nil {
		errs = append(errs, err)
	}
	check(c.KeyReloadInterval > 0, "--key-reload-interval must be positive, got %v", c.KeyReloadInterval)
	check(c.JWKSMaxAge > 0, "--jwks-max-age must be positive, got %v", c.JWKSMaxAge)
	check(c.KeyPublishDelay >= c.KeyReloadInterval+c.JWKSMaxAge,
		"--key-publish-delay (%v) must be at least --key-reload-interval (%v) + --jwks-max-age (%v): a consumer that caches the key set for the promised lifetime would refuse a new key's first tokens",
		c.KeyPublishDelay, c.KeyReloadInterval, c.JWKSMaxAge)
	check(c.KeyRotationInterval > c.KeyPublishDelay, "--key-rotation-interval (%v) must exceed --key-publish-delay (%v)",
		c.KeyRotationInterval, c.KeyPublishDelay)
	check(c.RevocationPollInterval > 0, "--revocation-poll-interval must be positive, got %v", c.RevocationPollInterval)
	check(c.RevocationHeartbeat >= c.RevocationPollInterval, "--revocation-heartbeat (%v) must be at least --revocation-poll-interval (%v)",
		c.RevocationHeartbeat, c.RevocationPollInterval)
	check(c.PruneInterval > 0, "--prune-interval must be positive, got %v", c.PruneInterval)
	check(c.Argon2.Memory >= MinArgon2Params.Memory && c.Argon2.Memory <= maxArgon2Memory,
		"--argon2-memory must be from %d to %d KiB, got %d", MinArgon2Params.Memory, maxArgon2Memory, c.Argon2.Memory)
	check(c.Argon2.Time >= MinArgon2Params.Time, "--argon2-time must be at least %d, got %d", MinArgon2Params.Time, c.Argon2.Time)
	check(c.Argon2.Threads >= MinArgon2Params.Threads, "--argon2-threads must be at least %d", MinArgon2Params.Threads)
	check(c.HashConcurrency >= 1, "--hash-concurrency must be at least 1, got %d", c.HashConcurrency)
	check(c.HashQueueTimeout >= 0, "--hash-queue-timeout must not be negative, got %v", c.HashQueueTimeout)
	check(c.LoginAccountLimit >= 1, "--login-account-limit must be at least 1, got %d", c.LoginAccountLimit)
	check(c.LoginAccountTotalLimit >= 1, "--login-account-total-limit must be at least 1, got %d", c.LoginAccountTotalLimit)
	check(c.LoginAddressMemory > 0, "--login-address-memory must be positive, got %v", c.LoginAddressMemory)
	check(c.RefreshLimit >= 1, "--refresh-limit must be at least 1, got %d", c.RefreshLimit)
	check(c.RefreshAddressLimit >= c.RefreshLimit, "--refresh-address-limit must be at least --refresh-limit, got %d", c.RefreshAddressLimit)
	check(c.RefreshLimitWindow > 0, "--refresh-limit-window must be positive, got %v", c.RefreshLimitWindow)
	check(c.RegisterAddressLimit >= 1, "--register-address-limit must be at least 1, got %d", c.RegisterAddressLimit)
	check(c.RegisterLimitWindow > 0, "--register-limit-window must be positive, got %v", c.RegisterLimitWindow)
	check(c.RevocationsPerAccount >= 1 && c.RevocationsPerAccount <= grpcauth.MaxEntriesPerAccount,
		"--revocations-per-account must be from 1 to %d (what a replica keeps), got %d", grpcauth.MaxEntriesPerAccount, c.RevocationsPerAccount)
	check(c.SessionsPerAccount >= 1, "--sessions-per-account must be at least 1, got %d", c.SessionsPerAccount)
	check(c.TokenRevocationLimit >= 1, "--token-revocation-limit must be at least 1, got %d", c.TokenRevocationLimit)
	check(c.KeyRotationLimit >= 1, "--key-rotation-limit must be at least 1, got %d", c.KeyRotationLimit)
	check(c.RevocationStreamsPerConnection >= 1, "--revocation-streams-per-connection must be at least 1, got %d", c.RevocationStreamsPerConnection)
	check(c.MaxRevocationStreams >= c.RevocationStreamsPerConnection,
		"--max-revocation-streams must be at least --revocation-streams-per-connection, got %d", c.MaxRevocationStreams)
	errs = append(errs, c.Guard.Validate())
	if _, err := c.services(); err != nil {
		errs = append(errs, fmt.Errorf("--service-credentials or --service-identities: %w", err))
	}
	check(c.ServiceIdentities == "" || c.Serve.TLSClientCAFile != "",
		"--service-identities needs --tls-client-ca: identities are read from verified client certificates")
	check(c.LoginAddressLimit >= 1, "--login-address-limit must be at least 1, got %d", c.LoginAddressLimit)
	check(c.LoginThrottleWindow > 0, "--login-throttle-window must be positive, got %v", c.LoginThrottleWindow)
	check(c.LoginThrottleDelay > 0 && c.LoginThrottleDelay <= c.LoginThrottleWindow,
		"--login-throttle-delay must be positive and at most --login-throttle-window, got %v", c.LoginThrottleDelay)
	if c.BootstrapAdmin != "" {
		_, err := normalizeEmail(c.BootstrapAdmin)
		check(err == nil, "--bootstrap-admin %q is not an email address", c.BootstrapAdmin)
	}
	check(c.BootstrapAdminPassword == "" || (c.BootstrapAdmin != "" && validPassword(c.BootstrapAdminPassword)),
		"--bootstrap-admin-password needs --bootstrap-admin and must be %d to %d characters", minPasswordLen, maxPasswordLen)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	return nil
}

// keyRetention is how long a key stays published after it stopped signing:
// the token lifetime, the largest leeway a verifier may allow, the promised
// cache lifetime, and two reload intervals (a replica signs with the old
// key until its next reload).
func (c *Config) keyRetention() time.Duration {
	return c.TokenLifetime + token.MaxLeeway + c.JWKSMaxAge + 2*c.KeyReloadInterval
}

// kek decodes KeyEncryptionKey; nil when it is empty. The message never
// echoes the value: it is a secret.
func (c *Config) kek() ([]byte, error) {
	if c.KeyEncryptionKey == "" {
		return nil, nil
	}
	k, err := secret.Decode(c.KeyEncryptionKey, 32)
	if err != nil {
		return nil, fmt.Errorf("--key-encryption-key %w", err)
	}
	return k, nil
}

// services returns the service authentication that ServiceCredentials and
// ServiceIdentities configure.
func (c *Config) services() (*grpcauth.Services, error) {
	return grpcauth.NewServices(grpcauth.ServicesConfig{
		Credentials: splitList(c.ServiceCredentials),
		Identities:  splitList(c.ServiceIdentities),
	})
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
