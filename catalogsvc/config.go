package catalogsvc

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/tokencart/tokencart/internal/cartstate"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/serve"
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
	// Auth configures token validation.
	Auth grpcauth.Config
	// CatalogRefresh is the catalog snapshot's poll interval.
	CatalogRefresh time.Duration
	// Seed loads the embedded seed catalog on first start.
	Seed bool
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
		errs = append(errs, fmt.Errorf("token validation (--auth-mode, --issuer, --audience, --token-leeway, --keyset-refresh, --revocation-staleness, --stale-policy, --token-cache-size, --introspect-cache-ttl): %w", err))
	}
	if c.CatalogRefresh <= 0 {
		errs = append(errs, fmt.Errorf("--catalog-refresh must be positive, got %v", c.CatalogRefresh))
	}
	return errors.Join(errs...)
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
