package authsvc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/token"
)

// TestEndToEnd walks authsvc's main scenario on two replicas sharing a
// store: register, log in, verify the token with the published key set, use
// it, log out, and see it inactive on both replicas and revoked on the
// second replica's revocation feed.
func TestEndToEnd(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		a, b := startPair(t, dsn, nil)
		ctx := t.Context()
		feed := watch(t, b, "")
		feed.syncUp(t)

		reg, err := a.Client.Register(ctx, &authv1.RegisterRequest{Email: "  Alice@Example.COM ", Password: "pässwörd-1"})
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		if reg.GetUser().GetEmail() != "alice@example.com" || !slices.Equal(reg.GetUser().GetRoles(), []string{token.RoleCustomer}) {
			t.Errorf("registered %v", reg.GetUser())
		}
		login, err := b.Client.Login(ctx, &authv1.LoginRequest{Email: "alice@example.com", Password: "pässwörd-1"})
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		if login.GetTokenType() != "Bearer" || login.GetRefreshToken() == "" ||
			!login.GetAccessTokenExpireTime().AsTime().After(time.Now().Add(50*time.Minute)) {
			t.Errorf("login response %v", login)
		}

		// The token verifies with the key set published by either replica,
		// over gRPC and over HTTP.
		claims, err := a.Verifier(t, a.KeySet(t)).Verify(login.GetAccessToken())
		if err != nil {
			t.Fatalf("token does not verify with the published key set: %v", err)
		}
		httpKeys := fetchJWKS(t, b)
		if _, err := b.Verifier(t, httpKeys).Verify(login.GetAccessToken()); err != nil {
			t.Errorf("token does not verify with the HTTP JWKS: %v", err)
		}
		if claims.Subject != reg.GetUser().GetId() || !claims.HasRole(token.RoleCustomer) || len(claims.TokenID) < 22 {
			t.Errorf("claims %+v", claims)
		}

		authed := authsvctest.WithToken(ctx, login.GetAccessToken())
		me, err := a.Client.GetMe(authed, &authv1.GetMeRequest{})
		if err != nil {
			t.Fatalf("GetMe: %v", err)
		}
		if !proto.Equal(me.GetUser(), reg.GetUser()) {
			t.Errorf("GetMe user = %v, want %v", me.GetUser(), reg.GetUser())
		}
		intro, err := b.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: login.GetAccessToken()})
		if err != nil || !intro.GetActive() || intro.GetSubject() != claims.Subject || intro.GetTokenId() != claims.TokenID ||
			intro.GetIssuer() != a.Config.Issuer || !slices.Equal(intro.GetAudience(), []string{a.Config.Audience}) ||
			intro.GetTokenType() != "Bearer" || !intro.GetExpireTime().AsTime().Equal(claims.Expiry.Truncate(time.Second)) {
			t.Errorf("IntrospectToken = %v, %v", intro, err)
		}

		if _, err := a.Client.Logout(authed, &authv1.LogoutRequest{}); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		for name, s := range map[string]*authsvctest.Server{"a": a, "b": b} {
			intro, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: login.GetAccessToken()})
			if err != nil || !proto.Equal(intro, &authv1.IntrospectTokenResponse{}) {
				t.Errorf("replica %s: IntrospectToken after logout = %v, %v; want only active=false", name, intro, err)
			}
			_, err = s.Client.GetMe(authed, &authv1.GetMeRequest{})
			expect.Code(t, "GetMe after logout on replica "+name, err, codes.Unauthenticated)
		}
		r := feed.waitFor(t, claims, 5*time.Second)
		if r.GetSubject() != claims.Subject || !r.GetExpireTime().AsTime().Equal(claims.Expiry) {
			t.Errorf("revocation %v, want subject %s, expiry %v", r, claims.Subject, claims.Expiry)
		}
	})
}

func fetchJWKS(t *testing.T, s *authsvctest.Server) *token.KeySet {
	t.Helper()
	resp, err := http.Get(s.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Errorf("GET %s: %s, headers %v", s.JWKSURL(), resp.Status, resp.Header)
	}
	grpcDoc, err := s.Client.GetKeySet(t.Context(), &authv1.GetKeySetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != grpcDoc.GetJwksJson() {
		t.Errorf("HTTP JWKS %s differs from GetKeySet's %s", body, grpcDoc.GetJwksJson())
	}
	ks, err := token.ParseKeySet(body)
	if err != nil {
		t.Fatalf("parse JWKS: %v", err)
	}
	return ks
}

// TestForgedTokensRefused presents forgeries at GetMe and IntrospectToken.
// The server runs without a key-encryption key so that the test can read
// the signing key from the store and forge tokens that are signed
// correctly but wrong in one other way.
func TestForgedTokensRefused(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.KeyEncryptionKey = "" }})
	ctx := t.Context()
	_, good := s.NewCustomer(t)
	keys, _, err := s.Store.SigningKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Encryption != "none" {
		t.Fatalf("signing keys %v, %v", keys, err)
	}
	priv := ed25519.NewKeyFromSeed(keys[0].PrivateKey)
	kid := keys[0].ID
	other, _ := token.GenerateSigningKey()

	parts := strings.Split(good, ".")
	var payload map[string]any
	if err := json.Unmarshal(b64d(t, parts[1]), &payload); err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{"alg": "EdDSA", "typ": token.Type, "kid": kid}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range m {
			out[kk] = vv
		}
		out[k] = v
		return out
	}
	now := time.Now()
	hsInput := b64e(with(hdr, "alg", "HS256")) + "." + parts[1]
	mac := hmac.New(sha256.New, priv.Public().(ed25519.PublicKey))
	mac.Write([]byte(hsInput))
	tampered := with(payload, "roles", []string{token.RoleAdmin})

	tests := []struct {
		name, raw string
	}{
		{"alg none", b64e(with(hdr, "alg", "none")) + "." + parts[1] + "."},
		{"HS256 keyed with our public key", hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))},
		{"unknown kid", sign(other.Private, with(hdr, "kid", other.ID), payload)},
		{"our kid, another key", sign(other.Private, hdr, payload)},
		{"wrong iss", sign(priv, hdr, with(payload, "iss", "https://evil.example"))},
		{"wrong aud", sign(priv, hdr, with(payload, "aud", []string{"other"}))},
		{"expired beyond leeway", sign(priv, hdr, with(with(payload, "iat", now.Add(-2*time.Hour).Unix()), "exp", now.Add(-time.Minute).Unix()))},
		{"nbf in the future", sign(priv, hdr, with(payload, "nbf", now.Add(5*time.Minute).Unix()))},
		{"tampered payload", parts[0] + "." + b64e(tampered) + "." + parts[2]},
		// Over token.MaxSize, within the transport's metadata limit
		// (serve.MaxHeaderListSize; larger is refused before any
		// interceptor, see internal/serve's TestHeaderListLimit).
		{"12 KiB token", strings.Repeat("A", 12<<10)},
		{"12 KiB token with dots", parts[0] + "." + strings.Repeat("A", 12<<10) + "." + parts[2]},
		{"empty", ""},
	}
	// Sanity: the forging machinery makes acceptable tokens when nothing is wrong.
	if _, err := s.Client.GetMe(authsvctest.WithToken(ctx, sign(priv, hdr, payload)), &authv1.GetMeRequest{}); err != nil {
		t.Fatalf("re-signed good token refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Client.GetMe(authsvctest.WithToken(ctx, tt.raw), &authv1.GetMeRequest{})
			expect.Code(t, "GetMe", err, codes.Unauthenticated)
			resp, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: tt.raw})
			if err != nil || !proto.Equal(resp, &authv1.IntrospectTokenResponse{}) {
				t.Errorf("IntrospectToken = %v, %v; want only active=false", resp, err)
			}
		})
	}
	_, err = s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: strings.Repeat("A", 1<<20)})
	expect.Code(t, "IntrospectToken of a 1 MiB token", err, codes.ResourceExhausted)
}

func b64e(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func b64d(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(key ed25519.PrivateKey, hdr, payload any) string {
	input := b64e(hdr) + "." + b64e(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}

// TestEveryMethodAuthenticatedOrPublic calls every method of every service
// in auth.proto without credentials on a real server: a method not in
// PublicMethods must answer Unauthenticated, and must not with the
// credential it needs (a service credential for ServiceMethods, a valid
// token for the others), which proves the refusal came from
// authentication. A service method refuses a user's token (an admin's
// included), and a user method a service credential. A method added to the
// proto is covered without touching this test.
func TestEveryMethodAuthenticatedOrPublic(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{})
	services := authv1.File_tokencart_auth_v1_auth_proto.Services()
	seen := map[string]bool{}
	withCredential := metadata.AppendToOutgoingContext(t.Context(), grpcauth.ServiceCredentialHeader, authsvctest.TestServiceCredential)
	for i := range services.Len() {
		sd := services.Get(i)
		for j := range sd.Methods().Len() {
			md := sd.Methods().Get(j)
			name := "/" + string(sd.FullName()) + "/" + string(md.Name())
			seen[name] = true
			if slices.Contains(authsvc.PublicMethods, name) {
				continue
			}
			t.Run(string(md.Name()), func(t *testing.T) {
				expect.Code(t, "without credentials", invoke(t, s.Conn, t.Context(), name, md), codes.Unauthenticated)
				admin := authsvctest.WithToken(t.Context(), s.AdminToken(t)) // fresh: Logout revokes it
				service := slices.Contains(authsvc.ServiceMethods, name)
				if err := invoke(t, s.Conn, admin, name, md); (status.Code(err) == codes.Unauthenticated) != service {
					t.Errorf("with an admin token (service method %v): %v", service, err)
				}
				if err := invoke(t, s.Conn, withCredential, name, md); (status.Code(err) == codes.Unauthenticated) == service {
					t.Errorf("with a service credential (service method %v): %v", service, err)
				}
			})
		}
	}
	for _, m := range append(slices.Clone(authsvc.PublicMethods), authsvc.ServiceMethods...) {
		if !seen[m] {
			t.Errorf("method %s is not in auth.proto", m)
		}
	}
}

// invoke calls method with an empty request, unary or server-streaming,
// and returns the call's error.
func invoke(t *testing.T, conn *grpc.ClientConn, ctx context.Context, name string, md protoreflect.MethodDescriptor) error {
	t.Helper()
	in, out := dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output())
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return conn.Invoke(ctx, name, in, out)
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: md.IsStreamingServer(), ClientStreams: md.IsStreamingClient()}, name)
	if err != nil {
		return err
	}
	if err := stream.SendMsg(in); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return stream.RecvMsg(out)
}
