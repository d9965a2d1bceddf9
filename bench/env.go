package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/catalogsvc/store"
	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/cluster"
	"github.com/tokencart/tokencart/internal/faultnet"
)

// DefaultPostgresDSN is the server tried when neither Options.PostgresDSN
// nor TOKENCART_BENCH_POSTGRES_DSN / TOKENCART_TEST_POSTGRES_DSN say
// otherwise. Every run works in schemas of its own, dropped at the end.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=2"

// poolSize is the pgx pool size of every PostgreSQL client in the run: the
// services' default (internal/sqldb), and the same for the raw upsert loop
// and the session baseline, so that the database sees the same concurrency.
const poolSize = 16

const benchPassword = "bench password, long enough"

// Process names, also the keys of env.procs.
const (
	procAuth        = "authsvc"
	procCatalog     = "catalog"         // request mode, local auth, token cache on
	procCatalog2    = "catalog-2"       // replicas of procCatalog
	procCatalog3    = "catalog-3"       //
	procNoCache     = "catalog-nocache" // --token-cache-size=0
	procRemote      = "catalog-remote"  // --auth-mode=remote --introspect-cache-ttl=0
	procLogWarn     = "catalog-warn"    // procCatalog with --log-level=warn
	procStoreSQLite = "catalog-sqlite"  // store mode on SQLite
	procStorePG     = "catalog-pg"      // store mode on PostgreSQL
	procSession     = "sessionbaseline" // session row lookup per request
	procVariant     = "catalog-b"       // procCatalog with Options.VariantEnv / VariantBinDir
)

// user is one registered account with a live access token.
type user struct {
	email, id, token string
	session          string // opaque session token of the session baseline
}

// env is the running system under test: the processes, their clients, the
// users, and the PostgreSQL schemas of the run.
type env struct {
	opts  Options
	tmp   string
	bin   string
	out   *cluster.Output
	users []user

	procs map[string]*cluster.Process
	admin map[string]string // process name -> admin (pprof) address

	pgBase    string        // base DSN; "" when PostgreSQL is not used
	schemas   []string      // created schemas, dropped by close
	rawPool   *pgxpool.Pool // the raw upsert loop's pool, on procStorePG's schema
	pgStore   *store.Store  // catalogsvc's store on procStorePG's schema, for the store-txn loop
	pgVersion string
	pgProxy   *faultnet.Proxy // between the services and PostgreSQL (Options.PostgresProxy)

	mu    sync.Mutex // guards conns
	conns map[string]*client.Conn

	products []string // product ids of the seed catalog
}

// postgresDSN returns the base DSN to use, from opts or the environment.
func postgresDSN(opts Options) string {
	for _, s := range []string{opts.PostgresDSN, os.Getenv("TOKENCART_BENCH_POSTGRES_DSN"), os.Getenv("TOKENCART_TEST_POSTGRES_DSN")} {
		if s != "" {
			return s
		}
	}
	return DefaultPostgresDSN
}

// startEnv builds the binaries (unless opts.BinDir has them), starts every
// process the selected scenarios need, and registers the users.
func startEnv(ctx context.Context, opts Options, need map[string]bool) (_ *env, err error) {
	t0 := time.Now()
	e := &env{opts: opts, procs: map[string]*cluster.Process{}, admin: map[string]string{}, conns: map[string]*client.Conn{}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.tmp, err = os.MkdirTemp("", "tokencart-bench-"); err != nil {
		return nil, err
	}
	e.out = cluster.NewOutput(opts.ProcessLog)
	if e.bin = opts.BinDir; e.bin == "" {
		e.bin = filepath.Join(e.tmp, "bin")
		if err := buildBinaries(ctx, e.bin); err != nil {
			return nil, err
		}
		fmt.Fprintf(opts.Progress, "bench: binaries built in %v\n", time.Since(t0).Round(time.Millisecond))
	}

	if opts.PostgresDSN != "-" {
		if err := e.connectPostgres(ctx, postgresDSN(opts)); err != nil {
			if opts.RequirePostgres {
				return nil, err
			}
			fmt.Fprintf(opts.Progress, "bench: PostgreSQL scenarios skipped: %v\n", err)
		}
	}
	authDSN := filepath.Join(e.tmp, "authsvc.db")
	if e.pgBase != "" {
		if authDSN, err = e.schema(ctx, "auth"); err != nil {
			return nil, err
		}
	}
	// The replicas present a service credential to authsvc's revocation
	// feed and introspection; the bench's users all register from one
	// address. Environment rather than flags, which binaries older than
	// these settings would refuse.
	credential := make([]byte, 32)
	_, _ = rand.Read(credential)
	serviceCredential := base64.StdEncoding.EncodeToString(credential)
	authAddr, err := e.start(ctx, procAuth, filepath.Join(e.bin, "authsvc"), []string{
		"--dsn", authDSN,
		"--revocation-poll-interval", "1s",
	}, []string{"AUTHSVC_SERVICE_CREDENTIALS=" + serviceCredential, "AUTHSVC_REGISTER_ADDRESS_LIMIT=1000000",
		// The public listener on a free port, not the default :8080 that
		// `make run` uses.
		"AUTHSVC_PUBLIC_ADDR=127.0.0.1:0",
		// The login scenario logs in as the same users whose tokens the
		// other scenarios present, hundreds of times each: at the default
		// bound of live sessions a login would revoke the session whose
		// token a later scenario uses.
		"AUTHSVC_SESSIONS_PER_ACCOUNT=1000000"})
	if err != nil {
		return nil, err
	}

	cartKey := make([]byte, 32)
	_, _ = rand.Read(cartKey)
	requestMode := []string{
		"--dsn", filepath.Join(e.tmp, "catalog-request.db"),
		"--auth-addr", authAddr,
		"--cart-mode", "request",
	}
	// The per-caller rate limiter stays in the chain, so its cost is
	// measured, with a limit no caller can reach: 50 callers from one
	// address would hit the production default (50/s) at once.
	// Environment rather than flags, which binaries older than the limiter
	// would refuse.
	catalogEnv := []string{"CATALOGSVC_RATE_LIMIT=1000000", "CATALOGSVC_RATE_BURST=1000000", "CATALOGSVC_SERVICE_CREDENTIAL=" + serviceCredential}
	cartKeyEnv := append([]string{"CATALOGSVC_CART_KEY=" + base64.StdEncoding.EncodeToString(cartKey)}, catalogEnv...)
	type spec struct {
		name string
		args []string
		env  []string
		pg   bool
	}
	specs := []spec{
		{procCatalog, requestMode, cartKeyEnv, false},
		{procCatalog2, requestMode, cartKeyEnv, false},
		{procCatalog3, requestMode, cartKeyEnv, false},
		{procNoCache, append(requestMode, "--token-cache-size", "0"), cartKeyEnv, false},
		{procRemote, append(requestMode, "--auth-mode", "remote", "--introspect-cache-ttl", "0"), cartKeyEnv, false},
		{procLogWarn, append(requestMode, "--log-level", "warn"), cartKeyEnv, false},
		{procStoreSQLite, []string{"--dsn", filepath.Join(e.tmp, "catalog-store.db"), "--auth-addr", authAddr, "--cart-mode", "store"}, catalogEnv, false},
		{procStorePG, []string{"--auth-addr", authAddr, "--cart-mode", "store"}, catalogEnv, true},
		{procSession, nil, nil, true},
		{procVariant, requestMode, append(slices.Clone(cartKeyEnv), opts.VariantEnv...), false},
	}
	// All at once: most of a start is waiting (for the database, for
	// authsvc's key set), and the replicas sharing a SQLite file take
	// turns at its migration lock on their own.
	var started []*cluster.Process
	for _, s := range specs {
		if !need[s.name] || (s.pg && e.pgBase == "") {
			continue
		}
		args := s.args
		if s.pg {
			dsn, err := e.schema(ctx, s.name)
			if err != nil {
				return nil, err
			}
			if dsn, err = e.postgresVia(dsn); err != nil {
				return nil, err
			}
			args = append(slices.Clone(args), "--dsn", dsn)
		}
		path := filepath.Join(e.bin, "catalogsvc")
		switch {
		case s.name == procSession:
			path = filepath.Join(e.bin, "sessionbaseline")
		case s.name == procVariant && opts.VariantBinDir != "":
			path = filepath.Join(opts.VariantBinDir, "catalogsvc")
		}
		p, err := e.launch(s.name, path, args, s.env)
		if err != nil {
			return nil, err
		}
		started = append(started, p)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range started {
		g.Go(func() error { return waitServing(gctx, p) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if e.procs[procStorePG] != nil {
		// The raw upsert loop writes to the very table procStorePG uses.
		if e.rawPool, err = newPool(ctx, e.dsnFor(procStorePG)); err != nil {
			return nil, err
		}
		if e.pgStore, err = store.Open(ctx, e.dsnFor(procStorePG), slog.New(slog.DiscardHandler)); err != nil {
			return nil, err
		}
	}

	fmt.Fprintf(opts.Progress, "bench: %d processes serving after %v; registering %d users\n", len(e.procs), time.Since(t0).Round(time.Millisecond), opts.Concurrency)
	if err := e.registerUsers(ctx, authAddr); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Progress, "bench: users ready after %v\n", time.Since(t0).Round(time.Millisecond))
	if e.procs[procSession] != nil {
		if err := e.seedSessions(ctx); err != nil {
			return nil, err
		}
	}
	if err := e.loadProducts(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// buildBinaries builds the services and the session baseline into dir.
func buildBinaries(ctx context.Context, dir string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/authsvc", "./cmd/catalogsvc", "./bench/cmd/sessionbaseline")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build binaries: %w\n%s", err, out)
	}
	return nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the tokencart module")
	}
	return filepath.Dir(mod), nil
}

// freeAddr returns 127.0.0.1:port with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start starts one service process and waits until it serves. It returns
// the gRPC address.
func (e *env) start(ctx context.Context, name, path string, args, env []string) (string, error) {
	p, err := e.launch(name, path, args, env)
	if err != nil {
		return "", err
	}
	return p.Spec.GRPCAddr, waitServing(ctx, p)
}

// launch starts one service process with the bench's common flags.
func (e *env) launch(name, path string, args, env []string) (*cluster.Process, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	common := []string{
		"--grpc-addr", grpcAddr,
		"--admin-addr", adminAddr,
		"--pprof",
		"--drain-delay", "0s",
		"--log-format", "json",
	}
	p, err := cluster.Start(cluster.Spec{
		Name:     name,
		Path:     path,
		Args:     append(common, args...),
		Env:      append(slices.Clone(e.opts.Env), env...),
		GRPCAddr: grpcAddr,
	}, e.out)
	if err != nil {
		return nil, err
	}
	e.procs[name] = p
	e.admin[name] = adminAddr
	return p, nil
}

func waitServing(ctx context.Context, p *cluster.Process) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return p.WaitServing(ctx)
}

// conn returns the shared client connection to the given processes: the
// production client (round robin over an address list, deadline, retry
// policy, idempotency keys), one connection per replica.
func (e *env) conn(names ...string) (*client.Conn, error) {
	return e.connKeyed(strings.Join(names, ","), names...)
}

// ownConn returns caller i's own connection to the process name.
func (e *env) ownConn(i int, name string) (*client.Conn, error) {
	return e.connKeyed(fmt.Sprintf("%s#%d", name, i), name)
}

func (e *env) connKeyed(key string, names ...string) (*client.Conn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.conns[key]; c != nil {
		return c, nil
	}
	addrs := make([]string, 0, len(names))
	for _, n := range names {
		p := e.procs[n]
		if p == nil {
			return nil, fmt.Errorf("process %s not started", n)
		}
		addrs = append(addrs, p.Spec.GRPCAddr)
	}
	c, err := client.Dial(strings.Join(addrs, ","), client.Options{})
	if err != nil {
		return nil, err
	}
	e.conns[key] = c
	return c, nil
}

// registerUsers registers one account per caller and logs each in. Two at
// a time: authsvc hashes two passwords at once on this machine and sheds
// what waits longer than a second.
func (e *env) registerUsers(ctx context.Context, authAddr string) error {
	conn, err := e.conn(procAuth)
	if err != nil {
		return err
	}
	auth := authv1.NewAuthServiceClient(conn)
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	e.users = make([]user, e.opts.Concurrency)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i := range e.users {
		g.Go(func() (err error) {
			u := &e.users[i]
			u.email = fmt.Sprintf("bench-%s-%03d@bench.tokencart.test", hex.EncodeToString(run), i)
			retried := false
			if err := retryShed(gctx, func() error {
				_, err := auth.Register(gctx, &authv1.RegisterRequest{Email: u.email, Password: benchPassword})
				if retried && status.Code(err) == codes.AlreadyExists {
					return nil // an attempt that timed out got through
				}
				retried = true
				return err
			}); err != nil {
				return fmt.Errorf("register %s: %w", u.email, err)
			}
			var login *authv1.LoginResponse
			if err := retryShed(gctx, func() (err error) {
				login, err = auth.Login(gctx, &authv1.LoginRequest{Email: u.email, Password: benchPassword})
				return err
			}); err != nil {
				return fmt.Errorf("login %s: %w", u.email, err)
			}
			u.token = login.GetAccessToken()
			if u.id, err = subject(u.token); err != nil {
				return err
			}
			var s [32]byte
			_, _ = rand.Read(s[:])
			u.session = base64.RawURLEncoding.EncodeToString(s[:])
			return nil
		})
	}
	return g.Wait()
}

// subject returns the sub claim of a JWT, unverified: the bench only
// needs the user id its own login returned.
func subject(jwt string) (string, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", errors.New("access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("access token payload: %w", err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub == "" {
		return "", errors.New("access token has no subject")
	}
	return claims.Sub, nil
}

// retryShed retries f while authsvc sheds or times out under load
// (ResourceExhausted, Unavailable, DeadlineExceeded): on a shared machine
// other people's work can starve it for seconds. It gives up after a
// minute.
func retryShed(ctx context.Context, f func() error) error {
	giveUp := time.Now().Add(time.Minute)
	for {
		err := f()
		switch status.Code(err) {
		case codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded:
		default:
			return err
		}
		if time.Now().After(giveUp) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// loadProducts reads the seed catalog's product ids.
func (e *env) loadProducts(ctx context.Context) error {
	conn, err := e.conn(procCatalog)
	if err != nil {
		return err
	}
	resp, err := catalogv1.NewCatalogServiceClient(conn).ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 6})
	if err != nil {
		return fmt.Errorf("list products: %w", err)
	}
	for _, p := range resp.GetProducts() {
		e.products = append(e.products, p.GetId())
	}
	if len(e.products) == 0 {
		return errors.New("the seed catalog is empty")
	}
	return nil
}

// connectPostgres checks that the server answers and remembers it.
func (e *env) connectPostgres(ctx context.Context, dsn string) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return fmt.Errorf("PostgreSQL not reachable (set TOKENCART_BENCH_POSTGRES_DSN): %w", err)
	}
	defer conn.Close(ctx)
	var free int
	if err := conn.QueryRow(cctx, `SELECT current_setting('server_version'),
		current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)`).Scan(&e.pgVersion, &free); err != nil {
		return err
	}
	// authsvc, the PostgreSQL store, the session baseline and the raw loop
	// each hold up to poolSize connections.
	if need := 4 * poolSize; free < need+5 {
		fmt.Fprintf(e.opts.Progress, "bench: warning: PostgreSQL has %d free connections and the run may use %d; calls may fail with \"too many clients\"\n", free, need)
	}
	e.pgBase = dsn
	return nil
}

func newPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("postgres: invalid DSN")
	}
	cfg.MaxConns = poolSize
	return pgxpool.NewWithConfig(ctx, cfg)
}

// schema creates a schema for the process name and returns a DSN whose
// search_path is that schema.
func (e *env) schema(ctx context.Context, name string) (string, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := "bench_" + hex.EncodeToString(b[:]) + "_" + strings.NewReplacer("-", "_").Replace(name)
	conn, err := pgx.Connect(ctx, e.pgBase)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+s); err != nil {
		return "", fmt.Errorf("create schema: %w", err)
	}
	e.schemas = append(e.schemas, s)
	return e.withSearchPath(s)
}

func (e *env) withSearchPath(schema string) (string, error) {
	u, err := url.Parse(e.pgBase)
	if err != nil {
		return "", errors.New("postgres: invalid DSN")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// dsnFor returns the DSN the process name was started with.
func (e *env) dsnFor(name string) string {
	args := e.procs[name].Spec.Args
	for i, a := range args {
		if a == "--dsn" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// seedSessions writes one live session row per user for the session
// baseline, keyed by the SHA-256 of its opaque token.
func (e *env) seedSessions(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, e.dsnFor(procSession))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	b := &pgx.Batch{}
	for _, u := range e.users {
		h := sha256.Sum256([]byte(u.session))
		b.Queue(`INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`, h[:], u.id, time.Now().Add(24*time.Hour))
	}
	return conn.SendBatch(ctx, b).Close()
}

// close stops every process (replicas before authsvc), drops the schemas
// and removes the temporary directory.
func (e *env) close() {
	for _, c := range e.conns {
		c.Close()
	}
	if e.rawPool != nil {
		e.rawPool.Close()
	}
	if e.pgStore != nil {
		_ = e.pgStore.Close()
	}
	var wg sync.WaitGroup
	for name, p := range e.procs {
		if name == procAuth {
			continue
		}
		wg.Go(func() {
			if err := p.Stop(20 * time.Second); err != nil {
				fmt.Fprintf(e.opts.Progress, "bench: %v\n", err)
			}
		})
	}
	wg.Wait()
	if e.pgProxy != nil {
		e.pgProxy.Close()
	}
	if p := e.procs[procAuth]; p != nil {
		if err := p.Stop(20 * time.Second); err != nil {
			fmt.Fprintf(e.opts.Progress, "bench: %v\n", err)
		}
	}
	if len(e.schemas) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, e.pgBase); err == nil {
			for _, s := range e.schemas {
				if _, err := conn.Exec(ctx, "DROP SCHEMA "+s+" CASCADE"); err != nil {
					fmt.Fprintf(e.opts.Progress, "bench: drop schema %s: %v\n", s, err)
				}
			}
			conn.Close(ctx)
		}
	}
	if e.tmp != "" {
		_ = os.RemoveAll(e.tmp)
	}
}
