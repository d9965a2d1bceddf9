package tlsconfig_test

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokencart/tokencart/internal/tlsconfig"
	"github.com/tokencart/tokencart/internal/tlsconfig/tlsconfigtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRejectsBadFiles(t *testing.T) {
	t.Parallel()
	ca := tlsconfigtest.NewCA(t, "test CA")
	srv, other := ca.Server(t), ca.Client(t, "other")
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		build   func() error
		wantErr string // a substring of the error
	}{
		{"server without key", func() error { _, err := tlsconfig.Server(srv.CertFile, "", ""); return err }, "key file"},
		{"server without cert", func() error { _, err := tlsconfig.Server("", srv.KeyFile, ""); return err }, "certificate file"},
		{"server cert missing", func() error { _, err := tlsconfig.Server(missing, srv.KeyFile, ""); return err }, missing},
		{"server key missing", func() error { _, err := tlsconfig.Server(srv.CertFile, missing, ""); return err }, missing},
		{"server cert not PEM", func() error { _, err := tlsconfig.Server(garbage, srv.KeyFile, ""); return err }, garbage},
		{"server key of another cert", func() error { _, err := tlsconfig.Server(srv.CertFile, other.KeyFile, ""); return err }, srv.CertFile},
		{"client CA missing", func() error { _, err := tlsconfig.Server(srv.CertFile, srv.KeyFile, missing); return err }, missing},
		{"client CA not PEM", func() error { _, err := tlsconfig.Server(srv.CertFile, srv.KeyFile, garbage); return err }, garbage},
		{"client without CA", func() error { _, err := tlsconfig.Client("", "", "", ""); return err }, "CA file is required"},
		{"client CA missing", func() error { _, err := tlsconfig.Client(missing, "", "", ""); return err }, missing},
		{"client cert without key", func() error { _, err := tlsconfig.Client(ca.File, other.CertFile, "", ""); return err }, "key file"},
		{"client key without cert", func() error { _, err := tlsconfig.Client(ca.File, "", other.KeyFile, ""); return err }, "certificate file"},
		{"client key missing", func() error { _, err := tlsconfig.Client(ca.File, other.CertFile, missing, ""); return err }, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.build()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), string(keyPEM[30:60])) {
				t.Errorf("error carries key material: %v", err)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	t.Parallel()
	ca := tlsconfigtest.NewCA(t, "test CA")
	srv := ca.Server(t)
	s, err := tlsconfig.Server(srv.CertFile, srv.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tlsconfig.ClientConfig(ca.File, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.MinVersion != tls.VersionTLS13 || c.MinVersion != tls.VersionTLS13 {
		t.Errorf("MinVersion server %x client %x, want TLS 1.3", s.MinVersion, c.MinVersion)
	}
	if s.ClientAuth != tls.NoClientCert {
		t.Errorf("ClientAuth = %v without a client CA, want NoClientCert", s.ClientAuth)
	}
	m, err := tlsconfig.Server(srv.CertFile, srv.KeyFile, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	if m.ClientAuth != tls.RequireAndVerifyClientCert || m.ClientCAs == nil {
		t.Errorf("ClientAuth = %v with a client CA, want RequireAndVerifyClientCert", m.ClientAuth)
	}
}

// listen serves cfg on 127.0.0.1:0 until the test ends; each connection
// completes its handshake and is closed.
func listen(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_ = c.(*tls.Conn).Handshake()
			_, _ = io.Copy(io.Discard, c) // until the client closes
			c.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

// servedSerial returns the serial number of the certificate the server at
// addr presents.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// replace copies src over dst and moves its modification time forward, as
// a rotation would.
func replace(t *testing.T, src, dst string, age time.Duration) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Filesystems with coarse timestamps could otherwise leave the
	// modification time unchanged.
	mt := time.Now().Add(age)
	if err := os.Chtimes(dst, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func TestServerReloadsRotatedCertificate(t *testing.T) {
	t.Parallel()
	ca := tlsconfigtest.NewCA(t, "test CA")
	first, second := ca.Server(t), ca.Server(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	replace(t, first.CertFile, certFile, 0)
	replace(t, first.KeyFile, keyFile, 0)

	cfg, err := tlsconfig.Server(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := listen(t, cfg)
	client, err := tlsconfig.ClientConfig(ca.File, "", "", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := servedSerial(t, addr, client), first.Cert.SerialNumber.String(); got != want {
		t.Fatalf("served serial %s, want the first certificate's %s", got, want)
	}

	// Half-way through a rotation the pair does not match: the server
	// keeps the certificate it has.
	replace(t, second.CertFile, certFile, time.Minute)
	if got, want := servedSerial(t, addr, client), first.Cert.SerialNumber.String(); got != want {
		t.Fatalf("mid-rotation served serial %s, want the first certificate's %s", got, want)
	}

	replace(t, second.KeyFile, keyFile, time.Minute)
	if got, want := servedSerial(t, addr, client), second.Cert.SerialNumber.String(); got != want {
		t.Fatalf("after rotation served serial %s, want the second certificate's %s", got, want)
	}

	// Files gone (a broken mount): keep serving the last good pair.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if got, want := servedSerial(t, addr, client), second.Cert.SerialNumber.String(); got != want {
		t.Fatalf("with the files gone served serial %s, want the second certificate's %s", got, want)
	}
}

func TestClientServerName(t *testing.T) {
	t.Parallel()
	ca := tlsconfigtest.NewCA(t, "test CA")
	srv := ca.Server(t)
	cfg, err := tlsconfig.Server(srv.CertFile, srv.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := listen(t, cfg)
	tests := []struct {
		serverName string
		wantOK     bool
	}{
		{"", true}, // the dialled host, 127.0.0.1, is in the certificate
		{"localhost", true},
		{"authsvc.tokencart.svc", false},
	}
	for _, tt := range tests {
		client, err := tlsconfig.ClientConfig(ca.File, "", "", tt.serverName)
		if err != nil {
			t.Fatal(err)
		}
		d := &tls.Dialer{Config: client}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		if (err == nil) != tt.wantOK {
			t.Errorf("server name %q: dial error %v, want success %v", tt.serverName, err, tt.wantOK)
		}
	}
}
