package catalogsvc

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokencart/tokencart/internal/cartstate"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/ratelimit"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/tlsconfig"
)

// EnvPrefix prefixes the environment variables that back catalogsvc's
// flags: --cart-key is CATALOGSVC_CART_KEY.
const EnvPrefix = "CATALOGSVC"

// Cart modes.
const (
	// CartModeStore keeps carts in the database named by --dsn.
	CartModeStore = "store"
	// CartModeRequest keeps no cart: it travels sealed in cart_state.
	CartModeRequest = "request"
)

// Defaults.
const (
	// DefaultCatalogRefresh is how often a replica polls the catalog's change
	// counter: another replica's admin write shows here within this bound
	// (plus one reload, a few milliseconds).
	DefaultCatalogRefresh = time.Second
	defaultDSN            = "var/catalogsvc.db"
	defaultAuthAddr       = "127.0.0.1:8081"

	// DefaultRateLimit and DefaultRateBurst are the per-caller call rate
	// (calls a second, on average) and burst of one replica. A shopper's
	// client makes a few calls a second; 50/s with bursts of 100 leaves room
	// for any honest client (and for scripts) while one caller cannot take
	// a replica's whole capacity (thousands of calls a second).
	DefaultRateLimit = 50
	DefaultRateBurst = 100
	// DefaultRateLimitCallers bounds the callers whose bucket a replica
	// remembers: about 200 bytes each, so ≈ 13 MiB when full.
	DefaultRateLimitCallers = 65536
)

// Config is catalogsvc's whole configuration. RegisterFlags binds every
// field to a flag (each also settable by environment, see EnvPrefix).
type Config struct {
	// Serve configures the gRPC and admin servers.
	Serve serve.Config
	// DSN is a postgres:// URL or a SQLite file path.
	DSN string
	// CartMode is CartModeStore or CartModeRequest.
	CartMode string
	// CartKey is the base64 secret that seals cart_state (request mode).
	CartKey string
	// CartOldKeys are comma-separated base64 secrets still accepted for
	// opening cart_state during a key rotation.
	CartOldKeys string
	// AuthAddr is authsvc's gRPC address.
	AuthAddr string
	// AuthTLSCA, a PEM CA bundle, makes the connection to authsvc TLS 1.3,
	// trusting only those CAs; empty means plaintext.
	AuthTLSCA string
	// AuthTLSCert and AuthTLSKey, PEM files, are the client certificate
	// presented to authsvc (mutual TLS); both or neither, and only with
	// AuthTLSCA.
	AuthTLSCert, AuthTLSKey string
	// AuthTLSServerName, if set, is the name authsvc's certificate must
	// carry instead of AuthAddr's host.
	AuthTLSServerName string
	// ServiceCredential is the secret this service presents to authsvc's
	// service methods (the revocation feed, introspection): one of
	// authsvc's --service-credentials. Not needed when authsvc accepts the
	// client certificate (AuthTLSCert) as a service identity.
	ServiceCredential string
	// TrustedProxyHops is the number of proxies in front of catalogsvc that
	// append to x-forwarded-for, to find the client address that limits
	// unauthenticated callers; 0 uses the peer address.
	TrustedProxyHops int
	// Auth configures token validation.
	Auth grpcauth.Config
	// CatalogRefresh is the catalog snapshot's poll interval.
	CatalogRefresh time.Duration
	// Seed loads the embedded seed catalog on first start.
	Seed bool
	// RateLimit is each caller's allowed rate of calls a second on this
	// replica (the token subject; the client IP for public calls); 0
	// disables rate limiting.
	RateLimit float64
	// RateBurst is how many calls a caller may make at once above RateLimit.
	RateBurst int
	// RateLimitCallers bounds how many callers' buckets are remembered.
	RateLimitCallers int
}

// RegisterFlags binds a new Config's fields to flags on fs, with their
// defaults, and returns it.
func RegisterFlags(fs *flag.FlagSet) *Config {
	c := &Config{Serve: serve.Config{Name: "catalogsvc"}}
	serve.RegisterFlags(fs, &c.Serve, ":8082", ":9082")
	fs.StringVar(&c.DSN, "dsn", defaultDSN, "database: a postgres:// URL, or a SQLite file path shared by the replicas of one host")
	fs.StringVar(&c.CartMode, "cart-mode", CartModeStore, "where carts live: store (the database) or request (sealed in each request's cart_state)")
	fs.StringVar(&c.CartKey, "cart-key", "", "base64 of the 32-byte secret that seals cart_state in request mode; prefer the environment variable to the command line")
	fs.StringVar(&c.CartOldKeys, "cart-old-keys", "", "comma-separated base64 secrets still accepted when opening cart_state, during a key rotation")
	fs.StringVar(&c.AuthAddr, "auth-addr", defaultAuthAddr, "authsvc gRPC address (host:port)")
	fs.StringVar(&c.AuthTLSCA, "auth-tls-ca", "", "PEM CA bundle to verify authsvc's certificate; when set, call authsvc over TLS 1.3 (plaintext when empty)")
	fs.StringVar(&c.AuthTLSCert, "auth-tls-cert", "", "PEM client certificate to present to authsvc (mutual TLS; needs --auth-tls-key and --auth-tls-ca)")
	fs.StringVar(&c.AuthTLSKey, "auth-tls-key", "", "PEM private key of --auth-tls-cert")
	fs.StringVar(&c.AuthTLSServerName, "auth-tls-server-name", "", "name authsvc's certificate must carry, if not --auth-addr's host")
	fs.StringVar(&c.ServiceCredential, "service-credential", "",
		"secret presented to authsvc's revocation feed and introspection: one of authsvc's --service-credentials (secret; prefer the environment variable)")
	fs.IntVar(&c.TrustedProxyHops, "trusted-proxy-hops", 0,
		"proxies in front of catalogsvc that append to x-forwarded-for; 0 ignores the header and limits callers by peer address")
	fs.IntVar(&c.Auth.RevocationCapacity, "revocation-capacity", grpcauth.DefaultRevocationCapacity,
		"revocation entries held (about 50 bytes each); past it tokens are checked as when the feed is stale (--stale-policy)")
	fs.IntVar(&c.Auth.Guard.Failures, "auth-failures", grpcauth.DefaultAuthFailures,
		"failed token checks a client address may make in a burst before its calls are refused without a check")
	fs.DurationVar(&c.Auth.Guard.Every, "auth-failure-every", grpcauth.DefaultAuthFailureEvery, "time that earns a client address one more failed token check")
	fs.StringVar(&c.Auth.Mode, "auth-mode", grpcauth.ModeLocal, "token validation: local (verify signatures against authsvc's keys, follow its revocations) or remote (introspect every token at authsvc)")
	fs.StringVar(&c.Auth.Issuer, "issuer", "tokencart-authsvc", "required token issuer (iss)")
	fs.StringVar(&c.Auth.Audience, "audience", "tokencart", "required token audience (aud)")
	fs.DurationVar(&c.Auth.Leeway, "token-leeway", 0, "clock skew tolerated on token times (0 means the token package's default)")
	fs.DurationVar(&c.Auth.KeySetRefresh, "keyset-refresh", grpcauth.DefaultKeySetRefresh, "how often to refetch authsvc's key set; keep it well below authsvc's key publish delay")
	fs.DurationVar(&c.Auth.RevocationStaleness, "revocation-staleness", grpcauth.DefaultRevocationStaleness, "how long the revocation feed may be silent before --stale-policy applies")
	fs.StringVar((*string)(&c.Auth.StalePolicy), "stale-policy", string(grpcauth.StaleIntrospect), "while the revocation feed is stale: introspect (ask authsvc about each token) or refuse (fail calls with Unavailable)")
	fs.IntVar(&c.Auth.TokenCacheSize, "token-cache-size", grpcauth.DefaultTokenCacheSize, "verified-token cache entries, about 420 bytes each (0 disables the cache)")
	fs.DurationVar(&c.Auth.IntrospectCacheTTL, "introspect-cache-ttl", grpcauth.DefaultIntrospectCacheTTL, "how long an introspection answer is reused (0 disables that cache)")
	fs.DurationVar(&c.CatalogRefresh, "catalog-refresh", DefaultCatalogRefresh, "how often to check the database for catalog changes made by other replicas")
	fs.BoolVar(&c.Seed, "seed", true, "load the built-in catalog on first start")
	fs.Float64Var(&c.RateLimit, "rate-limit", DefaultRateLimit, "calls a second each caller (token subject; client IP for public calls) may make to this replica on average; 0 disables the limit")
	fs.IntVar(&c.RateBurst, "rate-burst", DefaultRateBurst, "calls a caller may make at once above --rate-limit")
	fs.IntVar(&c.RateLimitCallers, "rate-limit-callers", DefaultRateLimitCallers, "callers whose rate is remembered (about 200 bytes each); the least recently seen are forgotten")
	return c
}

// Validate reports every invalid setting, naming the flag to fix.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Serve.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DSN == "" {
		errs = append(errs, errors.New("--dsn is required (a postgres:// URL or a SQLite file path)"))
	}
	switch c.CartMode {
	case CartModeStore:
	case CartModeRequest:
		if _, _, err := c.cartKeys(); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("--cart-mode must be %q or %q, got %q", CartModeStore, CartModeRequest, c.CartMode))
	}
	if _, _, err := net.SplitHostPort(c.AuthAddr); err != nil {
		errs = append(errs, fmt.Errorf("--auth-addr %q is not host:port", c.AuthAddr))
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("token validation (--auth-mode, --issuer, --audience, --token-leeway, --keyset-refresh, --revocation-staleness, --stale-policy, --token-cache-size, --introspect-cache-ttl, --revocation-capacity, --auth-failures, --auth-failure-every): %w", err))
	}
	if c.TrustedProxyHops < 0 {
		errs = append(errs, fmt.Errorf("--trusted-proxy-hops must not be negative, got %d", c.TrustedProxyHops))
	}
	switch {
	case c.ServiceCredential != "":
		if _, err := grpcauth.NewServices(grpcauth.ServicesConfig{Credentials: []string{c.ServiceCredential}}); err != nil {
			errs = append(errs, fmt.Errorf("--service-credential %w", err))
		}
	case c.AuthTLSCert == "":
		errs = append(errs, fmt.Errorf("--service-credential (%s_SERVICE_CREDENTIAL) is required, or a client certificate (--auth-tls-cert) that authsvc accepts as a service: "+
			"authsvc's revocation feed and introspection admit services only", EnvPrefix))
	}
	if c.CatalogRefresh <= 0 {
		errs = append(errs, fmt.Errorf("--catalog-refresh must be positive, got %v", c.CatalogRefresh))
	}
	if err := c.validateAuthTLS(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) || c.RateLimit < 0:
		errs = append(errs, fmt.Errorf("--rate-limit must be a finite number of calls a second, 0 or more (0 disables), got %v", c.RateLimit))
	case c.RateLimit == 0:
	case c.RateBurst < 1:
		errs = append(errs, fmt.Errorf("--rate-burst must be at least 1 while --rate-limit is on, got %d", c.RateBurst))
	case c.RateLimitCallers < ratelimit.MinCallers:
		errs = append(errs, fmt.Errorf("--rate-limit-callers must be at least %d, got %d", ratelimit.MinCallers, c.RateLimitCallers))
	}
	return errors.Join(errs...)
}

// validateAuthTLS checks the --auth-tls-* flags and, when set, that the
// files load, so a bad path stops startup with a message naming the flag.
func (c *Config) validateAuthTLS() error {
	switch {
	case c.AuthTLSCA == "" && (c.AuthTLSCert != "" || c.AuthTLSKey != "" || c.AuthTLSServerName != ""):
		return errors.New("--auth-tls-cert, --auth-tls-key and --auth-tls-server-name need --auth-tls-ca: mutual TLS is TLS")
	case c.AuthTLSCA == "":
		return nil
	case (c.AuthTLSCert == "") != (c.AuthTLSKey == ""):
		return errors.New("--auth-tls-cert and --auth-tls-key go together")
	}
	if _, err := c.authCredentials(); err != nil {
		return fmt.Errorf("--auth-tls-ca, --auth-tls-cert or --auth-tls-key: %w", err)
	}
	return nil
}

// authCredentials returns the transport credentials for authsvc: TLS with
// AuthTLSCA (and the client certificate, if any), else plaintext.
func (c *Config) authCredentials() (credentials.TransportCredentials, error) {
	if c.AuthTLSCA == "" {
		return insecure.NewCredentials(), nil
	}
	return tlsconfig.Client(c.AuthTLSCA, c.AuthTLSCert, c.AuthTLSKey, c.AuthTLSServerName)
}

// cartKeys decodes --cart-key and --cart-old-keys. Error messages never
// include the secrets.
func (c *Config) cartKeys() (current []byte, old [][]byte, err error) {
	if c.CartKey == "" {
		return nil, nil, fmt.Errorf("--cart-mode=request needs --cart-key (or %s_CART_KEY): base64 of %d random bytes, e.g. from `head -c 32 /dev/urandom | base64`", EnvPrefix, cartstate.KeySize)
	}
	if current, err = cartstate.ParseKey(c.CartKey); err != nil {
		return nil, nil, fmt.Errorf("--cart-key: %w", err)
	}
	for i, s := range strings.Split(c.CartOldKeys, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := cartstate.ParseKey(s)
		if err != nil {
			return nil, nil, fmt.Errorf("--cart-old-keys, key %d: %w", i+1, err)
		}
		old = append(old, k)
	}
	if _, err := cartstate.New(current, old...); err != nil {
		return nil, nil, fmt.Errorf("--cart-key/--cart-old-keys: %w", err)
	}
	return current, old, nil
}
