package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/cluster"
	"github.com/tokencart/tokencart/internal/faultnet"
)

// testCluster is authsvc plus a changing set of catalogsvc replicas, each
// replica a process on an address of its own in 127.0.0.0/8.
type testCluster struct {
	t        *testing.T
	out      *cluster.Output
	log      *tail
	authAddr string
	// issuer is authsvc's --issuer: the URL of its public listener.
	issuer      string
	catalogArgs []string

	mu       sync.Mutex // guards replicas and nextIP
	replicas map[string]*cluster.Process
	nextIP   int
}

// Timings the cluster runs with, short so that a test sees rotation,
// propagation and rebalancing happen.
const (
	keysetRefresh   = time.Second
	keyPublishDelay = 2 * time.Second
	maxConnAge      = 2 * time.Second
	maxConnAgeGrace = time.Second
)

// serviceCredential is the secret the replicas present to authsvc's
// revocation feed, as an operator's Secret would hold it.
var serviceCredential = func() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}()

type clusterConfig struct {
	authDSN     string
	catalogDSN  string
	catalogArgs []string
	// authArgs are appended to authsvc's flags.
	authArgs []string
	// catalogDB, when set, carries the replicas' connections to their
	// PostgreSQL (catalogDSN points at it), so that the test can cut it.
	catalogDB *faultnet.Proxy
}

func startCluster(t *testing.T, cfg clusterConfig) *testCluster {
	t.Helper()
	logFile, err := os.Create(filepath.Join(t.TempDir(), "cluster.log"))
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, log: &tail{}, replicas: map[string]*cluster.Process{}, nextIP: 10}
	c.out = cluster.NewOutput(io.MultiWriter(c.log, logFile))
	c.authAddr = freeAddr(t, "127.0.0.2")
	publicAddr := freeAddr(t, "127.0.0.2")
	c.issuer = "http://" + publicAddr
	auth, err := cluster.Start(cluster.Spec{
		Name: "authsvc",
		Path: filepath.Join(binDir, "authsvc"),
		Args: append([]string{
			"--grpc-addr", c.authAddr,
			"--admin-addr", freeAddr(t, "127.0.0.2"),
			"--public-addr", publicAddr,
			"--issuer", c.issuer,
			"--dsn", cfg.authDSN,
			"--bootstrap-admin", adminEmail,
			"--key-publish-delay", keyPublishDelay.String(),
			"--key-reload-interval", "200ms",
			"--jwks-max-age", keysetRefresh.String(),
			"--log-level", "warn",
			// The shoppers all register and log in from 127.0.0.1, and the
			// long run rotates the key more often than an operator would.
			"--register-address-limit", "10000",
			"--key-rotation-limit", "1000",
		}, cfg.authArgs...),
		// Secrets through the environment, as the manifests pass them.
		Env:      []string{"AUTHSVC_SERVICE_CREDENTIALS=" + serviceCredential, "AUTHSVC_BOOTSTRAP_ADMIN_PASSWORD=" + adminPassword},
		GRPCAddr: c.authAddr,
	}, c.out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stopAll()
		if err := auth.Stop(20 * time.Second); err != nil {
			t.Errorf("authsvc: %v", err)
		}
		logFile.Close()
		if t.Failed() {
			t.Logf("cluster log (tail):\n%s", c.log.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := auth.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	c.catalogArgs = append([]string{
		"--dsn", cfg.catalogDSN,
		"--auth-addr", c.authAddr,
		"--issuer", c.issuer,
		"--keyset-refresh", keysetRefresh.String(),
		"--max-connection-age", maxConnAge.String(),
		"--max-connection-age-grace", maxConnAgeGrace.String(),
		"--drain-delay", "300ms",
		"--log-level", "warn",
	}, cfg.catalogArgs...)
	return c
}

// addReplica starts a catalogsvc replica on a new loopback address and waits
// until it serves. extra flags override the cluster's.
func (c *testCluster) addReplica(extra ...string) string {
	c.mu.Lock()
	ip := fmt.Sprintf("127.0.0.%d", c.nextIP)
	c.nextIP++
	c.mu.Unlock()
	addr := freeAddr(c.t, ip)
	c.startReplica(addr, freeAddr(c.t, ip), extra...)
	return addr
}

func (c *testCluster) startReplica(addr, adminAddr string, extra ...string) {
	p, err := cluster.Start(cluster.Spec{
		Name:     "catalog-" + addr,
		Path:     filepath.Join(binDir, "catalogsvc"),
		Args:     append(append([]string{"--grpc-addr", addr, "--admin-addr", adminAddr}, c.catalogArgs...), extra...),
		Env:      []string{"CATALOGSVC_SERVICE_CREDENTIAL=" + serviceCredential},
		GRPCAddr: addr,
	}, c.out)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.WaitServing(ctx); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.replicas[addr] = p
	c.mu.Unlock()
}

// live returns the addresses of the running replicas, sorted.
func (c *testCluster) live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.replicas))
	for a := range c.replicas {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// crash kills the replica at addr with SIGKILL and starts it again on the
// same address, as a supervisor would.
func (c *testCluster) crash(addr string) {
	c.mu.Lock()
	p := c.replicas[addr]
	c.mu.Unlock()
	p.Kill()
	args := p.Spec.Args
	c.startReplica(addr, args[3], args[4+len(c.catalogArgs):]...)
}

// remove drains the replica at addr with SIGTERM and waits for it to exit
// cleanly.
func (c *testCluster) remove(addr string) {
	c.mu.Lock()
	p := c.replicas[addr]
	delete(c.replicas, addr)
	c.mu.Unlock()
	if err := p.Stop(30 * time.Second); err != nil {
		c.t.Errorf("graceful stop of %s: %v", addr, err)
	}
}

func (c *testCluster) stopAll() {
	for _, a := range c.live() {
		c.remove(a)
	}
}
