package authsvc

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The public listener's documents, under the issuer's path.
const (
	// DiscoveryPath is the OpenID Connect discovery document (OpenID
	// Connect Discovery 1.0, section 4; RFC 8414 metadata).
	DiscoveryPath = "/.well-known/openid-configuration"
	// JWKSPath is the key set, as GetKeySet returns it (RFC 7517).
	JWKSPath = "/.well-known/jwks.json"
)

// discovery is the metadata authsvc publishes. It lists what is true of
// authsvc and nothing more: authsvc issues access tokens over gRPC (Login,
// RefreshToken), not through OAuth's HTTP endpoints, so there is no
// authorization_endpoint or token_endpoint (an OAuth client would try to
// use them) and no response or grant types. The OpenID Connect fields
// that describe signatures are filled in because discovery clients
// (go-oidc, Spring, ASP.NET) take the algorithm allow-list from them,
// though authsvc issues no ID tokens.
type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
	// IDTokenSigningAlgs: the one algorithm of every token authsvc signs.
	IDTokenSigningAlgs []string `json:"id_token_signing_alg_values_supported"`
	// SubjectTypes: sub is the same account id for every client.
	SubjectTypes []string `json:"subject_types_supported"`
	// Claims are the claims of authsvc's access tokens (RFC 9068).
	Claims []string `json:"claims_supported"`
}

// publicDocuments serves the discovery document and the JWKS on the public
// listener, at the root and, when the issuer has a path, under it too
// (so a gateway may pass the path on or strip it).
type publicDocuments struct {
	discovery []byte
	jwks      func() []byte
	maxAge    time.Duration
}

// newPublicHandler returns the handler of the public listener.
func (s *Service) newPublicHandler() (http.Handler, error) {
	iss, err := s.cfg.issuerURL()
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(discovery{
		Issuer:             s.cfg.Issuer,
		JWKSURI:            s.cfg.Issuer + JWKSPath,
		IDTokenSigningAlgs: []string{string(jose.EdDSA)},
		SubjectTypes:       []string{"public"},
		Claims:             []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "auth_time", "sid", "roles"},
	})
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	d := &publicDocuments{discovery: doc, jwks: s.keys.jwks, maxAge: s.cfg.JWKSMaxAge}
	mux := http.NewServeMux()
	prefixes := []string{""}
	if p := iss.EscapedPath(); p != "" {
		prefixes = append(prefixes, p)
	}
	for _, prefix := range prefixes {
		mux.HandleFunc("GET "+prefix+DiscoveryPath, d.serveDiscovery)
		mux.HandleFunc("GET "+prefix+JWKSPath, d.serveJWKS)
	}
	return mux, nil
}

func (d *publicDocuments) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	d.serve(w, r, d.discovery)
}

func (d *publicDocuments) serveJWKS(w http.ResponseWriter, r *http.Request) {
	d.serve(w, r, d.jwks())
}

// serve answers with doc, cacheable for maxAge (the lifetime rotation is
// timed against), with a strong ETag of its contents so that a consumer's
// revalidation (If-None-Match) costs a 304 and no body.
func (d *publicDocuments) serve(w http.ResponseWriter, r *http.Request, doc []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(math.Ceil(d.maxAge.Seconds()))))
	h.Set("ETag", etag(doc))
	h.Set("X-Content-Type-Options", "nosniff")
	// Public documents: browsers' JOSE libraries may fetch them from any
	// origin.
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(doc))
}

// etag is a strong entity tag of doc: 128 bits of its SHA-256.
func etag(doc []byte) string {
	sum := sha256.Sum256(doc)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}
