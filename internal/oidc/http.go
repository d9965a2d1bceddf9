package oidc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"
)

// Bounds of the HTTP calls to issuers.
const (
	fetchTimeout      = 5 * time.Second
	maxDiscoverySize  = 64 << 10
	maxIntrospectSize = 64 << 10
	maxRedirects      = 3
)

// newHTTPClient returns the client every issuer call uses: HTTPS only,
// trusting roots (nil: the system's), with bounded times.
func newHTTPClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   fetchTimeout,
			ResponseHeaderTimeout: fetchTimeout,
			IdleConnTimeout:       time.Minute,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		},
		Timeout: 2 * fetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %q: only https is followed", req.URL.Redacted())
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			return nil
		},
	}
}

// readBody reads resp's body, refusing one over limit bytes or a status
// other than 200 OK.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %s", resp.Request.URL.Redacted(), resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" &&
		mt != "application/json" && mt != "application/jwk-set+json" {
		return nil, fmt.Errorf("%s: content type %q, want JSON", resp.Request.URL.Redacted(), mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Request.URL.Redacted(), err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s: body exceeds %d bytes", resp.Request.URL.Redacted(), limit)
	}
	return body, nil
}

// getJSON fetches url into v, reading at most limit bytes.
func getJSON(ctx context.Context, c *http.Client, url string, limit int64, v any) error {
	body, err := get(ctx, c, url, limit)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return nil
}

// get fetches url's body, at most limit bytes.
func get(ctx context.Context, c *http.Client, url string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readBody(resp, limit)
}
