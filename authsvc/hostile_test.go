package authsvc_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

// Sizes around the 1 MiB request limit (serve.Config.MaxRecvMsgSize): a
// field of exactly 1 MiB makes a message over it, refused by gRPC with
// ResourceExhausted before any handler runs; one of nearly 1 MiB reaches
// the handler.
const (
	mib       = 1 << 20
	nearlyMiB = mib - 1024
)

// hostileCase is one request a hostile client makes: the code it must get,
// and the login failures it may count. Nothing else in the store may change.
type hostileCase struct {
	name     string
	call     func(t *testing.T) error
	want     codes.Code
	failures int64
}

// TestHostileClients makes hostile and malformed requests to a real server
// over TCP, and checks for each the exact code and, with plain SQL, that
// the store holds the same rows afterwards (bar the failed-login counts
// that a refused login adds to on purpose). A few get OK on purpose, each
// saying why. Then it shows what becomes of the tokens of a demoted and of
// a deleted account.
func TestHostileClients(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		s := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) {
			// The failures below are counted, but must not throttle.
			c.LoginAccountLimit, c.LoginAccountTotalLimit = 1000, 1000
		}})
		probe := openProbe(t, dsn)
		ctx := t.Context()
		c := s.Client

		s.Register(t, "alice@example.com")
		s.Register(t, "bob@example.com")
		alice, bob := s.Login(t, "alice@example.com"), s.Login(t, "bob@example.com")
		asAlice, asBob := authsvctest.WithToken(ctx, alice.GetAccessToken()), authsvctest.WithToken(ctx, bob.GetAccessToken())
		revoked := s.Login(t, "alice@example.com").GetAccessToken()
		if _, err := c.RevokeToken(asAlice, &authv1.RevokeTokenRequest{Token: revoked}); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
		f := newForger(t, s, alice.GetAccessToken())
		other, err := token.GenerateSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		foreign := sign(other.Private, set(f.hdr, "kid", other.ID), f.payload) // well formed, not ours

		register := func(email, password string) func(*testing.T) error {
			return func(*testing.T) error {
				_, err := c.Register(ctx, &authv1.RegisterRequest{Email: email, Password: password})
				return err
			}
		}
		login := func(email, password string) func(*testing.T) error {
			return func(*testing.T) error {
				_, err := c.Login(ctx, &authv1.LoginRequest{Email: email, Password: password})
				return err
			}
		}
		raw := func(method string, fields ...string) func(*testing.T) error {
			return func(*testing.T) error { return invokeRaw(ctx, s.Conn, method, fields...) }
		}
		refresh := func(tok string) func(*testing.T) error {
			return func(*testing.T) error {
				_, err := c.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: tok})
				return err
			}
		}
		revoke := func(ctx context.Context, tok string) func(*testing.T) error {
			return func(*testing.T) error {
				_, err := c.RevokeToken(ctx, &authv1.RevokeTokenRequest{Token: tok})
				return err
			}
		}
		getMe := func(ctx context.Context) func(*testing.T) error {
			return func(*testing.T) error {
				_, err := c.GetMe(ctx, &authv1.GetMeRequest{})
				return err
			}
		}
		withAuth := func(values ...string) context.Context {
			md := metadata.MD{}
			for _, v := range values {
				md.Append("authorization", v)
			}
			return metadata.NewOutgoingContext(ctx, md)
		}
		watchFrom := func(cursor string) func(*testing.T) error {
			return func(*testing.T) error {
				stream, err := s.ServiceClient.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{Cursor: cursor})
				if err != nil {
					return err
				}
				_, err = stream.Recv()
				return err
			}
		}

		const ok = "valid-pass-1"
		// A failed login counts once for the account and address, once for
		// the account and once for the address.
		const failed = 3
		huge, nearly := strings.Repeat("a", mib), strings.Repeat("a", nearlyMiB)
		cases := []hostileCase{
			// Register: every refusal comes before the store is touched, or
			// (a taken email) from its unique index.
			{"Register/empty email", register("", ok), codes.InvalidArgument, 0},
			{"Register/not an email", register("not-an-email", ok), codes.InvalidArgument, 0},
			{"Register/display name", register("Mallory <mallory@example.com>", ok), codes.InvalidArgument, 0},
			{"Register/two addresses", register("a@example.com, b@example.com", ok), codes.InvalidArgument, 0},
			{"Register/255-byte email", register(strings.Repeat("a", 243)+"@example.com", ok), codes.InvalidArgument, 0},
			{"Register/NUL in email", register("mallory\x00@example.com", ok), codes.InvalidArgument, 0},
			{"Register/SQL in email", register("x');DROP TABLE users;--@example.com", ok), codes.InvalidArgument, 0},
			{"Register/SQL email with spaces", register("' OR 1=1 --", ok), codes.InvalidArgument, 0},
			{"Register/empty password", register("mallory@example.com", ""), codes.InvalidArgument, 0},
			{"Register/7-character password", register("mallory@example.com", "1234567"), codes.InvalidArgument, 0},
			{"Register/257-character password", register("mallory@example.com", strings.Repeat("p", 257)), codes.InvalidArgument, 0},
			{"Register/257 two-byte characters", register("mallory@example.com", strings.Repeat("é", 257)), codes.InvalidArgument, 0},
			{"Register/taken email, other case and spaces", register("  ALICE@Example.COM\t", ok), codes.AlreadyExists, 0},
			{"Register/taken email, SQL password", register("alice@example.com", "' OR '1'='1' --"), codes.AlreadyExists, 0},
			{"Register/nearly 1 MiB email", register(nearly+"@example.com", ok), codes.InvalidArgument, 0},
			{"Register/nearly 1 MiB password", register("mallory@example.com", nearly), codes.InvalidArgument, 0},
			{"Register/1 MiB email", register(huge+"@example.com", ok), codes.ResourceExhausted, 0},
			{"Register/1 MiB password", register("mallory@example.com", huge), codes.ResourceExhausted, 0},
			// A string that is not UTF-8 fails decoding (proto3 strings are
			// UTF-8): gRPC's codec answers Internal before authsvc sees the
			// request, so nothing is counted against the account.
			{"Register/invalid UTF-8 email", raw(authv1.AuthService_Register_FullMethodName, "mall\xffory@example.com", ok), codes.Internal, 0},
			{"Register/invalid UTF-8 password", raw(authv1.AuthService_Register_FullMethodName, "mallory@example.com", "pass\xc3\x28word"), codes.Internal, 0},

			// Login: every refusal is the same Unauthenticated, and counts
			// one failure for the account (or malformed email) and one for
			// the address.
			{"Login/empty email", login("", ok), codes.Unauthenticated, failed},
			{"Login/not an email", login("not-an-email", ok), codes.Unauthenticated, failed},
			{"Login/255-byte email", login(strings.Repeat("a", 243)+"@example.com", ok), codes.Unauthenticated, failed},
			{"Login/SQL email", login("' OR 1=1 --", ok), codes.Unauthenticated, failed},
			{"Login/SQL password", login("alice@example.com", "' OR '1'='1' --"), codes.Unauthenticated, failed},
			{"Login/empty password", login("alice@example.com", ""), codes.Unauthenticated, failed},
			{"Login/7-character password", login("alice@example.com", "1234567"), codes.Unauthenticated, failed},
			{"Login/257-character password", login("alice@example.com", strings.Repeat("p", 257)), codes.Unauthenticated, failed},
			{"Login/other case and spaces, wrong password", login("  ALICE@Example.COM ", "wrong-pass-1"), codes.Unauthenticated, failed},
			{"Login/nearly 1 MiB email", login(nearly+"@example.com", ok), codes.Unauthenticated, failed},
			{"Login/nearly 1 MiB password", login("alice@example.com", nearly), codes.Unauthenticated, failed},
			{"Login/1 MiB email", login(huge+"@example.com", ok), codes.ResourceExhausted, 0},
			{"Login/1 MiB password", login("alice@example.com", huge), codes.ResourceExhausted, 0},
			{"Login/invalid UTF-8 email", raw(authv1.AuthService_Login_FullMethodName, "alic\xe9@example.com", authsvctest.Password), codes.Internal, 0},
			{"Login/invalid UTF-8 password", raw(authv1.AuthService_Login_FullMethodName, "alice@example.com", authsvctest.Password+"\xff"), codes.Internal, 0},

			// RefreshToken: nothing is spent, nothing revoked.
			{"RefreshToken/empty", refresh(""), codes.Unauthenticated, 0},
			{"RefreshToken/garbage", refresh("garbage"), codes.Unauthenticated, 0},
			{"RefreshToken/SQL", refresh("' OR 1=1 --"), codes.Unauthenticated, 0},
			{"RefreshToken/one character changed", refresh(flipLast(alice.GetRefreshToken())), codes.Unauthenticated, 0},
			{"RefreshToken/an access token", refresh(alice.GetAccessToken()), codes.Unauthenticated, 0},
			{"RefreshToken/257 bytes", refresh(alice.GetRefreshToken() + strings.Repeat("A", 257)), codes.Unauthenticated, 0},
			{"RefreshToken/nearly 1 MiB", refresh(nearly), codes.Unauthenticated, 0},
			{"RefreshToken/1 MiB", refresh(huge), codes.ResourceExhausted, 0},
			{"RefreshToken/invalid UTF-8", raw(authv1.AuthService_RefreshToken_FullMethodName, "\xff\xfe"), codes.Internal, 0},

			// RevokeToken: only the owner or an admin revokes, and only tokens
			// that are ours.
			{"RevokeToken/another user's access token", revoke(asBob, alice.GetAccessToken()), codes.PermissionDenied, 0},
			{"RevokeToken/another user's refresh token", revoke(asBob, alice.GetRefreshToken()), codes.PermissionDenied, 0},
			{"RevokeToken/a token signed by another key", revoke(asBob, foreign), codes.InvalidArgument, 0},
			{"RevokeToken/alg none naming another user", revoke(asBob, b64e(set(f.hdr, "alg", "none"))+"."+b64e(f.payload)+"."), codes.InvalidArgument, 0},
			{"RevokeToken/8 KiB + 1 token", revoke(asBob, f.sized(t, token.MaxSize+1)), codes.InvalidArgument, 0},
			{"RevokeToken/empty", revoke(asBob, ""), codes.InvalidArgument, 0},
			// Not a JWT, so a refresh token, and unknown: RFC 7009 says
			// revoking it succeeds, and there is nothing to do.
			{"RevokeToken/unknown refresh token", revoke(asBob, "garbage"), codes.OK, 0},
			{"RevokeToken/1 MiB", revoke(asBob, huge), codes.ResourceExhausted, 0},
			{"RevokeToken/no caller", revoke(ctx, alice.GetAccessToken()), codes.Unauthenticated, 0},

			// The authorization metadata. The scheme is matched without
			// regard to case, as RFC 7235 §2.1 says (internal/grpcauth
			// BearerToken); everything else must be exactly one
			// "Bearer <token>" value.
			{"authorization/missing", getMe(ctx), codes.Unauthenticated, 0},
			{"authorization/empty", getMe(withAuth("")), codes.Unauthenticated, 0},
			{"authorization/scheme only", getMe(withAuth("Bearer")), codes.Unauthenticated, 0},
			{"authorization/no scheme", getMe(withAuth(alice.GetAccessToken())), codes.Unauthenticated, 0},
			{"authorization/Basic", getMe(withAuth("Basic YWxpY2U6dmFsaWQtcGFzcy0x")), codes.Unauthenticated, 0},
			{"authorization/Bearer doubled", getMe(withAuth("Bearer Bearer " + alice.GetAccessToken())), codes.Unauthenticated, 0},
			{"authorization/two spaces", getMe(withAuth("Bearer  " + alice.GetAccessToken())), codes.Unauthenticated, 0},
			{"authorization/two tokens in one value", getMe(withAuth("Bearer " + alice.GetAccessToken() + ", Bearer " + bob.GetAccessToken())), codes.Unauthenticated, 0},
			{"authorization/two values", getMe(withAuth("Bearer "+alice.GetAccessToken(), "Bearer "+alice.GetAccessToken())), codes.Unauthenticated, 0},
			{"authorization/two values, one bad", getMe(withAuth("Bearer "+alice.GetAccessToken(), "Bearer x")), codes.Unauthenticated, 0},
			{"authorization/lower-case bearer is accepted", getMe(withAuth("bearer " + alice.GetAccessToken())), codes.OK, 0},
			{"authorization/upper-case BEARER is accepted", getMe(withAuth("BEARER " + alice.GetAccessToken())), codes.OK, 0},
			{"authorization/a revoked token", getMe(authsvctest.WithToken(ctx, revoked)), codes.Unauthenticated, 0},

			// The revocation feed and key rotation.
			{"WatchRevocations/garbage cursor", watchFrom("!!garbage!!"), codes.InvalidArgument, 0},
			{"WatchRevocations/SQL cursor", watchFrom("1 OR 1=1"), codes.InvalidArgument, 0},
			{"WatchRevocations/negative cursor", watchFrom(b64url("rv1:-1")), codes.InvalidArgument, 0},
			{"WatchRevocations/cursor from the future", watchFrom(b64url("rv1:999999999")), codes.InvalidArgument, 0},
			{"WatchRevocations/8 KiB cursor", watchFrom(strings.Repeat("A", 8<<10)), codes.InvalidArgument, 0},
			{"RotateSigningKey/by a customer", func(*testing.T) error {
				_, err := c.RotateSigningKey(asBob, &authv1.RotateSigningKeyRequest{})
				return err
			}, codes.PermissionDenied, 0},
		}

		// Every forgery is inactive at IntrospectToken and Unauthenticated
		// at GetMe; introspection never writes.
		for _, fg := range f.forgeries(t) {
			cases = append(cases, hostileCase{"IntrospectToken/" + fg.name, func(t *testing.T) error {
				resp, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: fg.raw})
				if err == nil && !proto.Equal(resp, &authv1.IntrospectTokenResponse{}) {
					t.Errorf("IntrospectToken = %v, want only active=false", resp)
				}
				return err
			}, codes.OK, 0})
			if !printable(fg.raw) {
				continue // not a value gRPC metadata can carry: the client refuses to send it
			}
			cases = append(cases, hostileCase{"GetMe/" + fg.name, getMe(authsvctest.WithToken(ctx, fg.raw)), codes.Unauthenticated, 0})
		}
		// A 1 MiB token is over the 16 KiB of metadata the server
		// advertises (serve.MaxHeaderListSize): gRPC-Go's client refuses to
		// send it, with Internal, and a client that sends it anyway has its
		// connection closed (internal/serve TestHeaderListLimit). Either
		// way nothing reaches authsvc.
		cases = append(cases, hostileCase{"GetMe/1 MiB token", func(t *testing.T) error {
			err := getMe(authsvctest.WithToken(ctx, huge))(t)
			if !strings.Contains(status.Convert(err).Message(), "header list size") {
				t.Errorf("not refused for its size by the transport: %v", err)
			}
			return err
		}, codes.Internal, 0})
		cases = append(cases, hostileCase{"IntrospectToken/1 MiB", func(*testing.T) error {
			_, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: huge})
			return err
		}, codes.ResourceExhausted, 0})

		// The controls: the forging machinery makes acceptable tokens when
		// nothing is wrong, and a token of exactly the size limit passes.
		for name, tok := range map[string]string{
			"re-signed good token": f.sign(f.hdr, f.payload),
			"8 KiB token":          f.sized(t, token.MaxSize),
		} {
			resp, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: tok})
			if err != nil || !resp.GetActive() {
				t.Fatalf("control %s: IntrospectToken = %v, %v; want active", name, resp, err)
			}
			if _, err := c.GetMe(authsvctest.WithToken(ctx, tok), &authv1.GetMeRequest{}); err != nil {
				t.Fatalf("control %s: GetMe: %v", name, err)
			}
		}

		before := probe.snapshot(t)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call(t)
				if got := status.Code(err); got != tc.want {
					t.Errorf("code %v (%v), want %v", got, err, tc.want)
				}
				after := probe.snapshot(t)
				before.unchanged(t, after, tc.failures)
				before = after
			})
		}
		// A malformed email is counted under a key of its own; however long
		// the email, the key is not.
		if n := probe.longestThrottleKey(t); n > 300 {
			t.Errorf("a login failure is counted under a key of %d bytes", n)
		}
		if _, err := c.GetMe(asAlice, &authv1.GetMeRequest{}); err != nil {
			t.Errorf("alice after the attacks: %v", err)
		}
		if _, err := c.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: alice.GetRefreshToken()}); err != nil {
			t.Errorf("alice's refresh token after the attacks: %v", err)
		}

		t.Run("SQL-looking values are data", func(t *testing.T) {
			before := probe.snapshot(t)
			for _, email := range []string{`o'brien@example.com`, `x'/**/or/**/'1'='1@example.com`} {
				password := "' OR '1'='1' --"
				reg, err := c.Register(ctx, &authv1.RegisterRequest{Email: email, Password: password})
				if err != nil || reg.GetUser().GetEmail() != email {
					t.Fatalf("Register(%s) = %v, %v", email, reg, err)
				}
				if _, err := c.Login(ctx, &authv1.LoginRequest{Email: email, Password: password}); err != nil {
					t.Errorf("Login(%s): %v", email, err)
				}
			}
			if got, want := len(probe.snapshot(t).rows["users"]), len(before.rows["users"])+2; got != want {
				t.Errorf("%d users, want %d", got, want)
			}
		})

		// Access tokens are self-contained: a service that verifies one
		// locally looks at its signature, claims and the revocation set,
		// not at the account. So a demoted admin's token keeps its admin
		// role, and a deleted user's token stays active, until it expires
		// (TokenLifetime) or is revoked. Whoever demotes or deletes an
		// account must revoke its tokens (RevokeToken, or Logout); a fresh
		// token carries the account's roles as stored.
		t.Run("demoted admin", func(t *testing.T) {
			adminTok := s.AdminToken(t)
			asAdmin := authsvctest.WithToken(ctx, adminTok)
			if n := probe.exec(t, "UPDATE users SET roles = $1 WHERE email = $2", token.RoleCustomer, authsvctest.AdminEmail); n != 1 {
				t.Fatalf("demoted %d accounts", n)
			}
			intro, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: adminTok})
			if err != nil || !intro.GetActive() || !slices.Contains(intro.GetRoles(), token.RoleAdmin) {
				t.Errorf("IntrospectToken of the demoted admin's token = %v, %v; want active with the admin role", intro, err)
			}
			me, err := c.GetMe(asAdmin, &authv1.GetMeRequest{})
			if err != nil || !slices.Equal(me.GetUser().GetRoles(), []string{token.RoleCustomer}) {
				t.Errorf("GetMe = %v, %v; want the stored roles [customer]", me, err)
			}
			if _, err := c.RevokeToken(asAdmin, &authv1.RevokeTokenRequest{Token: bob.GetAccessToken()}); err != nil {
				t.Errorf("RevokeToken of another user's token with the demoted admin's token = %v; want OK until it expires or is revoked", err)
			}
			fresh := s.Login(t, authsvctest.AdminEmail).GetAccessToken()
			_, err = c.RevokeToken(authsvctest.WithToken(ctx, fresh), &authv1.RevokeTokenRequest{Token: alice.GetAccessToken()})
			expect.Code(t, "RevokeToken of another user's token with a fresh token after demotion", err, codes.PermissionDenied)
		})

		t.Run("deleted user", func(t *testing.T) {
			u := s.Register(t, "dave@example.com")
			dave := s.Login(t, "dave@example.com")
			asDave := authsvctest.WithToken(ctx, dave.GetAccessToken())
			if n := probe.exec(t, "DELETE FROM users WHERE id = $1", u.GetId()); n != 1 {
				t.Fatalf("deleted %d accounts", n)
			}
			_, err := c.GetMe(asDave, &authv1.GetMeRequest{})
			expect.Code(t, "GetMe of a deleted user", err, codes.NotFound)
			intro, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: dave.GetAccessToken()})
			if err != nil || !intro.GetActive() || intro.GetSubject() != u.GetId() {
				t.Errorf("IntrospectToken of a deleted user's token = %v, %v; want active until it expires or is revoked", intro, err)
			}
			// The refresh tokens went with the account (ON DELETE CASCADE).
			_, err = c.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: dave.GetRefreshToken()})
			expect.Code(t, "RefreshToken of a deleted user", err, codes.Unauthenticated)
			_, err = c.Login(ctx, &authv1.LoginRequest{Email: "dave@example.com", Password: authsvctest.Password})
			expect.Code(t, "Login of a deleted user", err, codes.Unauthenticated)
			// Revocation is what ends such a token.
			if _, err := c.Logout(asDave, &authv1.LogoutRequest{}); err != nil {
				t.Fatalf("Logout of a deleted user: %v", err)
			}
			intro, err = s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: dave.GetAccessToken()})
			if err != nil || intro.GetActive() {
				t.Errorf("IntrospectToken after the token's revocation = %v, %v; want inactive", intro, err)
			}
			_, err = c.GetMe(asDave, &authv1.GetMeRequest{})
			expect.Code(t, "GetMe after the token's revocation", err, codes.Unauthenticated)
		})
	})
}

// flipLast changes the last character of s.
func flipLast(s string) string {
	last := s[len(s)-1]
	if last == 'A' {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// printable reports whether s can be a gRPC metadata value (printable
// ASCII).
func printable(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// rawCodec sends bytes as they are, so that a test controls every byte on
// the wire (such as invalid UTF-8 in a string), whatever the client's stubs
// would check.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *v.(*[]byte) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

// invokeRaw calls the unary method with a request whose string fields 1, 2,
// ... hold fields, byte for byte.
func invokeRaw(ctx context.Context, conn *grpc.ClientConn, method string, fields ...string) error {
	var req, resp []byte
	for i, f := range fields {
		req = protowire.AppendTag(req, protowire.Number(i+1), protowire.BytesType)
		req = protowire.AppendString(req, f)
	}
	return conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(rawCodec{}))
}
