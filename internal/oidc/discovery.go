package oidc

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// discoveryPath is appended to an issuer to find its OpenID Provider
// configuration (OpenID Connect Discovery 1.0, section 4).
const discoveryPath = "/.well-known/openid-configuration"

// discovery is the part of a discovery document this service uses.
type discovery struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// discover fetches issuer's discovery document and checks it: its issuer
// must be exactly the configured one (section 4.3), and jwks_uri (and the
// introspection endpoint, if any) https URLs.
func discover(ctx context.Context, c *http.Client, issuer string) (discovery, error) {
	var d discovery
	if err := getJSON(ctx, c, strings.TrimSuffix(issuer, "/")+discoveryPath, maxDiscoverySize, &d); err != nil {
		return discovery{}, fmt.Errorf("discovery: %w", err)
	}
	if d.Issuer != issuer {
		return discovery{}, fmt.Errorf("discovery: document names issuer %q, want %q", d.Issuer, issuer)
	}
	if err := checkHTTPS(d.JWKSURI); err != nil && d.JWKSURI != "" {
		return discovery{}, fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	if d.JWKSURI == "" {
		return discovery{}, fmt.Errorf("discovery: no jwks_uri")
	}
	if d.IntrospectionEndpoint != "" {
		if err := checkHTTPS(d.IntrospectionEndpoint); err != nil {
			return discovery{}, fmt.Errorf("discovery: introspection_endpoint: %w", err)
		}
	}
	return d, nil
}
