package grpcauth

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokencart/tokencart/internal/tlsconfig"
	"github.com/tokencart/tokencart/internal/token"
)

// Validation modes.
const (
	// ModeLocal verifies tokens in process, against authsvc's published
	// keys and revocation feed.
	ModeLocal = "local"
	// ModeRemote introspects every token at authsvc.
	ModeRemote = "remote"
)

// Defaults of Config, which RegisterFlags also uses.
const (
	// DefaultTokenCacheSize bounds the verified-token cache: at most 1 KiB
	// per entry (TestTokenCacheMemory checks it), so under 16 MiB when full.
	DefaultTokenCacheSize = 16384
	// introspectCacheSize bounds the introspection cache, whose entries
	// live DefaultIntrospectCacheTTL or so.
	introspectCacheSize = 8192
)

// Config configures a Validator: where authsvc is, how a service proves
// itself to it, and how the service checks the access tokens authsvc mints.
// RegisterFlags binds it to flags.
type Config struct {
	// Addr is authsvc's gRPC address (Dial).
	Addr string
	// TLSCA, a PEM CA bundle, makes the connection to authsvc TLS 1.3,
	// trusting only those CAs; empty means plaintext (Dial).
	TLSCA string
	// TLSCert and TLSKey, PEM files, are the client certificate presented
	// to authsvc (mutual TLS); both or neither, and only with TLSCA.
	TLSCert, TLSKey string
	// TLSServerName, if set, is the name authsvc's certificate must carry
	// instead of Addr's host.
	TLSServerName string
	// ServiceCredential is the secret presented to authsvc's service
	// methods (the revocation feed, introspection): one of authsvc's
	// --service-credentials. Not needed when authsvc accepts the client
	// certificate (TLSCert) as a service identity.
	ServiceCredential string

	// Mode is ModeLocal or ModeRemote.
	Mode string
	// Issuer and Audience are what tokens must carry.
	Issuer, Audience string
	// Leeway is the clock skew tolerated on exp/nbf/iat; zero means
	// token.DefaultLeeway.
	Leeway time.Duration
	// KeySetRefresh is the period of key-set refetches (local mode).
	KeySetRefresh time.Duration
	// RevocationStaleness is how long the revocation feed may be silent
	// before StalePolicy applies (local mode).
	RevocationStaleness time.Duration
	// StalePolicy is what to do while the feed is stale (local mode).
	StalePolicy StalePolicy
	// TokenCacheSize bounds the verified-token cache (local mode); zero
	// disables it.
	TokenCacheSize int
	// IntrospectCacheTTL is how long an introspection answer is reused
	// (remote mode, and local mode while stale); zero disables that cache.
	IntrospectCacheTTL time.Duration
	// RevocationCapacity bounds the revocation set (local mode); zero
	// means DefaultRevocationCapacity.
	RevocationCapacity int
	// TrustedIssuers is a JSON file naming OpenID Connect issuers besides
	// authsvc whose access tokens are accepted (oidc.ReadFile); empty
	// means none.
	TrustedIssuers string
	// TrustedIssuersCA is a PEM CA bundle trusted for the issuers' HTTPS;
	// empty means the system's roots.
	TrustedIssuersCA string
	// Guard limits the token checks of callers that keep failing them.
	Guard GuardConfig
	// Log receives key-set and revocation-feed events. Required.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// DefaultIssuer is authsvc's default --issuer, and so the issuer services
// expect by default: the URL of authsvc's public HTTP listener (its
// discovery document and JWKS) at its default address, as `make run`
// starts it.
const DefaultIssuer = "http://127.0.0.1:8080"

// RegisterFlags binds c's fields (but Log and Now) to flags on fs, with
// their defaults, for a service that checks authsvc's tokens.
func RegisterFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Addr, "auth-addr", "127.0.0.1:8081", "authsvc gRPC address (host:port)")
	fs.StringVar(&c.TLSCA, "auth-tls-ca", "", "PEM CA bundle to verify authsvc's certificate; when set, call authsvc over TLS 1.3 (plaintext when empty)")
	fs.StringVar(&c.TLSCert, "auth-tls-cert", "", "PEM client certificate to present to authsvc (mutual TLS; needs --auth-tls-key and --auth-tls-ca)")
	fs.StringVar(&c.TLSKey, "auth-tls-key", "", "PEM private key of --auth-tls-cert")
	fs.StringVar(&c.TLSServerName, "auth-tls-server-name", "", "name authsvc's certificate must carry, if not --auth-addr's host")
	fs.StringVar(&c.ServiceCredential, "service-credential", "",
		"secret presented to authsvc's revocation feed and introspection: one of authsvc's --service-credentials (secret; prefer the environment variable)")
	fs.StringVar(&c.Mode, "auth-mode", ModeLocal, "token validation: local (verify signatures against authsvc's keys, follow its revocations) or remote (introspect every token at authsvc)")
	fs.StringVar(&c.Issuer, "issuer", DefaultIssuer, "required token issuer (iss): authsvc's --issuer")
	fs.StringVar(&c.Audience, "audience", "tokencart", "required token audience (aud)")
	fs.DurationVar(&c.Leeway, "token-leeway", token.DefaultLeeway, fmt.Sprintf("clock skew tolerated on token times (at most %v)", token.MaxLeeway))
	fs.DurationVar(&c.KeySetRefresh, "keyset-refresh", DefaultKeySetRefresh, "how often to refetch authsvc's key set; keep it well below authsvc's key publish delay")
	fs.DurationVar(&c.RevocationStaleness, "revocation-staleness", DefaultRevocationStaleness, "how long the revocation feed may be silent before --stale-policy applies")
	fs.StringVar((*string)(&c.StalePolicy), "stale-policy", string(StaleIntrospect), "while the revocation feed is stale: introspect (ask authsvc about each token) or refuse (fail calls with Unavailable)")
	fs.IntVar(&c.TokenCacheSize, "token-cache-size", DefaultTokenCacheSize, "verified-token cache entries, about 420 bytes each (0 disables the cache)")
	fs.DurationVar(&c.IntrospectCacheTTL, "introspect-cache-ttl", DefaultIntrospectCacheTTL, "how long an introspection answer is reused (0 disables that cache)")
	fs.IntVar(&c.RevocationCapacity, "revocation-capacity", DefaultRevocationCapacity,
		"revocation entries held (about 50 bytes each); past it tokens are checked as when the feed is stale (--stale-policy)")
	fs.StringVar(&c.TrustedIssuers, "trusted-issuers", "",
		"JSON file of OpenID Connect issuers besides authsvc whose access tokens are accepted (see README, \"Tokens from other issuers\"); empty: none")
	fs.StringVar(&c.TrustedIssuersCA, "trusted-issuers-ca", "", "PEM CA bundle to verify the trusted issuers' HTTPS certificates (the system's roots when empty)")
	RegisterGuardFlags(fs, &c.Guard)
}

// RegisterGuardFlags binds c's fields (but Addresses) to flags on fs, with
// their defaults: the same flags in every binary that checks tokens.
func RegisterGuardFlags(fs *flag.FlagSet, c *GuardConfig) {
	fs.IntVar(&c.Failures, "auth-failures", DefaultAuthFailures,
		"failed token checks a client address may make in a burst before its calls are refused without a check")
	fs.DurationVar(&c.Every, "auth-failure-every", DefaultAuthFailureEvery, "time that earns a client address one more failed token check")
	fs.IntVar(&c.TrustedProxyHops, "trusted-proxy-hops", 0,
		"proxies in front of this service that append to x-forwarded-for; 0 ignores the header and uses the peer address")
}

// Validate reports every invalid setting, naming its flag: the token
// checks (as newValidator needs them) and the connection to authsvc (as
// Dial needs it).
func (c Config) Validate() error {
	errs := []error{c.validateChecks()}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--auth-addr %q is not host:port", c.Addr))
	}
	switch {
	case c.ServiceCredential != "":
		if _, err := NewServices(ServicesConfig{Credentials: []string{c.ServiceCredential}}); err != nil {
			errs = append(errs, fmt.Errorf("--service-credential %w", err))
		}
	case c.TLSCert == "":
		errs = append(errs, errors.New("--service-credential is required, or a client certificate (--auth-tls-cert) that authsvc accepts as a service: "+
			"authsvc's revocation feed and introspection admit services only"))
	}
	errs = append(errs, c.validateTLS())
	return errors.Join(errs...)
}

// validateChecks reports the invalid settings of the token checks.
func (c Config) validateChecks() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Mode == ModeLocal || c.Mode == ModeRemote, "--auth-mode must be %q or %q, got %q", ModeLocal, ModeRemote, c.Mode)
	check(c.Issuer != "", "--issuer is required")
	check(c.Audience != "", "--audience is required")
	check(c.Leeway >= 0 && c.Leeway <= token.MaxLeeway, "--token-leeway must be within [0, %v], got %v", token.MaxLeeway, c.Leeway)
	check(c.KeySetRefresh > 0, "--keyset-refresh must be positive, got %v", c.KeySetRefresh)
	check(c.RevocationStaleness > 0, "--revocation-staleness must be positive, got %v", c.RevocationStaleness)
	check(c.StalePolicy == StaleIntrospect || c.StalePolicy == StaleRefuse, "--stale-policy must be %q or %q, got %q", StaleIntrospect, StaleRefuse, c.StalePolicy)
	check(c.TokenCacheSize >= 0, "--token-cache-size must not be negative, got %d", c.TokenCacheSize)
	check(c.IntrospectCacheTTL >= 0, "--introspect-cache-ttl must not be negative, got %v", c.IntrospectCacheTTL)
	check(c.RevocationCapacity >= 0, "--revocation-capacity must not be negative, got %d", c.RevocationCapacity)
	errs = append(errs, c.Guard.Validate())
	if _, _, err := c.trustedIssuers(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate reports every invalid setting, naming its flag.
func (c GuardConfig) Validate() error {
	var errs []error
	if c.Failures < 0 {
		errs = append(errs, fmt.Errorf("--auth-failures must not be negative, got %d", c.Failures))
	}
	if c.Every < 0 {
		errs = append(errs, fmt.Errorf("--auth-failure-every must not be negative, got %v", c.Every))
	}
	if c.TrustedProxyHops < 0 {
		errs = append(errs, fmt.Errorf("--trusted-proxy-hops must not be negative, got %d", c.TrustedProxyHops))
	}
	if c.Addresses < 0 {
		errs = append(errs, fmt.Errorf("guard addresses must not be negative, got %d", c.Addresses))
	}
	return errors.Join(errs...)
}

// validateTLS checks the --auth-tls-* flags and, when set, that the files
// load, so a bad path stops startup with a message naming the flag.
func (c Config) validateTLS() error {
	switch {
	case c.TLSCA == "" && (c.TLSCert != "" || c.TLSKey != "" || c.TLSServerName != ""):
		return errors.New("--auth-tls-cert, --auth-tls-key and --auth-tls-server-name need --auth-tls-ca: mutual TLS is TLS")
	case c.TLSCA == "":
		return nil
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--auth-tls-cert and --auth-tls-key go together")
	}
	if _, err := c.transportCredentials(); err != nil {
		return fmt.Errorf("--auth-tls-ca, --auth-tls-cert or --auth-tls-key: %w", err)
	}
	return nil
}

// transportCredentials returns the transport credentials for authsvc: TLS
// with TLSCA (and the client certificate, if any), else plaintext.
func (c Config) transportCredentials() (credentials.TransportCredentials, error) {
	if c.TLSCA == "" {
		return insecure.NewCredentials(), nil
	}
	return tlsconfig.Client(c.TLSCA, c.TLSCert, c.TLSKey, c.TLSServerName)
}
