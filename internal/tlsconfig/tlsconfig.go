// Package tlsconfig builds the TLS configurations of tokencart's gRPC
// servers and of the clients that call them: TLS 1.3 only, trust from an
// explicit CA bundle (never the system roots), and optional mutual TLS for
// service-to-service calls.
//
// Certificates and keys are read from PEM files and re-read when either
// file's modification time or size changes (checked at each handshake), so
// a rotated Kubernetes Secret or cert-manager certificate is picked up by
// new connections without a restart. CA bundles are read once.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// Server returns a TLS 1.3-only server configuration presenting the
// certificate chain in certFile with the private key in keyFile. With a
// non-empty clientCAFile (a PEM bundle), every client must present a
// certificate that chains to one of its CAs (mutual TLS); otherwise client
// certificates are not requested.
//
// Errors name the file that could not be read or parsed, never its content.
func Server(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tlsconfig: a server needs both a certificate file and a key file")
	}
	kp, err := newKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	if clientCAFile != "" {
		pool, err := LoadPool(clientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client returns gRPC transport credentials for calling a TLS server (for
// catalogsvc calling authsvc, say). See [ClientConfig] for the arguments.
func Client(caFile, certFile, keyFile, serverName string) (credentials.TransportCredentials, error) {
	cfg, err := ClientConfig(caFile, certFile, keyFile, serverName)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// ClientConfig returns a TLS 1.3-only client configuration that trusts only
// the CAs in caFile (a PEM bundle; required). With certFile and keyFile
// (both or neither) it presents that certificate when the server asks for
// one (mutual TLS). serverName, if not empty, is the name the server's
// certificate must carry instead of the host of the address dialled.
func ClientConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	if caFile == "" {
		return nil, errors.New("tlsconfig: a CA file is required to verify the server")
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("tlsconfig: a client certificate needs both a certificate file and a key file")
	}
	pool, err := LoadPool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		ServerName: serverName,
	}
	if certFile != "" {
		kp, err := newKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// LoadPool reads a PEM bundle of CA certificates, for a certificate pool
// of roots or client CAs.
func LoadPool(file string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("tlsconfig: CA bundle %s holds no PEM certificate", file)
	}
	return pool, nil
}

// keyPair is a certificate and key loaded from files and reloaded when
// either file changes.
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex // guards cert and version
	cert    *tls.Certificate
	version [2]fileVersion // of certFile and keyFile when cert was loaded
}

// fileVersion identifies a file's content cheaply. Kubernetes updates
// mounted Secrets by swapping a symlink, which os.Stat follows.
type fileVersion struct {
	modTime time.Time
	size    int64
}

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	return kp, nil
}

// get returns the certificate, reloading it first if either file changed.
// If the reload fails, for instance because a rotation has replaced the
// certificate but not yet the key, it keeps the certificate it has and
// tries again at the next handshake.
func (kp *keyPair) get() (*tls.Certificate, error) {
	version, err := kp.stat()
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if kp.cert != nil && (err != nil || version == kp.version) {
		return kp.cert, nil
	}
	if err != nil {
		return nil, err
	}
	cert, err := loadKeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		if kp.cert != nil {
			return kp.cert, nil
		}
		return nil, err
	}
	kp.cert, kp.version = cert, version
	return cert, nil
}

func (kp *keyPair) stat() ([2]fileVersion, error) {
	var v [2]fileVersion
	for i, f := range []string{kp.certFile, kp.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return v, fmt.Errorf("tlsconfig: %w", err)
		}
		v[i] = fileVersion{fi.ModTime(), fi.Size()}
	}
	return v, nil
}

func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: read key: %w", err)
	}
	// X509KeyPair's errors describe the problem, not the key material.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &cert, nil
}
