package catalogsvc_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/cartstate"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth/grpcauthtest"
	"github.com/tokencart/tokencart/internal/token"
)

// The hostile-client suite: every case is a call a client could make to a
// real replica over TCP; each asserts the exact gRPC code and that nothing
// any store holds changed (every row of the catalog, cart and
// idempotency-key tables; in request mode also the victim's cart as its
// blob opens). A control case shows that the snapshot does see an accepted
// change.

// hostileModes are the modes the suite runs in: the checks sit before the
// store, so SQLite stands for both store modes; request mode has checks of
// its own (cart_state).
var hostileModes = []mode{modes[0], modes[2]}

// target is a replica under attack and a victim with a cart (espresso x 1,
// version 1, recorded under request id "victim-1"), whom the forged
// tokens claim to be.
type target struct {
	c      *cluster
	r      *replica
	victim *shopper
	db     *sql.DB // the replicas' SQLite file, read by snapshot
}

func newTarget(t *testing.T, c *cluster, modify ...func(*catalogsvc.Config)) *target {
	t.Helper()
	r := c.start(modify...)
	victim := c.shopperWithToken(r, c.mint(t, "victim"))
	checkCart(t, r, victim.add(espresso, 1, withRequestID("victim-1")).must(t), 1, line{espresso, 1})
	return &target{c: c, r: r, victim: victim, db: openSQLite(t, c.dsn)}
}

// openSQLite opens the SQLite file at path until the test ends.
func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mint returns a token for subject from the cluster's fake authsvc.
func (c *cluster) mint(t testing.TB, subject string, roles ...string) string {
	t.Helper()
	if len(roles) == 0 {
		roles = []string{token.RoleCustomer}
	}
	return c.fake.Mint(t, subject, roles...)
}

// snapshot is everything the stores hold, as text.
func (tg *target) snapshot(t *testing.T) string {
	t.Helper()
	s := dumpSQLite(t, tg.db)
	if tg.c.cartMode == catalogsvc.CartModeRequest {
		resp, err := tg.victim.carts.GetCart(tg.victim.ctx, &catalogv1.GetCartRequest{CartState: tg.victim.state})
		if err != nil {
			t.Fatalf("victim's cart_state: %v", err)
		}
		s += fmt.Sprintf("victim cart: version %d, lines %v\n", resp.GetCart().GetVersion(), resp.GetCart().GetLines())
	}
	return s
}

// expect runs attack and checks its code and that no store changed.
func (tg *target) expect(t *testing.T, want codes.Code, attack func() error) {
	t.Helper()
	before := tg.snapshot(t)
	err := attack()
	expect.Code(t, "", err, want)
	if after := tg.snapshot(t); after != before {
		t.Errorf("the stores changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// dumpSQLite returns every row of catalogsvc's tables in db, in a stable
// order.
func dumpSQLite(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"catalog_meta", "products", "carts", "cart_requests"} {
		dumpTable(t, db, table, &b)
	}
	return b.String()
}

func dumpTable(t *testing.T, db *sql.DB, table string, b *strings.Builder) {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1, 2")
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		b.WriteString(table)
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(b, " %x", v)
			case string:
				fmt.Fprintf(b, " %q", v)
			default:
				fmt.Fprintf(b, " %v", v)
			}
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// jwt builds tokens the way an attacker can: any header, any payload, any
// signature.
type jwt struct{ hdr, payload map[string]any }

func b64(v any) string {
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (j jwt) input() string { return b64(j.hdr) + "." + b64(j.payload) }

// ed25519 signs j with key, as authsvc would sign anything it was given.
func (j jwt) ed25519(key ed25519.PrivateKey) string {
	in := j.input()
	return in + "." + b64(ed25519.Sign(key, []byte(in)))
}

func (j jwt) with(hdr, payload map[string]any) jwt {
	out := jwt{hdr: clone(j.hdr), payload: clone(j.payload)}
	for k, v := range hdr {
		set(out.hdr, k, v)
	}
	for k, v := range payload {
		set(out.payload, k, v)
	}
	return out
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// set sets m[k] = v, or deletes k when v is the string "<absent>".
func set(m map[string]any, k string, v any) {
	if v == absent {
		delete(m, k)
		return
	}
	m[k] = v
}

const absent = "<absent>"

// validJWT returns the header and claims of a good access token for
// subject, signed by kid.
func validJWT(kid, subject string) jwt {
	now := time.Now()
	return jwt{
		hdr: map[string]any{"alg": "EdDSA", "typ": token.Type, "kid": kid},
		payload: map[string]any{
			"iss": grpcauthtest.Issuer, "sub": subject, "aud": []string{grpcauthtest.Audience},
			"roles": []string{token.RoleCustomer}, "jti": token.NewID(), "client_id": grpcauthtest.ClientID,
			"iat": now.Add(-time.Second).Unix(), "nbf": now.Add(-time.Second).Unix(), "exp": now.Add(time.Hour).Unix(),
		},
	}
}

// tokenOfLength returns a good token (signed by key) exactly n bytes long,
// padded with a claim nobody reads.
func tokenOfLength(t *testing.T, key token.SigningKey, subject string, n int) string {
	t.Helper()
	base := validJWT(key.ID, subject)
	overhead := len(base.with(nil, map[string]any{"pad": ""}).ed25519(key.Private))
	for pad := max((n-overhead)*3/4-8, 0); pad < n; pad++ {
		raw := base.with(nil, map[string]any{"pad": strings.Repeat("x", max(pad, 0))}).ed25519(key.Private)
		if len(raw) == n {
			return raw
		}
		if len(raw) > n {
			break
		}
	}
	t.Fatalf("no token of exactly %d bytes", n)
	return ""
}

// TestHostileTokens sends forged, altered and malformed tokens to a
// replica whose key set the test holds a signing key of (published by the
// fake authsvc), so that every claims check is reached with a genuine
// signature. The attacks name the victim as subject and try to add to the
// victim's cart. Tokens are checked before any cart backend is involved, so
// one mode (SQLite) stands for all three.
func TestHostileTokens(t *testing.T) {
	t.Parallel()
	// The smallest key GenerateKey makes (fast): the replica must refuse
	// RS256 whatever the key.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range hostileModes[:1] {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, m)
			key := c.fake.SignWithUnpublished(t) // the fake now signs with it...
			c.fake.Publish(key)                  // ...and publishes it
			tg := newTarget(t, c)
			good := validJWT(key.ID, "victim")
			goodRaw := good.ed25519(key.Private)
			parts := strings.Split(goodRaw, ".")
			other, err := token.GenerateSigningKey()
			if err != nil {
				t.Fatal(err)
			}

			// Signatures of other algorithms over our kid.
			hs := good.with(map[string]any{"alg": "HS256"}, nil)
			mac := hmac.New(sha256.New, key.Public())
			mac.Write([]byte(hs.input()))
			hs256 := hs.input() + "." + b64(mac.Sum(nil))
			rs := good.with(map[string]any{"alg": "RS256"}, nil)
			digest := sha256.Sum256([]byte(rs.input()))
			rsSig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			es := good.with(map[string]any{"alg": "ES256"}, nil)
			digest = sha256.Sum256([]byte(es.input()))
			r, s, err := ecdsa.Sign(rand.Reader, ecKey, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			esSig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
			payloadFlipped := []byte(parts[1])
			payloadFlipped[len(payloadFlipped)/2] ^= 0x01
			sigFlipped := []byte(parts[2])
			sigFlipped[5] ^= 0x01
			now := time.Now()
			attackerJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": key.ID, "x": b64(other.Public())}

			bearer := func(raw string) []string { return []string{"Bearer " + raw} }
			tests := []struct {
				name string
				auth []string // authorization values; nil sends none
				want codes.Code
			}{
				{"no authorization", nil, codes.Unauthenticated},
				{"alg none", bearer(good.with(map[string]any{"alg": "none"}, nil).input() + "."), codes.Unauthenticated},
				{"alg none with the good signature", bearer(good.with(map[string]any{"alg": "none"}, nil).input() + "." + parts[2]), codes.Unauthenticated},
				{"HS256 keyed with our public key", bearer(hs256), codes.Unauthenticated},
				{"RS256", bearer(rs.input() + "." + b64(rsSig)), codes.Unauthenticated},
				{"ES256", bearer(es.input() + "." + b64(esSig)), codes.Unauthenticated},
				{"EdDSA by a key not in the key set, our kid", bearer(good.ed25519(other.Private)), codes.Unauthenticated},
				{"unknown kid", bearer(good.with(map[string]any{"kid": other.ID}, nil).ed25519(other.Private)), codes.Unauthenticated},
				{"missing kid", bearer(good.with(map[string]any{"kid": absent}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"empty kid", bearer(good.with(map[string]any{"kid": ""}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"kid with a path", bearer(good.with(map[string]any{"kid": "../../../../etc/passwd"}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"kid with SQL", bearer(good.with(map[string]any{"kid": "x' OR '1'='1'; --"}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"kid not a string", bearer(good.with(map[string]any{"kid": 7}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"wrong iss", bearer(good.with(nil, map[string]any{"iss": "https://evil.example"}).ed25519(key.Private)), codes.Unauthenticated},
				{"wrong aud", bearer(good.with(nil, map[string]any{"aud": []string{"other-service"}}).ed25519(key.Private)), codes.Unauthenticated},
				{"aud []", bearer(good.with(nil, map[string]any{"aud": []string{}}).ed25519(key.Private)), codes.Unauthenticated},
				{"wrong typ", bearer(good.with(map[string]any{"typ": "JWT"}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"typ missing", bearer(good.with(map[string]any{"typ": absent}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"expired past the leeway", bearer(good.with(nil, map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-token.DefaultLeeway - 5*time.Second).Unix()}).ed25519(key.Private)), codes.Unauthenticated},
				{"nbf in the future", bearer(good.with(nil, map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}).ed25519(key.Private)), codes.Unauthenticated},
				{"iat in the future", bearer(good.with(nil, map[string]any{"iat": now.Add(2 * time.Minute).Unix()}).ed25519(key.Private)), codes.Unauthenticated},
				{"no exp", bearer(good.with(nil, map[string]any{"exp": absent}).ed25519(key.Private)), codes.Unauthenticated},
				{"no sub", bearer(good.with(nil, map[string]any{"sub": absent}).ed25519(key.Private)), codes.Unauthenticated},
				{"no jti", bearer(good.with(nil, map[string]any{"jti": absent}).ed25519(key.Private)), codes.Unauthenticated},
				{"no client_id", bearer(good.with(nil, map[string]any{"client_id": absent}).ed25519(key.Private)), codes.Unauthenticated},
				{"payload bit flipped", bearer(parts[0] + "." + string(payloadFlipped) + "." + parts[2]), codes.Unauthenticated},
				{"signature bit flipped", bearer(parts[0] + "." + parts[1] + "." + string(sigFlipped)), codes.Unauthenticated},
				{"jku header", bearer(good.with(map[string]any{"jku": "https://evil.example/jwks.json"}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"x5u header", bearer(good.with(map[string]any{"x5u": "https://evil.example/cert.pem"}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"crit header", bearer(good.with(map[string]any{"crit": []string{"exp"}}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"zip header", bearer(good.with(map[string]any{"zip": "DEF"}, nil).ed25519(key.Private)), codes.Unauthenticated},
				{"embedded jwk of the attacker's key", bearer(good.with(map[string]any{"jwk": attackerJWK}, nil).ed25519(other.Private)), codes.Unauthenticated},
				{"8 KiB + 1", bearer(tokenOfLength(t, key, "victim", token.MaxSize+1)), codes.Unauthenticated},
				// The largest the token check can see: the transport
				// refuses metadata over serve.MaxHeaderListSize (1 MiB
				// below).
				{"12 KiB", bearer(parts[0] + "." + strings.Repeat("A", 12<<10) + "." + parts[2]), codes.Unauthenticated},
				{"Bearer missing", []string{goodRaw}, codes.Unauthenticated},
				{"Bearer doubled", []string{"Bearer Bearer " + goodRaw}, codes.Unauthenticated},
				{"two spaces", []string{"Bearer  " + goodRaw}, codes.Unauthenticated},
				{"Basic scheme", []string{"Basic " + goodRaw}, codes.Unauthenticated},
				{"Bearer with no token", []string{"Bearer "}, codes.Unauthenticated},
				{"two authorization values", []string{"Bearer " + goodRaw, "Bearer " + goodRaw}, codes.Unauthenticated},
				{"token, then a comma and another", []string{"Bearer " + goodRaw + "," + goodRaw}, codes.Unauthenticated},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx := testContext(t)
					if tt.auth != nil {
						ctx = metadata.NewOutgoingContext(ctx, metadata.MD{"authorization": tt.auth})
					}
					tg.expect(t, tt.want, func() error {
						_, err := tg.r.carts.AddItem(ctx, &catalogv1.AddItemRequest{ProductId: espresso, Quantity: 1, CartState: tg.victim.state})
						return err
					})
				})
			}
			// A 1 MiB token is over the 16 KiB of metadata the server
			// advertises (serve.MaxHeaderListSize): gRPC-Go's client
			// refuses to send it, with Internal, and a client that sends it
			// anyway has its connection closed (internal/serve
			// TestHeaderListLimit). Either way nothing reaches catalogsvc.
			t.Run("1 MiB", func(t *testing.T) {
				ctx := metadata.NewOutgoingContext(testContext(t), metadata.MD{"authorization": bearer(parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2])})
				tg.expect(t, codes.Internal, func() error {
					_, err := tg.r.carts.AddItem(ctx, &catalogv1.AddItemRequest{ProductId: espresso, Quantity: 1, CartState: tg.victim.state})
					if !strings.Contains(status.Convert(err).Message(), "header list size") {
						t.Errorf("not refused for its size by the transport: %v", err)
					}
					return err
				})
			})

			// Accepted: the scheme is case-insensitive (RFC 7235 §2.1), and
			// MaxSize is inclusive. GetCart, which changes nothing.
			for name, auth := range map[string]string{
				"lower-case bearer":   "bearer " + goodRaw,
				"upper-case BEARER":   "BEARER " + goodRaw,
				"token of 8 KiB":      "Bearer " + tokenOfLength(t, key, "victim", token.MaxSize),
				"the good token":      "Bearer " + goodRaw,
				"the fake's own mint": "Bearer " + c.mint(t, "victim"),
			} {
				t.Run("accepted: "+name, func(t *testing.T) {
					ctx := metadata.NewOutgoingContext(testContext(t), metadata.MD{"authorization": {auth}})
					tg.expect(t, codes.OK, func() error {
						_, err := tg.r.carts.GetCart(ctx, &catalogv1.GetCartRequest{CartState: tg.victim.state})
						return err
					})
				})
			}

			// Control: the snapshot does see an accepted change.
			before := tg.snapshot(t)
			tg.victim.ctx = client.WithToken(testContext(t), goodRaw)
			tg.victim.add(kenya, 1).must(t)
			if tg.snapshot(t) == before {
				t.Error("control: an accepted AddItem left the snapshot as it was")
			}
		})
	}
}

// TestHostileTokensRealAuthsvc covers what only a real authsvc can show:
// a token revoked there (Logout) is refused, and a token of a user deleted
// or demoted at authsvc is still accepted until it expires or is revoked.
// That is the design, documented here: access tokens are self-contained
// (authsvc introspection checks signature and revocation, not the
// account), so whoever deletes or demotes a user must revoke their tokens
// too, or accept up to --token-lifetime of the old rights.
func TestHostileTokensRealAuthsvc(t *testing.T) {
	t.Parallel()
	auth := authsvctest.Start(t, authsvctest.Options{})
	c := newClusterAt(t, modes[0], auth.GRPCAddr)
	r := c.start()
	user, raw := auth.NewCustomer(t)
	tg := &target{c: c, r: r, victim: c.shopperWithToken(r, raw), db: openSQLite(t, c.dsn)}
	tg.victim.add(espresso, 1).must(t)
	authDB := openSQLite(t, auth.DSN)

	t.Run("revoked", func(t *testing.T) {
		_, revokedRaw := auth.NewCustomer(t)
		s := c.shopperWithToken(r, revokedRaw)
		s.get().must(t) // verified and cached before the revocation
		if _, err := auth.Client.Logout(authsvctest.WithToken(testContext(t), revokedRaw), &authv1.LogoutRequest{}); err != nil {
			t.Fatal(err)
		}
		expect.Eventually(t, testTimeout, "revocation", func() bool { return status.Code(s.get().err) == codes.Unauthenticated })
		tg.expect(t, codes.Unauthenticated, func() error { return s.add(espresso, 1).err })
	})

	t.Run("deleted user: accepted until exp or revocation", func(t *testing.T) {
		if _, err := authDB.Exec(`DELETE FROM users WHERE id = ?`, user.GetId()); err != nil {
			t.Fatal(err)
		}
		if _, err := auth.Client.GetMe(authsvctest.WithToken(testContext(t), raw), &authv1.GetMeRequest{}); err == nil {
			t.Log("note: authsvc's GetMe still answers for the deleted user")
		}
		checkCart(t, r, tg.victim.add(kenya, 1).must(t), 2, line{espresso, 1}, line{kenya, 1})
	})

	t.Run("demoted admin: admin rights until exp or revocation", func(t *testing.T) {
		adminRaw := auth.AdminToken(t)
		admin := client.WithToken(testContext(t), adminRaw)
		if _, err := authDB.Exec(`UPDATE users SET roles = 'customer' WHERE email = ?`, authsvctest.AdminEmail); err != nil {
			t.Fatal(err)
		}
		upsert(t, r, admin, "after-demotion", 1, 0) // still admin: the token says so
		// Revoking the token is what takes the rights away.
		if _, err := auth.Client.Logout(authsvctest.WithToken(testContext(t), adminRaw), &authv1.LogoutRequest{}); err != nil {
			t.Fatal(err)
		}
		expect.Eventually(t, testTimeout, "revocation", func() bool {
			_, err := r.catalog.DeleteProduct(admin, &catalogv1.DeleteProductRequest{ProductId: "no-such-product"})
			return status.Code(err) == codes.Unauthenticated
		})
		tg.expect(t, codes.Unauthenticated, func() error {
			_, err := r.catalog.DeleteProduct(admin, &catalogv1.DeleteProductRequest{ProductId: "after-demotion"})
			return err
		})
		// A new login carries the new roles.
		customer := client.WithToken(testContext(t), auth.Login(t, authsvctest.AdminEmail).GetAccessToken())
		tg.expect(t, codes.PermissionDenied, func() error {
			_, err := r.catalog.DeleteProduct(customer, &catalogv1.DeleteProductRequest{ProductId: "after-demotion"})
			return err
		})
	})
}

// TestHostileCart sends invalid cart requests, each of which must be
// refused with its exact code and change nothing.
func TestHostileCart(t *testing.T) {
	t.Parallel()
	for _, m := range hostileModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, m)
			tg := newTarget(t, c)
			r, v := tg.r, tg.victim
			ids := bulkProducts(t, tg, cartLimit+1)
			full := c.shopper(r, "full")
			for _, id := range ids[:cartLimit] {
				full.add(id, 1).must(t)
			}
			sqlish := "x'); DROP TABLE carts; --"
			add := func(id string, q int64, o ...mutOpt) func() error {
				return func() error {
					state := v.state
					defer func() { v.state = state }() // a refused call must not move the victim on
					return v.add(id, q, o...).err
				}
			}
			set := func(id string, q int64, o ...mutOpt) func() error {
				return func() error {
					state := v.state
					defer func() { v.state = state }()
					return v.set(id, q, o...).err
				}
			}
			tests := []struct {
				name   string
				attack func() error
				want   codes.Code
			}{
				{"quantity -1", add(espresso, -1), codes.InvalidArgument},
				{"quantity min int64", add(espresso, math.MinInt64), codes.InvalidArgument},
				{"quantity 0", add(espresso, 0), codes.InvalidArgument},
				{"quantity 1000", add(espresso, 1000), codes.InvalidArgument},
				{"quantity 2^31", add(espresso, 1<<31), codes.InvalidArgument},
				{"quantity 2^32+1 (1 if truncated to 32 bits)", add(espresso, 1<<32+1), codes.InvalidArgument},
				{"quantity max int64", add(espresso, math.MaxInt64), codes.InvalidArgument},
				{"line over 999", add(espresso, 999), codes.FailedPrecondition},
				{"set -1", set(espresso, -1), codes.InvalidArgument},
				{"set 1000", set(espresso, 1000), codes.InvalidArgument},
				{"set 2^31", set(espresso, 1<<31), codes.InvalidArgument},
				{"101st line by AddItem", func() error { return full.add(ids[cartLimit], 1).err }, codes.FailedPrecondition},
				{"101st line by SetItemQuantity", func() error { return full.set(ids[cartLimit], 1).err }, codes.FailedPrecondition},
				{"unknown product", add("no-such-product", 1), codes.NotFound},
				{"set unknown product", set("no-such-product", 1), codes.NotFound},
				{"empty product id", add("", 1), codes.InvalidArgument},
				{"10 KiB product id", add(strings.Repeat("a", 10<<10), 1), codes.InvalidArgument},
				{"SQL product id", add(sqlish, 1), codes.InvalidArgument},
				{"SQL product id in RemoveItem", func() error { return v.remove(sqlish).err }, codes.InvalidArgument},
				{"product id with NUL", add("espresso\x00", 1), codes.InvalidArgument},
				{"request id of 129 characters", add(espresso, 1, withRequestID(strings.Repeat("r", 129))), codes.InvalidArgument},
				{"request id with a control character", add(espresso, 1, withRequestID("a\nb")), codes.InvalidArgument},
				{"request id reused: other quantity", add(espresso, 2, withRequestID("victim-1")), codes.InvalidArgument},
				{"request id reused: other product", add(kenya, 1, withRequestID("victim-1")), codes.InvalidArgument},
				{"request id reused: other method", func() error { return v.remove(espresso, withRequestID("victim-1")).err }, codes.InvalidArgument},
				{"request id reused: with expected_version", add(espresso, 1, withRequestID("victim-1"), expecting(0)), codes.InvalidArgument},
				{"request id reused by ClearCart", func() error { return v.clear(withRequestID("victim-1")).err }, codes.InvalidArgument},
				{"negative expected_version", add(espresso, 1, expecting(-1)), codes.InvalidArgument},
				{"stale expected_version", add(espresso, 1, expecting(0)), codes.Aborted},
				{"future expected_version", func() error { return v.clear(expecting(2)).err }, codes.Aborted},
			}
			// Strings that are not UTF-8 fail decoding (proto3 strings are
			// UTF-8): gRPC's codec answers Internal, before any handler.
			for _, f := range []struct {
				name  string
				field protowire.Number
			}{{"product_id", 1}, {"request_id", 3}} {
				raw := protowire.AppendTag(nil, f.field, protowire.BytesType)
				raw = protowire.AppendString(raw, "caf\xe9")
				raw = protowire.AppendTag(raw, 2, protowire.VarintType)
				raw = protowire.AppendVarint(raw, 1)
				if f.field != 1 {
					raw = protowire.AppendTag(raw, 1, protowire.BytesType)
					raw = protowire.AppendString(raw, espresso)
				}
				tests = append(tests, struct {
					name   string
					attack func() error
					want   codes.Code
				}{"invalid UTF-8 " + f.name, func() error {
					var out []byte
					return r.conn.Invoke(v.ctx, catalogv1.CartService_AddItem_FullMethodName, raw, &out, grpc.ForceCodec(rawCodec{}))
				}, codes.Internal})
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tg.expect(t, tt.want, tt.attack) })
			}

			t.Run("SQL-looking request id is data", func(t *testing.T) {
				s := c.shopper(r, "sql-data")
				first := s.add(kenya, 1, withRequestID(sqlish)).must(t)
				tg.expect(t, codes.OK, func() error { return s.add(kenya, 1, withRequestID(sqlish)).err })
				tg.expect(t, codes.InvalidArgument, func() error { return s.add(kenya, 2, withRequestID(sqlish)).err })
				checkCart(t, r, first, 1, line{kenya, 1})
				if m.cartMode == catalogsvc.CartModeStore && !strings.Contains(dumpSQLite(t, tg.db), sqlish) {
					t.Error("the request id is not stored as given")
				}
			})

			if m.cartMode != catalogsvc.CartModeRequest {
				return
			}
			older := bytes.Clone(v.state)
			v.add(kenya, 1).must(t) // the victim moves on: older is a replay now
			current := bytes.Clone(v.state)
			mallory := c.shopper(r, "mallory")
			mallory.add(biscotti, 1).must(t)
			foreign := mallory.state
			otherKey := newCluster(t, mode{"other-key", sqliteDSN, catalogsvc.CartModeRequest})
			elsewhere := otherKey.shopper(otherKey.start(), "victim")
			elsewhere.add(espresso, 1).must(t)
			flip := func(i int) []byte {
				b := bytes.Clone(current)
				b[i] ^= 0x01
				return b
			}
			stateTests := []struct {
				name  string
				state []byte
				want  codes.Code
			}{
				{"tampered: version byte", flip(0), codes.InvalidArgument},
				{"tampered: key id", flip(1), codes.InvalidArgument},
				{"tampered: subject tag", flip(6), codes.PermissionDenied}, // the tag is a hint: it no longer names the caller
				{"tampered: nonce", flip(20), codes.InvalidArgument},
				{"tampered: ciphertext", flip(len(current) - 20), codes.InvalidArgument},
				{"tampered: auth tag", flip(len(current) - 1), codes.InvalidArgument},
				{"truncated by one byte", current[:len(current)-1], codes.InvalidArgument},
				{"truncated to the header", current[:cartstate.Overhead-1], codes.InvalidArgument},
				{"extended by one byte", append(bytes.Clone(current), 0), codes.InvalidArgument},
				{"plain JSON", []byte(`{"v":1,"l":[{"p":"espresso-blend-1kg","q":999}]}`), codes.InvalidArgument},
				{"foreign: another user's", foreign, codes.PermissionDenied},
				{"sealed with a key this cluster does not hold", elsewhere.state, codes.InvalidArgument},
				{"oversized: 64 KiB + 1", append(bytes.Clone(current), make([]byte, cartstate.MaxSize+1-len(current))...), codes.InvalidArgument},
				{"oversized: 1 MiB - 64 KiB", make([]byte, 15*cartstate.MaxSize), codes.InvalidArgument},
			}
			for _, tt := range stateTests {
				t.Run("cart_state "+tt.name, func(t *testing.T) {
					tg.expect(t, tt.want, func() error {
						_, err := r.carts.AddItem(v.ctx, &catalogv1.AddItemRequest{ProductId: espresso, Quantity: 1, CartState: tt.state})
						return err
					})
					tg.expect(t, tt.want, func() error {
						_, err := r.carts.GetCart(v.ctx, &catalogv1.GetCartRequest{CartState: tt.state})
						return err
					})
				})
			}
			// Replayed: an older blob of the victim's own is the victim's
			// cart as it was, by design (the server keeps nothing to tell
			// it from the newest). It never carries anyone else's data, and
			// expected_version makes a client detect that it is behind.
			t.Run("cart_state replayed", func(t *testing.T) {
				resp, err := r.carts.GetCart(v.ctx, &catalogv1.GetCartRequest{CartState: older})
				if err != nil {
					t.Fatal(err)
				}
				checkCart(t, r, resp.GetCart(), 1, line{espresso, 1})
				tg.expect(t, codes.Aborted, func() error {
					_, err := r.carts.AddItem(v.ctx, &catalogv1.AddItemRequest{ProductId: espresso, Quantity: 1, CartState: older, ExpectedVersion: ptr(int64(2))})
					return err
				})
				// Replaying the older blob's recorded request returns that
				// request's result and records nothing new.
				tg.expect(t, codes.OK, func() error {
					_, err := r.carts.AddItem(v.ctx, &catalogv1.AddItemRequest{ProductId: espresso, Quantity: 1, RequestId: "victim-1", CartState: older})
					return err
				})
			})
		})
	}
}

// bulkProducts writes n products straight into the store (one transaction,
// much faster than n UpsertProduct calls) and waits for the replica's
// catalog poll to pick them up.
func bulkProducts(t *testing.T, tg *target, n int) []string {
	t.Helper()
	tx, err := tg.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bulk-%03d", i)
		_, err := tx.Exec(`INSERT INTO products (id, name, description, category, currency, units, nanos, update_time)
			VALUES (?, ?, '', 'test', 'EUR', 1, 0, 0)`, ids[i], "Bulk "+ids[i])
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec(`UPDATE catalog_meta SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	expect.Eventually(t, testTimeout, "bulk products in the catalog", func() bool {
		_, err := tg.r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: ids[n-1]})
		return err == nil
	})
	return ids
}

// cartLimit is the most lines a cart holds.
const cartLimit = 100

func ptr[T any](v T) *T { return &v }
