// Command tokencart-run is what `make run` starts: authsvc and three
// catalogsvc replicas as separate processes on the embedded SQLite default,
// with data under a directory that survives restarts. It creates the
// development secrets there on first use (the key-encryption key, the
// service credential the replicas present to authsvc, and the admin
// account's password), waits until every process reports SERVING, prints
// the addresses and a grpcurl walkthrough, and on Ctrl-C drains and stops
// every process.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
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
	port := flag.Int("port", 8081, "authsvc's gRPC port; catalogsvc replicas take the next ones, and each admin port is 1000 above its gRPC port")
	grpcurl := flag.String("grpcurl", "grpcurl", "grpcurl command shown in the walkthrough")
	flag.Parse()
	if *replicas < 1 || *replicas > 9 || *port < 1 || *port > 64000 {
		fmt.Fprintln(os.Stderr, "tokencart-run: --replicas must be 1 to 9 and --port 1 to 64000")
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
	procs := []*cluster.Process{}
	stopAll := func() {
		// Replicas first, so they do not watch their authsvc go away.
		for i := len(procs) - 1; i >= 0; i-- {
			if err := procs[i].Stop(30 * time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "tokencart-run:", err)
			}
		}
	}
	defer stopAll()

	auth, err := cluster.Start(cluster.Spec{
		Name: "authsvc",
		Path: filepath.Join(*binDir, "authsvc"),
		Args: []string{
			"--grpc-addr", authAddr,
			"--admin-addr", adminOf(authAddr),
			"--dsn", filepath.Join(*dataDir, "authsvc.db"),
			"--bootstrap-admin", admin.Email,
		},
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
	procs = append(procs, auth)
	if err := auth.WaitServing(ctx); err != nil {
		return err
	}

	var catalogAddrs []string
	for i := range *replicas {
		addr := fmt.Sprintf("%s:%d", *host, *port+1+i)
		p, err := cluster.Start(cluster.Spec{
			Name: fmt.Sprintf("catalogsvc-%d", i+1),
			Path: filepath.Join(*binDir, "catalogsvc"),
			Args: []string{
				"--grpc-addr", addr,
				"--admin-addr", adminOf(addr),
				"--dsn", filepath.Join(*dataDir, "catalogsvc.db"),
				"--auth-addr", authAddr,
			},
			Env:      []string{"CATALOGSVC_SERVICE_CREDENTIAL=" + serviceCredential},
			GRPCAddr: addr,
		}, out)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		catalogAddrs = append(catalogAddrs, addr)
	}
	for _, p := range procs[1:] {
		if err := p.WaitServing(ctx); err != nil {
			return err
		}
	}
	productID, err := firstProduct(ctx, catalogAddrs[0])
	if err != nil {
		return err
	}
	printBanner(authAddr, catalogAddrs, cluster.QuickStart(grpcurlCommand(*grpcurl), authAddr, catalogAddrs,
		"ada@example.com", "correct horse battery staple", productID, admin), admin)

	// Serve until Ctrl-C, or until a process dies on its own.
	exited := make(chan *cluster.Process, len(procs))
	for _, p := range procs {
		go func() {
			<-p.Done()
			exited <- p
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping: draining every process ...")
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

func printBanner(authAddr string, catalogAddrs []string, commands []string, admin cluster.Admin) {
	var b strings.Builder
	fmt.Fprintf(&b, "\ntokencart is running (Ctrl-C stops it)\n\n")
	for _, a := range append([]string{authAddr}, catalogAddrs...) {
		name := "catalogsvc"
		if a == authAddr {
			name = "authsvc"
		}
		fmt.Fprintf(&b, "  %-11s gRPC %s   admin http://%s/metrics\n", name, a, adminOf(a))
	}
	fmt.Fprintf(&b, "\n  admin account %s, its password in %s\n", admin.Email, admin.PasswordFile)
	fmt.Fprintf(&b, "\nTry it (the cart is written through one replica and read through another):\n\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	fmt.Println(b.String())
}

// adminOf returns the admin address of a service at grpcAddr.
func adminOf(grpcAddr string) string {
	host, port, _ := net.SplitHostPort(grpcAddr)
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+1000))
}
