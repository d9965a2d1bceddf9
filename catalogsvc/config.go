package catalogsvc

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tokencart/tokencart/catalogsvc/cartstate"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/ratelimit"
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
	// CartStateEncoding is what request mode writes into cart_state:
	// "binary" or "json" (cartstate.ParseEncoding); either is read.
	CartStateEncoding string
	// Auth is the connection to authsvc and the token checks
	// (grpcauth.Dial).
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
	c := &Config{}
	serve.RegisterFlags(fs, &c.Serve, ":8082", ":9082")
	c.Serve.Name = "catalogsvc"
	grpcauth.RegisterFlags(fs, &c.Auth)
	fs.StringVar(&c.DSN, "dsn", "var/catalogsvc.db", "store: a SQLite file path shared by the replicas of one host, or a postgres:// URL")
	fs.StringVar(&c.CartMode, "cart-mode", CartModeStore, "where carts live: store (the database) or request (sealed in each request's cart_state)")
	fs.StringVar(&c.CartKey, "cart-key", "", "base64 of the 32-byte secret that seals cart_state in request mode; prefer the environment variable to the command line")
	fs.StringVar(&c.CartStateEncoding, "cart-state-encoding", "binary", "what request mode writes into cart_state: binary, or json while replicas of a release before binary still serve (every replica reads both)")
	fs.StringVar(&c.CartOldKeys, "cart-old-keys", "", "comma-separated base64 secrets still accepted when opening cart_state, during a key rotation")
	// Another replica's admin write shows here within --catalog-refresh
	// (plus one reload, a few milliseconds).
	fs.DurationVar(&c.CatalogRefresh, "catalog-refresh", time.Second, "how often to check the database for catalog changes made by other replicas")
	fs.BoolVar(&c.Seed, "seed", true, "load the built-in catalog on first start")
	// A shopper's client makes a few calls a second; 50/s with bursts of
	// 100 leaves room for any honest client (and for scripts) while one
	// caller cannot take a replica's whole capacity (thousands of calls a
	// second). 65536 callers at about 200 bytes each is ≈ 13 MiB when full.
	fs.Float64Var(&c.RateLimit, "rate-limit", 50, "calls a second each caller (token subject; client IP for public calls) may make to this replica on average; 0 disables the limit")
	fs.IntVar(&c.RateBurst, "rate-burst", 100, "calls a caller may make at once above --rate-limit")
	fs.IntVar(&c.RateLimitCallers, "rate-limit-callers", 65536, "callers whose rate is remembered (about 200 bytes each); the least recently seen are forgotten")
	return c
}

// DefaultConfig returns the configuration of RegisterFlags' defaults.
func DefaultConfig() Config {
	return *RegisterFlags(flag.NewFlagSet("catalogsvc", flag.ContinueOnError))
}

// Validate reports every invalid setting, naming the flag to fix.
func (c *Config) Validate() error {
	errs := []error{c.Serve.Validate(), c.Auth.Validate()}
	if c.DSN == "" {
		errs = append(errs, errors.New("--dsn is required: a SQLite file path or a postgres:// URL"))
	}
	switch c.CartMode {
	case CartModeStore:
	case CartModeRequest:
		if _, _, err := c.cartKeys(); err != nil {
			errs = append(errs, err)
		}
		if _, err := cartstate.ParseEncoding(c.CartStateEncoding); err != nil {
			errs = append(errs, fmt.Errorf("--cart-state-encoding: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("--cart-mode must be %q or %q, got %q", CartModeStore, CartModeRequest, c.CartMode))
	}
	if c.CatalogRefresh <= 0 {
		errs = append(errs, fmt.Errorf("--catalog-refresh must be positive, got %v", c.CatalogRefresh))
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
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	return nil
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
