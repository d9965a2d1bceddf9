package main

import (
	"crypto/tls"
	"fmt"
	"io"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokencart/tokencart/internal/tlsconfig"
)

// tlsFlags choose how the CLI secures its calls: TLS verified against the
// system's CAs by default, or --tls-ca's; plaintext only with --plaintext.
type tlsFlags struct {
	plaintext          bool
	caFile, serverName string
	insecureSkipVerify bool
}

// credentials returns the transport credentials the flags ask for, and
// warns on warn when they do not verify the server.
func (f tlsFlags) credentials(warn io.Writer) (credentials.TransportCredentials, error) {
	switch {
	case f.plaintext && (f.caFile != "" || f.serverName != "" || f.insecureSkipVerify):
		return nil, usageError("--plaintext cannot be combined with --tls-ca, --tls-server-name or --insecure-skip-verify")
	case f.insecureSkipVerify && f.caFile != "":
		return nil, usageError("--insecure-skip-verify ignores --tls-ca: give one or the other")
	case f.plaintext:
		return insecure.NewCredentials(), nil
	case f.insecureSkipVerify:
		fmt.Fprintln(warn, "tokencartctl: WARNING: --insecure-skip-verify: the server's certificate is not checked; anyone on the network path can read and change these calls, passwords and tokens included")
		return credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, ServerName: f.serverName, InsecureSkipVerify: true}), nil //nolint:gosec // asked for by name, and warned about
	case f.caFile != "":
		return tlsconfig.Client(f.caFile, "", "", f.serverName)
	}
	return credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, ServerName: f.serverName}), nil
}
