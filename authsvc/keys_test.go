package authsvc_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/authsvc/store"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

// TestKeyRotationLosesNoToken logs in over and over, alternating between
// two replicas, while an admin rotates the signing key three times. Each
// token must verify with the key set fetched from the *other* replica
// before the login (so its key was published everywhere before it signed),
// and every token must stay valid on both replicas afterwards.
func TestKeyRotationLosesNoToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		a, b := startPair(t, dsn, func(c *authsvc.Config) { c.KeyPublishDelay = 2 * time.Second })
		replicas := []*authsvctest.Server{a, b}
		ctx := t.Context()
		admin := authsvctest.WithToken(ctx, a.AdminToken(t))
		email := "rotating@example.com"
		a.Register(t, email)

		// A token of the first key, before any rotation: on a slow machine
		// a rotated key may already sign the first login after it.
		tokens := []string{a.Login(t, email).GetAccessToken()}
		firstKid, err := token.KeyID(tokens[0])
		if err != nil {
			t.Fatal(err)
		}
		kids := map[string]bool{firstKid: true}
		activate := map[string]time.Time{}
		pending, rotations := "", 0
		for i := 0; rotations < 3 || pending != ""; i++ {
			if i == 300 {
				t.Fatalf("rotated key %s never signed", pending)
			}
			if pending == "" {
				rotator := replicas[rotations%2]
				rot, err := rotator.Client.RotateSigningKey(admin, &authv1.RotateSigningKeyRequest{})
				if err != nil {
					t.Fatalf("RotateSigningKey: %v", err)
				}
				pending, activate[rot.GetKeyId()] = rot.GetKeyId(), rot.GetActivateTime().AsTime()
				rotations++
				if _, ok := rotator.KeySet(t).Key(pending); !ok {
					t.Errorf("rotated key %s not published at once by the replica that created it", pending)
				}
			}
			login, other := replicas[i%2], replicas[(i+1)%2]
			before := other.KeySet(t)
			raw := login.Login(t, email).GetAccessToken()
			c, err := login.Verifier(t, before).Verify(raw)
			if err != nil {
				t.Fatalf("token %d does not verify with the key set published before it was signed: %v", i, err)
			}
			if at, ok := activate[c.KeyID]; ok && c.IssuedAt.Before(at.Truncate(time.Second)) {
				t.Errorf("key %s signed at %v, before its activate time %v", c.KeyID, c.IssuedAt, at)
			}
			if c.KeyID == pending {
				pending = ""
			}
			kids[c.KeyID] = true
			tokens = append(tokens, raw)
		}
		if len(kids) != 4 {
			t.Errorf("tokens signed by %d keys, want 4 (the first and three rotations)", len(kids))
		}
		t.Logf("%d logins across 3 rotations", len(tokens))
		for i, raw := range tokens {
			for _, s := range replicas {
				if _, err := s.Client.GetMe(authsvctest.WithToken(ctx, raw), &authv1.GetMeRequest{}); err != nil {
					t.Errorf("token %d refused after rotations: %v", i, err)
				}
				if r, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: raw}); err != nil || !r.GetActive() {
					t.Errorf("token %d inactive after rotations: %v, %v", i, r, err)
				}
			}
		}
	})
}

// TestRetiredKeyRefused moves a replica's clock past the withdrawal of a
// rotated-out key: the key leaves the key set and the store, and a token
// it signed is refused, because its key is gone and not only because it
// has expired. Then the clock passes the rotation interval, and the
// replica rotates by itself.
func TestRetiredKeyRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		clk := &clock{}
		s := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) {
			c.Now = clk.Now
			c.KeyRotationInterval = 6 * time.Hour
		}})
		ctx := t.Context()
		_, old := s.NewCustomer(t)
		oldClaims, err := s.Verifier(t, s.KeySet(t)).Verify(old)
		if err != nil {
			t.Fatal(err)
		}
		rot, err := s.Client.RotateSigningKey(authsvctest.WithToken(ctx, s.AdminToken(t)), &authv1.RotateSigningKeyRequest{})
		if err != nil {
			t.Fatalf("RotateSigningKey: %v", err)
		}
		if d := rot.GetActivateTime().AsTime().Sub(clk.Now()); d <= 0 || d > s.Config.KeyPublishDelay {
			t.Errorf("new key activates in %v, want within the publish delay %v", d, s.Config.KeyPublishDelay)
		}
		expect.Eventually(t, 5*time.Second, "the new key to sign", func() bool {
			kid, _ := token.KeyID(s.Login(t, authsvctest.AdminEmail).GetAccessToken())
			return kid == rot.GetKeyId()
		})

		clk.Advance(s.Config.TokenLifetime + token.MaxLeeway + time.Minute)
		expect.Eventually(t, 5*time.Second, "the old key to be withdrawn", func() bool {
			_, published := s.KeySet(t).Key(oldClaims.KeyID)
			return !published
		})
		// The replica publishes the new key set before it deletes the
		// withdrawn rows, so the deletion may trail the key set briefly.
		expect.Eventually(t, 5*time.Second, "the withdrawn key to be deleted", func() bool {
			keys, _, err := s.Store.SigningKeys(ctx)
			return err == nil && !slices.ContainsFunc(keys, func(k authsvc.StoredKey) bool { return k.ID == oldClaims.KeyID })
		})
		_, err = s.Client.GetMe(authsvctest.WithToken(ctx, old), &authv1.GetMeRequest{})
		expect.Code(t, "GetMe with a token of a withdrawn key", err, codes.Unauthenticated)
		if r, err := s.ServiceClient.IntrospectToken(ctx, &authv1.IntrospectTokenRequest{Token: old}); err != nil || !proto.Equal(r, &authv1.IntrospectTokenResponse{}) {
			t.Errorf("IntrospectToken = %v, %v; want inactive", r, err)
		}
		v, err := token.NewVerifier(token.VerifierConfig{
			Issuer: s.Config.Issuer, Audience: s.Config.Audience, Keys: s.KeySet(t),
			Now: func() time.Time { return oldClaims.IssuedAt.Add(time.Minute) }, // while it was unexpired
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(old); !errors.Is(err, token.ErrUnknownKey) {
			t.Errorf("Verify with the current key set at issue time = %v, want ErrUnknownKey", err)
		}

		clk.Advance(6 * time.Hour)
		expect.Eventually(t, 5*time.Second, "an automatic rotation", func() bool {
			ids := s.KeySet(t).KeyIDs()
			return len(ids) == 2 && slices.Contains(ids, rot.GetKeyId())
		})
	})
}

func TestRotateSigningKeyNeedsAdmin(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{})
	_, tok := s.NewCustomer(t)
	_, err := s.Client.RotateSigningKey(authsvctest.WithToken(t.Context(), tok), &authv1.RotateSigningKeyRequest{})
	expect.Code(t, "RotateSigningKey as a customer", err, codes.PermissionDenied)
	if got := s.KeySet(t).Len(); got != 1 {
		t.Errorf("key set has %d keys after a refused rotation, want 1", got)
	}
}

// TestReplicasStartingTogether builds replicas on an empty store at the
// same moment: they must agree on one first key.
func TestReplicasStartingTogether(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		log := slog.New(slog.DiscardHandler)
		cfg := authsvctest.Config()
		const replicas = 3
		docs := make([]string, replicas)
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() {
				st, err := store.Open(ctx, dsn, log)
				if err != nil {
					errs[i] = err
					return
				}
				defer st.Close()
				svc, err := authsvc.New(ctx, cfg, st, log)
				if err != nil {
					errs[i] = err
					return
				}
				resp, err := svc.GetKeySet(ctx, &authv1.GetKeySetRequest{})
				docs[i], errs[i] = resp.GetJwksJson(), err
			})
		}
		wg.Wait()
		for i := range replicas {
			if errs[i] != nil {
				t.Fatalf("replica %d: %v", i, errs[i])
			}
			ks, err := token.ParseKeySet([]byte(docs[i]))
			if err != nil || ks.Len() != 1 || docs[i] != docs[0] {
				t.Errorf("replica %d publishes %s (%v), replica 0 %s", i, docs[i], err, docs[0])
			}
		}
	})
}

// TestRotationBounded: RotateSigningKey is limited per hour across
// replicas, and never grows the key set past what consumers accept.
func TestRotationBounded(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		t.Parallel()
		dsn := t.TempDir() + "/authsvc.db"
		a, b := startPair(t, dsn, func(c *authsvc.Config) { c.KeyRotationLimit = 2 })
		admin := authsvctest.WithToken(t.Context(), a.AdminToken(t))
		for i, s := range []*authsvctest.Server{a, b, a} {
			_, err := s.Client.RotateSigningKey(admin, &authv1.RotateSigningKeyRequest{})
			want := codes.OK
			if i == 2 {
				want = codes.ResourceExhausted
			}
			expect.Code(t, fmt.Sprint("rotation ", i+1, " (limit 2 per hour, across replicas)"), err, want)
			if want == codes.ResourceExhausted {
				if d := retryDelay(t, err); d <= 0 || d > time.Hour {
					t.Errorf("retry delay %v", d)
				}
			}
		}
	})
	t.Run("cap", func(t *testing.T) {
		t.Parallel()
		s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.KeyRotationLimit = 1000 }})
		admin := authsvctest.WithToken(t.Context(), s.AdminToken(t))
		refused := 0
		for range token.MaxKeys + 10 {
			_, err := s.Client.RotateSigningKey(admin, &authv1.RotateSigningKeyRequest{})
			switch status.Code(err) {
			case codes.OK:
			case codes.ResourceExhausted:
				refused++
				retryDelay(t, err)
			default:
				t.Fatalf("RotateSigningKey: %v", err)
			}
		}
		resp, err := s.Client.GetKeySet(t.Context(), &authv1.GetKeySetRequest{})
		if err != nil {
			t.Fatal(err)
		}
		set, err := token.ParseKeySet([]byte(resp.GetJwksJson()))
		if err != nil {
			t.Fatalf("the key set after %d rotations does not parse as a consumer would: %v", token.MaxKeys+10, err)
		}
		if refused == 0 || set.Len() > token.MaxKeys || len(resp.GetJwksJson()) > token.MaxKeySetSize {
			t.Errorf("%d rotations refused; key set of %d keys, %d bytes (consumers accept %d keys, %d bytes)",
				refused, set.Len(), len(resp.GetJwksJson()), token.MaxKeys, token.MaxKeySetSize)
		}
	})
}

// TestKeyEncryptionKeyAddedLater: signing keys stored while authsvc ran
// without a key-encryption key are encrypted when it starts with one, and
// keep signing and verifying; a key-encryption key that is not random is
// refused.
func TestKeyEncryptionKeyAddedLater(t *testing.T) {
	forEachStore(t, func(t *testing.T, dsn string) {
		plain := authsvctest.Start(t, authsvctest.Options{DSN: dsn, Configure: func(c *authsvc.Config) { c.KeyEncryptionKey = "" }})
		probe := openProbe(t, dsn)
		_, tok := plain.NewCustomer(t)
		encryption := func() []string {
			var out []string
			rows, err := probe.db.QueryContext(t.Context(), "SELECT private_key_encryption FROM signing_keys")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var e string
				if err := rows.Scan(&e); err != nil {
					t.Fatal(err)
				}
				out = append(out, e)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return out
		}
		if got := encryption(); !slices.Equal(got, []string{"none"}) {
			t.Fatalf("keys stored without a key-encryption key: %v", got)
		}
		sealed := authsvctest.Start(t, authsvctest.Options{DSN: dsn}) // with authsvctest.TestKeyEncryptionKey
		if got := encryption(); !slices.Equal(got, []string{"aes-256-gcm"}) {
			t.Errorf("after a start with a key-encryption key: %v, want every key encrypted", got)
		}
		if _, err := sealed.Client.GetMe(authsvctest.WithToken(t.Context(), tok), &authv1.GetMeRequest{}); err != nil {
			t.Errorf("a token of the re-encrypted key: %v", err)
		}
		_, fresh := sealed.NewCustomer(t)
		if _, err := sealed.Client.GetMe(authsvctest.WithToken(t.Context(), fresh), &authv1.GetMeRequest{}); err != nil {
			t.Errorf("a token signed with the re-encrypted key: %v", err)
		}
	})
	for name, kek := range map[string][]byte{"all zero": make([]byte, 32), "one repeated byte": bytes.Repeat([]byte{7}, 32)} {
		cfg := authsvctest.Config()
		cfg.DSN = "x.db"
		cfg.KeyEncryptionKey = base64.StdEncoding.EncodeToString(kek)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--key-encryption-key") {
			t.Errorf("%s key-encryption key: %v, want an error naming the flag", name, err)
		}
	}
}
