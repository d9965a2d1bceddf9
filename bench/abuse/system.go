package abuse

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tokencart/tokencart/internal/cluster"
)

// replicaCount is the number of catalogsvc replicas under attack.
const replicaCount = 2

// service is one running process of the system and its admin address.
type service struct {
	name  string
	proc  *cluster.Process
	admin string // host:port of /metrics and /debug/pprof
}

// system is authsvc and its catalogsvc replicas, started with production
// defaults: only the secrets (key-encryption key, service credential), the
// listen addresses, the SQLite files and --pprof are given.
type system struct {
	tmp      string
	authDB   string // authsvc's SQLite file
	auth     *service
	replicas []*service
}

// startSystem builds the binaries unless opts.BinDir has them, starts
// authsvc and then the replicas, and waits until each one serves.
func startSystem(ctx context.Context, opts Options) (_ *system, err error) {
	s := &system{}
	defer func() {
		if err != nil {
			s.stop(opts.Progress)
		}
	}()
	if s.tmp, err = os.MkdirTemp("", "tokencart-abuse-"); err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	bin := opts.BinDir
	if bin == "" {
		bin = filepath.Join(s.tmp, "bin")
		t0 := time.Now()
		if err := buildServices(ctx, bin); err != nil {
			return nil, err
		}
		fmt.Fprintf(opts.Progress, "abuse: binaries built in %v\n", time.Since(t0).Round(time.Millisecond))
	}
	secrets, err := randomSecrets(2)
	if err != nil {
		return nil, err
	}
	kek, credential := secrets[0], secrets[1]
	addrs, err := reservePorts(2 * (1 + replicaCount))
	if err != nil {
		return nil, err
	}
	out := cluster.NewOutput(opts.ProcessLog)
	s.authDB = filepath.Join(s.tmp, "authsvc.db")
	s.auth, err = launch(out, "authsvc", filepath.Join(bin, "authsvc"), addrs[0], addrs[1],
		[]string{"--dsn", s.authDB},
		// The public listener on a free port, not the default :8080 that
		// `make run` uses.
		[]string{"AUTHSVC_KEY_ENCRYPTION_KEY=" + kek, "AUTHSVC_SERVICE_CREDENTIALS=" + credential, "AUTHSVC_PUBLIC_ADDR=127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	if err := waitServing(ctx, s.auth); err != nil {
		return nil, err
	}
	catalogDB := filepath.Join(s.tmp, "catalogsvc.db") // shared, as by the replicas of one host
	for i := range replicaCount {
		r, err := launch(out, fmt.Sprintf("catalogsvc-%d", i+1), filepath.Join(bin, "catalogsvc"), addrs[2+2*i], addrs[3+2*i],
			[]string{"--dsn", catalogDB, "--auth-addr", s.auth.proc.Spec.GRPCAddr},
			[]string{"CATALOGSVC_SERVICE_CREDENTIAL=" + credential})
		if err != nil {
			return nil, err
		}
		s.replicas = append(s.replicas, r)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range s.replicas {
		g.Go(func() error { return waitServing(gctx, r) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return s, nil
}

// launch starts one service process. --drain-delay 0s only shortens the
// shutdown at the end of the run.
func launch(out *cluster.Output, name, path, grpcAddr, adminAddr string, args, env []string) (*service, error) {
	common := []string{
		"--grpc-addr", grpcAddr,
		"--admin-addr", adminAddr,
		"--pprof",
		"--log-format", "json", // as deployed (deploy/k8s)
		"--drain-delay", "0s",
	}
	p, err := cluster.Start(cluster.Spec{Name: name, Path: path, Args: append(common, args...), Env: env, GRPCAddr: grpcAddr}, out)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &service{name: name, proc: p, admin: adminAddr}, nil
}

func waitServing(ctx context.Context, s *service) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.proc.WaitServing(ctx); err != nil {
		return fmt.Errorf("wait for %s: %w", s.name, err)
	}
	return nil
}

// stop stops the replicas, then authsvc, and removes the temporary files.
func (s *system) stop(progress io.Writer) {
	for _, svc := range slices.Concat(s.replicas, []*service{s.auth}) {
		if svc == nil {
			continue
		}
		if err := svc.proc.Stop(20 * time.Second); err != nil {
			fmt.Fprintf(progress, "abuse: %v\n", err)
		}
	}
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
}

// buildServices builds authsvc and catalogsvc into dir, from the module
// that contains the working directory.
func buildServices(ctx context.Context, dir string) error {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return fmt.Errorf("find the tokencart module (run inside it, or pass --bin): %w", err)
	}
	root := strings.TrimSpace(string(out))
	if root == "" {
		return errors.New("find the tokencart module: go list printed nothing (run inside it, or pass --bin)")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/authsvc", "./cmd/catalogsvc")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the services: %w\n%s", err, msg)
	}
	return nil
}

// reservePorts returns n distinct 127.0.0.1 addresses whose ports are free
// now: every listener stays open until all are chosen.
func reservePorts(n int) ([]string, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a port: %w", err)
		}
		listeners = append(listeners, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// randomSecrets returns n secrets, each base64 of 32 random bytes: a
// key-encryption key, a service credential.
func randomSecrets(n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("random secret: %w", err)
		}
		out[i] = base64.StdEncoding.EncodeToString(b)
	}
	return out, nil
}
