package serve_test

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/serve"
	"github.com/tokencart/tokencart/internal/tlsconfig"
	"github.com/tokencart/tokencart/internal/tlsconfig/tlsconfigtest"
)

// dialCreds returns a client connection to addr using creds, closed when
// the test ends.
func dialCreds(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// clientCreds builds TLS client credentials with tlsconfig.Client.
func clientCreds(t *testing.T, caFile string, kp *tlsconfigtest.KeyPair) credentials.TransportCredentials {
	t.Helper()
	var certFile, keyFile string
	if kp != nil {
		certFile, keyFile = kp.CertFile, kp.KeyFile
	}
	creds, err := tlsconfig.Client(caFile, certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// tls12Creds trusts caFile but speaks at most TLS 1.2.
func tls12Creds(t *testing.T, caFile string) credentials.TransportCredentials {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
}

func TestTLS(t *testing.T) {
	t.Parallel()
	serverCA, otherCA := tlsconfigtest.NewCA(t, "server CA"), tlsconfigtest.NewCA(t, "other CA")
	srv := serverCA.Server(t)
	ts := start(t, serve.Config{TLSCertFile: srv.CertFile, TLSKeyFile: srv.KeyFile})

	tests := []struct {
		name  string
		creds credentials.TransportCredentials
		want  codes.Code
	}{
		{"client trusting the CA", clientCreds(t, serverCA.File, nil), codes.OK},
		{"plaintext client", insecure.NewCredentials(), codes.Unavailable},
		{"client trusting another CA", clientCreds(t, otherCA.File, nil), codes.Unavailable},
		{"TLS 1.2 client", tls12Creds(t, serverCA.File), codes.Unavailable},
		{"client trusting the CA, after the rejections", clientCreds(t, serverCA.File, nil), codes.OK},
	}
	// In order: the last case shows the server still serves.
	for _, tt := range tests {
		client := testgrpc.NewTestServiceClient(dialCreds(t, ts.GRPCAddr(), tt.creds))
		_, err := client.EmptyCall(testContext(t), &testgrpc.Empty{})
		if got := status.Code(err); got != tt.want {
			t.Errorf("%s: code %v (%v), want %v", tt.name, got, err, tt.want)
		}
	}
	// The admin port stays plaintext HTTP for probes and scrapes.
	if code, _ := httpGet(t, ts.AdminAddr(), "/readyz"); code != http.StatusOK {
		t.Errorf("plaintext /readyz = %d, want 200", code)
	}
	if !strings.Contains(ts.logs.String(), `"grpc_transport":"tls"`) {
		t.Errorf("serving log line does not say TLS:\n%s", ts.logs)
	}
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	serverCA, clientCA, otherCA := tlsconfigtest.NewCA(t, "server CA"), tlsconfigtest.NewCA(t, "client CA"), tlsconfigtest.NewCA(t, "other CA")
	srv := serverCA.Server(t)
	good := clientCA.Client(t, "catalogsvc")
	foreign := otherCA.Client(t, "catalogsvc")
	wrongCA := serverCA.Client(t, "catalogsvc") // trusted for servers, not for clients
	ts := start(t, serve.Config{TLSCertFile: srv.CertFile, TLSKeyFile: srv.KeyFile, TLSClientCAFile: clientCA.File})

	tests := []struct {
		name  string
		creds credentials.TransportCredentials
		want  codes.Code
	}{
		{"client certificate from the client CA", clientCreds(t, serverCA.File, &good), codes.OK},
		{"no client certificate", clientCreds(t, serverCA.File, nil), codes.Unavailable},
		{"client certificate from another CA", clientCreds(t, serverCA.File, &foreign), codes.Unavailable},
		{"client certificate from the server CA", clientCreds(t, serverCA.File, &wrongCA), codes.Unavailable},
		{"plaintext client", insecure.NewCredentials(), codes.Unavailable},
		{"good client, after the rejections", clientCreds(t, serverCA.File, &good), codes.OK},
	}
	for _, tt := range tests {
		client := testgrpc.NewTestServiceClient(dialCreds(t, ts.GRPCAddr(), tt.creds))
		_, err := client.EmptyCall(testContext(t), &testgrpc.Empty{})
		if got := status.Code(err); got != tt.want {
			t.Errorf("%s: code %v (%v), want %v", tt.name, got, err, tt.want)
		}
	}
	if !strings.Contains(ts.logs.String(), `"grpc_transport":"mtls"`) {
		t.Errorf("serving log line does not say mTLS:\n%s", ts.logs)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	ca := tlsconfigtest.NewCA(t, "CA")
	srv, other := ca.Server(t), ca.Server(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name                string
		cert, key, clientCA string
		wantErr             string
	}{
		{"cert without key", srv.CertFile, "", "", "--tls-cert needs --tls-key"},
		{"key without cert", "", srv.KeyFile, "", "--tls-key needs --tls-cert"},
		{"client CA without TLS", "", "", ca.File, "--tls-client-ca needs --tls-cert"},
		{"missing cert", missing, srv.KeyFile, "", missing},
		{"missing key", srv.CertFile, missing, "", missing},
		{"mismatched pair", srv.CertFile, other.KeyFile, "", "private key does not match"},
		{"missing client CA", srv.CertFile, srv.KeyFile, missing, missing},
		{"client CA not PEM", srv.CertFile, srv.KeyFile, srv.KeyFile, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := serve.Config{Name: "x", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
				TLSCertFile: tt.cert, TLSKeyFile: tt.key, TLSClientCAFile: tt.clientCA}
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
			if _, err := serve.New(cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

// Not parallel: t.Setenv.
func TestRegisterTLSFlags(t *testing.T) {
	t.Setenv("CATALOGSVC_TLS_CLIENT_CA", "/etc/tokencart/client-ca.crt")
	fs := flag.NewFlagSet("catalogsvc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg serve.Config
	serve.RegisterFlags(fs, &cfg, ":8082", ":9082")
	if err := envflag.Parse(fs, "catalogsvc", []string{"--tls-cert=/etc/tls/tls.crt", "--tls-key=/etc/tls/tls.key"}); err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCertFile != "/etc/tls/tls.crt" || cfg.TLSKeyFile != "/etc/tls/tls.key" || cfg.TLSClientCAFile != "/etc/tokencart/client-ca.crt" {
		t.Errorf("TLS fields = %q, %q, %q", cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile)
	}
}
