package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// introspection is the part of an RFC 7662 answer this service checks.
type introspection struct {
	Active bool   `json:"active"`
	Iss    string `json:"iss"`
	Sub    string `json:"sub"`
}

// introspect asks the issuer's introspection endpoint (RFC 7662) whether
// raw, a verified token of subject sub, is active, authenticating with
// client_secret_basic. It returns nil if active, ErrInactive if not (or if
// the answer names another issuer or subject), ErrUnavailable if the
// endpoint cannot answer.
func (i *Issuer) introspect(ctx context.Context, raw, sub string) error {
	endpoint := i.introspectURL.Load()
	if endpoint == nil {
		return fmt.Errorf("%w: no introspection endpoint from discovery yet", ErrUnavailable)
	}
	in := i.cfg.Introspection
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749, section 2.3.1: both parts form-encoded, then Basic.
	req.SetBasicAuth(url.QueryEscape(in.ClientID), url.QueryEscape(in.secret))
	resp, err := i.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: introspection: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp, maxIntrospectSize)
	if err != nil {
		return fmt.Errorf("%w: introspection: %w", ErrUnavailable, err)
	}
	var ans introspection
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("%w: introspection: %w", ErrUnavailable, err)
	}
	if !ans.Active || (ans.Iss != "" && ans.Iss != i.cfg.Issuer) || (ans.Sub != "" && ans.Sub != sub) {
		return ErrInactive
	}
	return nil
}
