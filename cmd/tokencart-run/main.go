// Command tokencart-run is what `make run` starts: authsvc and three
// catalogsvc replicas as separate processes on the embedded SQLite default,
// with data under a directory that survives restarts. It creates the
// development secrets there on first use (the key-encryption key, the
// service credential the replicas present to authsvc, and the admin
// account's password), waits until every process reports SERVING, prints
// the addresses and a grpcurl walkthrough as its last block, and on Ctrl-C
// stops every process within a few seconds.
//
// The services log in text at --log-level (warn by default), so that a
// healthy cluster stays quiet and the walkthrough stays on the screen.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/cluster"
	"github.com/tokencart/tokencart/internal/version"
)

// How the services stop on Ctrl-C. No load balancer routes to them, so
// they drain at once (--drain-delay 0s) instead of reporting NOT_SERVING
// first, and a person is waiting: calls still running after
// shutdownTimeout are cancelled.
const (
	shutdownTimeout = time.Second
	// stopTimeout bounds each of the two stop phases (the replicas
	// together, then authsvc) before the launcher kills what is left:
	// shutdownTimeout plus the time to close the store and exit.
	stopTimeout = 1400 * time.Millisecond
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tokencart-run:", err)
		os.Exit(1)
	}
}

func run() error {
	binDir := flag.String("bin", "bin", "directory holding the authsvc and catalogsvc binaries")
	dataDir := flag.String("data", "var", "directory for the SQLite databases and the development key")
	host := flag.String("host", "127.0.0.1", "address the services listen on")
	replicas := flag.Int("replicas", 3, "number of catalogsvc replicas")
	port := flag.Int("port", 8081,
		"authsvc's gRPC port; catalogsvc replicas take the next ones, each admin port is 1000 above its gRPC port, and authsvc's public HTTP port is the one below")
	grpcurl := flag.String("grpcurl", "grpcurl", "grpcurl command shown in the walkthrough")
	logLevel := slog.LevelWarn
	flag.TextVar(&logLevel, "log-level", logLevel, "level of the services' logs shown: debug, info, warn or error")
	flag.Var(version.NewFlag("tokencart-run"), "version", version.Usage)
	flag.Parse()
	if *replicas < 1 || *replicas > 9 || *port < 2 || *port > 64000 {
		fmt.Fprintln(os.Stderr, "tokencart-run: --replicas must be 1 to 9 and --port 2 to 64000")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(*dataDir, 0o750); err != nil {
		return err
	}
	kek, err := devSecret(filepath.Join(*dataDir, "authsvc-dev.kek"))
	if err != nil {
		return err
	}
	serviceCredential, err := devSecret(filepath.Join(*dataDir, "service-credential"))
	if err != nil {
		return err
	}
	admin := cluster.Admin{Email: "admin@tokencart.local", PasswordFile: filepath.Join(*dataDir, "admin-password")}
	adminPassword, err := devSecret(admin.PasswordFile)
	if err != nil {
		return err
	}
	out := cluster.NewOutput(os.Stdout)
	authAddr := fmt.Sprintf("%s:%d", *host, *port)
	publicAddr := net.JoinHostPort(*host, strconv.Itoa(*port-1))
	// Both services must agree on it; with the default port it is
	// authsvc's default too.
	issuer := "http://" + publicAddr
	common := []string{
		"--log-format", "text",
		"--log-level", logLevel.String(),
		"--drain-delay", "0s",
		"--shutdown-timeout", shutdownTimeout.String(),
	}
	var auth *cluster.Process
	var catalogs []*cluster.Process
	defer func() {
		began := time.Now()
		// The replicas first, so they do not watch their authsvc go away.
		err := cluster.StopAll(stopTimeout, catalogs...)
		if auth != nil {
			err = errors.Join(err, auth.Stop(stopTimeout))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "tokencart-run:", err)
		}
		if ctx.Err() != nil {
			out.Printf("stopped in %v\n", time.Since(began).Round(time.Millisecond))
		}
	}()

	out.Printf("starting authsvc and %d catalogsvc replicas (showing their logs at level %s and above) ...\n", *replicas, logLevel)
	auth, err = cluster.Start(cluster.Spec{
		Name: "authsvc",
		Path: filepath.Join(*binDir, "authsvc"),
		Args: append([]string{
			"--grpc-addr", authAddr,
			"--admin-addr", adminOf(authAddr),
			"--public-addr", publicAddr,
			"--issuer", issuer,
			"--dsn", filepath.Join(*dataDir, "authsvc.db"),
			"--bootstrap-admin", admin.Email,
		}, common...),
		Env: []string{
			"AUTHSVC_KEY_ENCRYPTION_KEY=" + kek,
			"AUTHSVC_SERVICE_CREDENTIALS=" + serviceCredential,
			"AUTHSVC_BOOTSTRAP_ADMIN_PASSWORD=" + adminPassword,
		},
		GRPCAddr: authAddr,
	}, out)
	if err != nil {
		return err
	}
	if err := auth.WaitServing(ctx); err != nil {
		return err
	}

	var catalogAddrs []string
	for i := range *replicas {
		addr := fmt.Sprintf("%s:%d", *host, *port+1+i)
		p, err := cluster.Start(cluster.Spec{
			Name: fmt.Sprintf("catalogsvc-%d", i+1),
			Path: filepath.Join(*binDir, "catalogsvc"),
			Args: append([]string{
				"--grpc-addr", addr,
				"--admin-addr", adminOf(addr),
				"--dsn", filepath.Join(*dataDir, "catalogsvc.db"),
				"--auth-addr", authAddr,
				"--issuer", issuer,
			}, common...),
			Env:      []string{"CATALOGSVC_SERVICE_CREDENTIAL=" + serviceCredential},
			GRPCAddr: addr,
		}, out)
		if err != nil {
			return err
		}
		catalogs = append(catalogs, p)
		catalogAddrs = append(catalogAddrs, addr)
	}
	for _, p := range catalogs {
		if err := p.WaitServing(ctx); err != nil {
			return err
		}
	}
	productID, err := firstProduct(ctx, catalogAddrs[0])
	if err != nil {
		return err
	}
	// Last, so that it stays on the screen: a healthy cluster prints
	// nothing more at the default level.
	out.Printf("%s", banner(authAddr, issuer, catalogAddrs, cluster.QuickStart(grpcurlCommand(*grpcurl), authAddr, issuer, catalogAddrs,
		"ada@example.com", "correct horse battery staple", productID, admin), admin))

	// Serve until Ctrl-C, or until a process dies on its own.
	procs := append([]*cluster.Process{auth}, catalogs...)
	exited := make(chan *cluster.Process, len(procs))
	for _, p := range procs {
		go func() {
			<-p.Done()
			exited <- p
		}()
	}
	select {
	case <-ctx.Done():
		out.Printf("\nstopping: draining every process ...\n")
		return nil
	case p := <-exited:
		return fmt.Errorf("%s exited: %w", p.Spec.Name, p.Err())
	}
}

// devSecret returns the development secret kept at path (32 random bytes,
// base64), creating it on first use. Production passes its own through a
// Secret.
func devSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var k [32]byte
	_, _ = rand.Read(k[:])
	enc := base64.StdEncoding.EncodeToString(k[:])
	if err := os.WriteFile(path, []byte(enc+"\n"), 0o600); err != nil {
		return "", err
	}
	return enc, nil
}

func firstProduct(ctx context.Context, addr string) (string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := catalogv1.NewCatalogServiceClient(conn).ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 1})
	if err != nil {
		return "", fmt.Errorf("list products: %w", err)
	}
	if len(resp.GetProducts()) == 0 {
		return "", errors.New("the catalog is empty")
	}
	return resp.GetProducts()[0].GetId(), nil
}

// grpcurlCommand prefers a grpcurl on PATH, so the printed commands read as
// users would type them, and falls back to the pinned copy it was given.
func grpcurlCommand(pinned string) string {
	if _, err := exec.LookPath("grpcurl"); err == nil {
		return "grpcurl"
	}
	return pinned
}

// banner returns the addresses and the walkthrough, ending in a blank line.
func banner(authAddr, issuer string, catalogAddrs []string, commands []string, admin cluster.Admin) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ntokencart is running (Ctrl-C stops it)\n\n")
	for _, a := range append([]string{authAddr}, catalogAddrs...) {
		name := "catalogsvc"
		if a == authAddr {
			name = "authsvc"
		}
		fmt.Fprintf(&b, "  %-11s gRPC %s   admin http://%s/metrics\n", name, a, adminOf(a))
	}
	fmt.Fprintf(&b, "  %-11s issuer %s (OpenID Connect discovery and JWKS)\n", "authsvc", issuer)
	fmt.Fprintf(&b, "\n  admin account %s, its password in %s\n", admin.Email, admin.PasswordFile)
	fmt.Fprintf(&b, "\nTry it (the cart is written through one replica and read through another):\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	b.WriteString("\n")
	return b.String()
}

// adminOf returns the admin address of a service at grpcAddr.
func adminOf(grpcAddr string) string {
	host, port, _ := net.SplitHostPort(grpcAddr)
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+1000))
}
