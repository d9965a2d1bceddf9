package serve

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/tokencart/tokencart/internal/tlsconfig"
)

// Defaults applied by [New] to zero fields of [Config] (and used as flag
// defaults by [RegisterFlags]).
const (
	defaultShutdownTimeout       = 15 * time.Second
	defaultMaxConnectionAge      = 30 * time.Second
	defaultMaxConnectionAgeGrace = 10 * time.Second
	defaultMaxRecvMsgSize        = 1 << 20
	defaultMaxConcurrentStreams  = 256
	// flagDrainDelay is the production drain delay: long enough for
	// Kubernetes to take the pod out of its Endpoints after SIGTERM.
	flagDrainDelay = 5 * time.Second
)

// MaxHeaderListSize bounds a request's metadata (HPACK size: names and
// values plus 32 bytes per field), advertised to clients and enforced by
// the transport before any interceptor runs: it fits an access token of
// the largest size the services accept (8 KiB) next to the usual headers,
// and keeps a caller from making the server decode megabytes of headers
// (gRPC-Go's own default is 16 MiB, and is moving to 8 KiB, which a token
// of that size would not fit beside the others).
const MaxHeaderListSize = 16 << 10

// Config is the runtime configuration of a [Server]. Zero durations and sizes
// mean "use the default" unless a field says otherwise; negative values are
// invalid.
type Config struct {
	// Name is the service name used in logs and as the OpenTelemetry
	// service.name, e.g. "catalogsvc". Required.
	Name string
	// GRPCAddr and AdminAddr are the listen addresses of the gRPC server and
	// of the admin HTTP server (metrics, probes, pprof), e.g. ":8082" and
	// ":9082". "127.0.0.1:0" picks a free port (see [Server.GRPCAddr]).
	GRPCAddr, AdminAddr string
	// DrainDelay is how long the server keeps accepting calls after shutdown
	// begins while reporting NOT_SERVING, so load balancers and Kubernetes
	// Endpoints stop routing to it before connections are closed. Default 0.
	DrainDelay time.Duration
	// ShutdownTimeout bounds GracefulStop; after it in-flight calls are
	// cancelled by Stop. Default 15s. DrainDelay+ShutdownTimeout should stay
	// below the pod's terminationGracePeriodSeconds.
	ShutdownTimeout time.Duration
	// MaxConnectionAge and MaxConnectionAgeGrace make clients reconnect
	// periodically so load spreads onto new replicas. Defaults 30s and 10s.
	MaxConnectionAge, MaxConnectionAgeGrace time.Duration
	// MaxRecvMsgSize is the largest request message accepted, in bytes;
	// larger ones fail with ResourceExhausted. Default 1 MiB.
	MaxRecvMsgSize int
	// MaxConcurrentStreams limits concurrent calls per client connection.
	// Default 256.
	MaxConcurrentStreams uint32
	// TLSCertFile and TLSKeyFile are PEM files of the gRPC port's
	// certificate chain and private key. Set both to serve TLS 1.3 only
	// (plaintext and older TLS clients are refused), or neither to serve
	// plaintext. The pair is re-read when the files change, so rotated
	// certificates apply to new connections without a restart.
	//
	// Kubernetes' gRPC probes speak plaintext only: with TLS on, probe the
	// admin port's /readyz instead.
	//
	// The admin port stays plaintext either way. It carries no tokens or
	// user data (pprof, off by default, is a debugging aid), it is bound
	// separately so it need not be exposed by a Service (in Kubernetes it
	// is reachable only inside the pod network, and NetworkPolicy narrows
	// that to the kubelet and Prometheus), and probes and scrapers cannot
	// present client certificates.
	TLSCertFile, TLSKeyFile string
	// TLSClientCAFile, a PEM bundle, turns on mutual TLS: every client must
	// present a certificate issued by one of its CAs. It needs TLSCertFile.
	// Use it for ports only other services call.
	TLSClientCAFile string
	// EnablePprof serves net/http/pprof under /debug/pprof/ on the admin port.
	EnablePprof bool
	// LogAllRefusals logs every call refused with Unauthenticated,
	// PermissionDenied or ResourceExhausted; by default at most ten such
	// lines a second are written (the metrics count every call).
	LogAllRefusals bool
	// AccessLog writes a line for every call, at info or above. By default
	// only failed and slow calls have one (the metrics count every call).
	AccessLog bool
	// LogSlowCalls is how long a unary call may take before its line is
	// written at warn whatever its outcome; 0 logs no call for being slow.
	// The flag's default is 500ms.
	LogSlowCalls time.Duration
	// LogFormat ("text" or "json"; "" means text) and LogLevel configure the
	// logger built by [Config.NewLogger].
	LogFormat string
	LogLevel  slog.Level
	// Logger receives the server's logs. If nil, [New] uses
	// c.NewLogger(os.Stderr).
	Logger *slog.Logger
}

// RegisterFlags binds the fields of cfg to flags on fs, with defaultGRPC and
// defaultAdmin as the listen address defaults and production defaults for the
// rest (including a 5s drain delay). Mains call it, add their own flags, then
// parse with envflag.Parse and check the result with [Config.Validate].
func RegisterFlags(fs *flag.FlagSet, cfg *Config, defaultGRPC, defaultAdmin string) {
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", defaultGRPC, "gRPC listen address")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", defaultAdmin, "admin HTTP listen address (/metrics, /healthz, /readyz, /debug/pprof/)")
	fs.DurationVar(&cfg.DrainDelay, "drain-delay", flagDrainDelay, "after SIGTERM, how long to report NOT_SERVING and keep serving before draining connections")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long to wait for in-flight calls before cancelling them")
	fs.DurationVar(&cfg.MaxConnectionAge, "max-connection-age", defaultMaxConnectionAge, "close client connections after this age so clients rebalance across replicas")
	fs.DurationVar(&cfg.MaxConnectionAgeGrace, "max-connection-age-grace", defaultMaxConnectionAgeGrace, "grace period for calls in flight on a connection closed for age")
	fs.IntVar(&cfg.MaxRecvMsgSize, "max-recv-msg-size", defaultMaxRecvMsgSize, "largest accepted request message in bytes")
	cfg.MaxConcurrentStreams = defaultMaxConcurrentStreams
	fs.Var((*uint32Value)(&cfg.MaxConcurrentStreams), "max-concurrent-streams", "maximum concurrent calls per client connection")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate chain for the gRPC port; with --tls-key, serve TLS 1.3 only (the admin port stays plaintext)")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&cfg.TLSClientCAFile, "tls-client-ca", "", "PEM CA bundle; when set, gRPC clients must present a certificate it issued (mutual TLS)")
	fs.BoolVar(&cfg.EnablePprof, "pprof", false, "serve /debug/pprof/ on the admin port")
	fs.BoolVar(&cfg.LogAllRefusals, "log-all-refusals", false,
		"log every call refused as Unauthenticated, PermissionDenied or ResourceExhausted (by default at most ten lines a second, which a flood cannot turn into a log line each)")
	fs.BoolVar(&cfg.AccessLog, "access-log", false,
		"log every call (by default a call that succeeds in less than --log-slow-calls has no line: the metrics count it)")
	fs.DurationVar(&cfg.LogSlowCalls, "log-slow-calls", defaultLogSlowCalls, "log, at warn, every unary call that takes at least this long; 0 logs none for being slow")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
}

// uint32Value is a flag.Value for a uint32.
type uint32Value uint32

func (v *uint32Value) String() string { return strconv.FormatUint(uint64(*v), 10) }

func (v *uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return errors.New("must be a whole number between 0 and 4294967295")
	}
	*v = uint32Value(n)
	return nil
}

// Validate reports every invalid field of c, naming the flag that sets it.
// Zero values are valid: they select the defaults. It reads the TLS files,
// if set, so that an unreadable or mismatched one is a configuration error.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("service name is required"))
	}
	errs = append(errs, ValidateAddr("--grpc-addr", c.GRPCAddr), ValidateAddr("--admin-addr", c.AdminAddr))
	if c.GRPCAddr != "" && c.GRPCAddr == c.AdminAddr {
		if _, port, err := net.SplitHostPort(c.GRPCAddr); err == nil && port != "0" {
			errs = append(errs, fmt.Errorf("--grpc-addr and --admin-addr must differ, both are %q", c.GRPCAddr))
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"drain-delay", c.DrainDelay},
		{"shutdown-timeout", c.ShutdownTimeout},
		{"max-connection-age", c.MaxConnectionAge},
		{"max-connection-age-grace", c.MaxConnectionAgeGrace},
		{"log-slow-calls", c.LogSlowCalls},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("--%s must not be negative, got %v", d.flag, d.v))
		}
	}
	if c.MaxRecvMsgSize < 0 {
		errs = append(errs, fmt.Errorf("--max-recv-msg-size must not be negative, got %d", c.MaxRecvMsgSize))
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat))
	}
	errs = append(errs, c.validateTLS())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid server configuration: %w", err)
	}
	return nil
}

// validateTLS checks the TLS flags and, when they are complete, that the
// files load, so a bad path or a mismatched pair stops startup with a
// message naming the flag.
func (c *Config) validateTLS() error {
	switch {
	case c.TLSCertFile == "" && c.TLSKeyFile == "" && c.TLSClientCAFile == "":
		return nil
	case c.TLSCertFile == "" && c.TLSKeyFile == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS")
	case c.TLSCertFile == "":
		return errors.New("--tls-key needs --tls-cert")
	case c.TLSKeyFile == "":
		return errors.New("--tls-cert needs --tls-key")
	}
	if _, err := c.serverTLS(); err != nil {
		return fmt.Errorf("--tls-cert, --tls-key or --tls-client-ca: %w", err)
	}
	return nil
}

// serverTLS returns the gRPC port's TLS configuration, or nil for
// plaintext.
func (c *Config) serverTLS() (*tls.Config, error) {
	if c.TLSCertFile == "" && c.TLSKeyFile == "" {
		return nil, nil
	}
	return tlsconfig.Server(c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile)
}

// tlsMode describes the gRPC port's transport security for the log.
func (c *Config) tlsMode() string {
	switch {
	case c.TLSClientCAFile != "":
		return "mtls"
	case c.TLSCertFile != "":
		return "tls"
	}
	return "plaintext"
}

// ValidateAddr checks that addr is a listen address, host:port, naming it
// as what (e.g. "--grpc-addr") in the error.
func ValidateAddr(what, addr string) error {
	if addr == "" {
		return fmt.Errorf("%s is required (host:port, e.g. :8080)", what)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q is not host:port: %w", what, addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%s %q: port must be a number from 0 to 65535", what, addr)
	}
	return nil
}

// NewLogger returns a logger writing to w in c.LogFormat at c.LogLevel,
// with a "service" attribute set to c.Name.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	l := slog.New(h)
	if c.Name != "" {
		l = l.With("service", c.Name)
	}
	return l
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = defaultShutdownTimeout
	}
	if c.MaxConnectionAge == 0 {
		c.MaxConnectionAge = defaultMaxConnectionAge
	}
	if c.MaxConnectionAgeGrace == 0 {
		c.MaxConnectionAgeGrace = defaultMaxConnectionAgeGrace
	}
	if c.MaxRecvMsgSize == 0 {
		c.MaxRecvMsgSize = defaultMaxRecvMsgSize
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = defaultMaxConcurrentStreams
	}
	return c
}
