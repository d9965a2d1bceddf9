package authsvc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

// reply is an HTTP response, its body read.
type reply struct {
	StatusCode int
	Status     string
	Header     http.Header
}

// get fetches url with the given If-None-Match (none when empty).
func get(t *testing.T, url, ifNoneMatch string) (reply, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header}, body
}

// TestDiscoveryDocument: the public listener serves an OpenID Connect
// discovery document that names the issuer and the JWKS and lists only
// what exists; each document is cacheable for --jwks-max-age and
// revalidates with its ETag; neither is on the admin port any more.
func TestDiscoveryDocument(t *testing.T) {
	t.Parallel()
	s := authsvctest.Start(t, authsvctest.Options{Discoverable: true, Configure: func(c *authsvc.Config) {
		c.JWKSMaxAge = 90 * time.Second
		c.KeyPublishDelay = 91 * time.Second
	}})
	resp, body := get(t, s.DiscoveryURL(), "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s %s", s.DiscoveryURL(), resp.Status, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("discovery document %s: %v", body, err)
	}
	want := map[string]any{
		"issuer":                                s.Config.Issuer,
		"jwks_uri":                              s.Config.Issuer + authsvc.JWKSPath,
		"id_token_signing_alg_values_supported": []any{"EdDSA"},
		"subject_types_supported":               []any{"public"},
	}
	for k, v := range want {
		got, _ := json.Marshal(doc[k])
		w, _ := json.Marshal(v)
		if string(got) != string(w) {
			t.Errorf("%s = %s, want %s", k, got, w)
		}
	}
	if doc["jwks_uri"] != s.JWKSURL() {
		t.Errorf("jwks_uri %v is not where the key set is served (%s)", doc["jwks_uri"], s.JWKSURL())
	}
	// Endpoints that do not exist are not advertised: tokens come from gRPC.
	for _, absent := range []string{"token_endpoint", "authorization_endpoint", "userinfo_endpoint", "response_types_supported"} {
		if _, ok := doc[absent]; ok {
			t.Errorf("discovery document advertises %s", absent)
		}
	}
	claims, _ := doc["claims_supported"].([]any)
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id"} {
		if !strings.Contains(string(body), `"`+c+`"`) || len(claims) == 0 {
			t.Errorf("claims_supported %v lacks %s", claims, c)
		}
	}

	for _, url := range []string{s.DiscoveryURL(), s.JWKSURL()} {
		t.Run(url, func(t *testing.T) {
			resp, body := get(t, url, "")
			tag := resp.Header.Get("ETag")
			if resp.StatusCode != http.StatusOK || len(tag) < 10 || !strings.HasPrefix(tag, `"`) {
				t.Fatalf("GET: %s, ETag %q", resp.Status, tag)
			}
			if got := resp.Header.Get("Cache-Control"); got != "public, max-age=90" {
				t.Errorf("Cache-Control %q, want public, max-age=90 (--jwks-max-age)", got)
			}
			tests := []struct {
				name        string
				ifNoneMatch string
				want        int
			}{
				{"same ETag", tag, http.StatusNotModified},
				{"one of several", `"other", ` + tag, http.StatusNotModified},
				{"any", "*", http.StatusNotModified},
				{"other ETag", `"other"`, http.StatusOK},
			}
			for _, tt := range tests {
				r, b := get(t, url, tt.ifNoneMatch)
				if r.StatusCode != tt.want {
					t.Errorf("%s: %s, want %d", tt.name, r.Status, tt.want)
				}
				if tt.want == http.StatusNotModified && len(b) != 0 {
					t.Errorf("%s: 304 with a %d-byte body", tt.name, len(b))
				}
				if tt.want == http.StatusOK && string(b) != string(body) {
					t.Errorf("%s: body differs", tt.name)
				}
			}
			if r, _ := get(t, "http://"+s.AdminAddr+strings.TrimPrefix(url, "http://"+s.PublicAddr), ""); r.StatusCode != http.StatusNotFound {
				t.Errorf("admin port serves it too: %s", r.Status)
			}
		})
	}
}

// TestJWKSETagFollowsRotation: a consumer that revalidates with its ETag
// gets the new key set (200) once a rotation publishes a key, and 304
// while nothing changed.
func TestJWKSETagFollowsRotation(t *testing.T) {
	t.Parallel()
	s := authsvctest.Start(t, authsvctest.Options{})
	resp, before := get(t, s.JWKSURL(), "")
	tag := resp.Header.Get("ETag")
	if r, _ := get(t, s.JWKSURL(), tag); r.StatusCode != http.StatusNotModified {
		t.Fatalf("unchanged key set: %s, want 304", r.Status)
	}
	rot, err := s.Client.RotateSigningKey(authsvctest.WithToken(t.Context(), s.AdminToken(t)), &authv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	expect.Eventually(t, 5*time.Second, "the new key in the JWKS", func() bool {
		r, body := get(t, s.JWKSURL(), tag)
		return r.StatusCode == http.StatusOK && strings.Contains(string(body), rot.GetKeyId()) && string(body) != string(before) &&
			r.Header.Get("ETag") != tag
	})
}

// TestIssuerWithPath: an issuer with a path has its documents under that
// path (where consumers look, {issuer}/.well-known/...) and at the root
// (for a gateway that strips the path).
func TestIssuerWithPath(t *testing.T) {
	t.Parallel()
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.Issuer = "https://auth.example.com/tenants/a" }})
	for _, path := range []string{"/tenants/a" + authsvc.DiscoveryPath, authsvc.DiscoveryPath, "/tenants/a" + authsvc.JWKSPath, authsvc.JWKSPath} {
		r, body := get(t, "http://"+s.PublicAddr+path, "")
		if r.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, r.Status)
		}
		if strings.HasSuffix(path, authsvc.DiscoveryPath) && !strings.Contains(string(body), `"jwks_uri":"https://auth.example.com/tenants/a/.well-known/jwks.json"`) {
			t.Errorf("GET %s: %s", path, body)
		}
	}
}

// TestAccessTokenClaims: Login and RefreshToken issue RFC 9068 access
// tokens: typ at+jwt and every claim it requires, with auth_time the
// login's time across refreshes.
func TestAccessTokenClaims(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.Now = clk.Now }})
	email := "rfc9068@authtest.example"
	s.Register(t, email)
	login := s.Login(t, email)
	clk.Advance(time.Minute)
	refreshed, err := s.Client.RefreshToken(t.Context(), &authv1.RefreshTokenRequest{RefreshToken: login.GetRefreshToken()})
	if err != nil {
		t.Fatal(err)
	}
	decode := func(seg string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(b64d(t, seg), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	var authTimes []float64
	for name, raw := range map[string]string{"login": login.GetAccessToken(), "refresh": refreshed.GetAccessToken()} {
		parts := strings.Split(raw, ".")
		hdr, claims := decode(parts[0]), decode(parts[1])
		if hdr["typ"] != "at+jwt" || hdr["alg"] != "EdDSA" || hdr["kid"] == "" {
			t.Errorf("%s: header %v", name, hdr)
		}
		for _, c := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti", "auth_time", "sid"} {
			if _, ok := claims[c]; !ok {
				t.Errorf("%s: no %s claim in %v", name, c, claims)
			}
		}
		if claims["iss"] != s.Config.Issuer || claims["client_id"] != s.Config.ClientID {
			t.Errorf("%s: iss %v, client_id %v; want %s, %s", name, claims["iss"], claims["client_id"], s.Config.Issuer, s.Config.ClientID)
		}
		at, _ := claims["auth_time"].(float64)
		iat, _ := claims["iat"].(float64)
		if at > iat || (name == "refresh" && at == iat) {
			t.Errorf("%s: auth_time %v, iat %v: want the login's time", name, at, iat)
		}
		authTimes = append(authTimes, at)
		v, err := token.NewVerifier(token.VerifierConfig{Issuer: s.Config.Issuer, Audience: s.Config.Audience, Keys: s.KeySet(t), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(raw)
		if err != nil || c.ClientID != s.Config.ClientID || c.AuthTime.Unix() != int64(at) {
			t.Errorf("%s: Verify = %+v, %v", name, c, err)
		}
	}
	if authTimes[0] != authTimes[1] {
		t.Errorf("auth_time %v at login, %v after refresh: want the login's time in both", authTimes[0], authTimes[1])
	}
}
