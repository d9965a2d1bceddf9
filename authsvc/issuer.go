package authsvc

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// issuerURL parses and checks Issuer: an absolute https URL with no query,
// fragment or user info, and no trailing slash (tokens carry it verbatim,
// and consumers compare it byte for byte with the discovery document's
// issuer, RFC 8414 section 3.3), or an http URL of a loopback host, or of
// any host with IssuerAllowHTTP.
func (c *Config) issuerURL() (*url.URL, error) {
	u, err := url.Parse(c.Issuer)
	bad := func(why string) error {
		return fmt.Errorf("--issuer %q %s", c.Issuer, why)
	}
	switch {
	case c.Issuer == "":
		return nil, errors.New("--issuer is required: the URL of the public listener, e.g. https://auth.example.com")
	case err != nil:
		return nil, bad("is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, bad("must be an https URL, e.g. https://auth.example.com")
	case u.Host == "" || u.Opaque != "":
		return nil, bad("must be an absolute URL with a host")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(c.Issuer, "#"):
		return nil, bad("must have no user info, query or fragment (RFC 8414)")
	case strings.HasSuffix(u.Path, "/"):
		return nil, bad("must not end with /")
	case u.Scheme == "http" && !c.IssuerAllowHTTP && !loopbackHost(u.Hostname()):
		return nil, bad("must be https: http only for a loopback host, or with --issuer-allow-http")
	}
	return u, nil
}

// loopbackHost reports whether host names the local machine.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
