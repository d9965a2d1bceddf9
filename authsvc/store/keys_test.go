package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/store"
)

func TestSigningKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		a, b := open(), open()
		key := func(id string, created time.Duration) authsvc.StoredKey {
			return authsvc.StoredKey{ID: id, PublicKey: []byte("pub-" + id), PrivateKey: []byte("priv-" + id),
				Encryption: "none", CreateTime: t0.Add(created), ActivateTime: t0.Add(created + time.Minute)}
		}
		if err := a.AddSigningKey(ctx, key("k1", 0), ""); err != nil {
			t.Fatal(err)
		}
		if err := b.AddSigningKey(ctx, key("k1b", 0), ""); !errors.Is(err, authsvc.ErrConflict) {
			t.Errorf("second first key = %v, want ErrConflict", err)
		}
		if err := b.AddSigningKey(ctx, key("k2", time.Hour), "stale"); !errors.Is(err, authsvc.ErrConflict) {
			t.Errorf("add after a stale newest = %v, want ErrConflict", err)
		}

		// Two replicas rotating at once: one key is added.
		errs := make([]error, 6)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				s := []*store.Store{a, b}[i%2]
				errs[i] = s.AddSigningKey(ctx, key(fmt.Sprint("k2-", i), time.Hour), "k1")
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
			} else if !errors.Is(err, authsvc.ErrConflict) {
				t.Errorf("AddSigningKey: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d concurrent rotations won, want 1", wins)
		}
		keys, newest, err := b.SigningKeys(ctx)
		if err != nil || len(keys) != 2 || keys[0].ID != "k1" || newest != keys[1].ID {
			t.Fatalf("SigningKeys = %+v, newest %q, %v", keys, newest, err)
		}
		k := keys[0]
		if !bytes.Equal(k.PublicKey, []byte("pub-k1")) || !bytes.Equal(k.PrivateKey, []byte("priv-k1")) || k.Encryption != "none" ||
			!k.CreateTime.Equal(t0) || !k.ActivateTime.Equal(t0.Add(time.Minute)) {
			t.Errorf("stored key = %+v", k)
		}
		// A replica whose clock is behind adds a key created "earlier": it
		// is still the newest, the one the next rotation must name.
		if err := a.AddSigningKey(ctx, key("k3", -time.Hour), newest); err != nil {
			t.Fatal(err)
		}
		if _, got, _ := b.SigningKeys(ctx); got != "k3" {
			t.Errorf("newest after a skewed rotation = %q, want k3", got)
		}
		if err := b.AddSigningKey(ctx, key("k4", 2*time.Hour), "k3"); err != nil {
			t.Errorf("rotation after a skewed one: %v", err)
		}
		newest = "k4"
		all, _, _ := a.SigningKeys(ctx)
		var ids []string
		for _, k := range all {
			ids = append(ids, k.ID)
		}
		if err := a.DeleteSigningKeys(ctx, ids); err != nil {
			t.Fatal(err)
		}
		if keys, _, _ := a.SigningKeys(ctx); len(keys) != 1 || keys[0].ID != newest {
			t.Errorf("after delete: %+v, want only the newest key %s", keys, newest)
		}
	})
}

// TestResealSigningKey: a key's sealed private key is replaced only while
// it is still sealed the way the caller saw it.
func TestResealSigningKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() *store.Store) {
		ctx := t.Context()
		a, b := open(), open()
		k := authsvc.StoredKey{ID: "k1", PublicKey: []byte("pub"), PrivateKey: []byte("plain"), Encryption: "none", CreateTime: t0, ActivateTime: t0}
		if err := a.AddSigningKey(ctx, k, ""); err != nil {
			t.Fatal(err)
		}
		if err := a.ResealSigningKey(ctx, "k1", "none", []byte("sealed"), "aes-256-gcm"); err != nil {
			t.Fatal(err)
		}
		if err := b.ResealSigningKey(ctx, "k1", "none", []byte("sealed again"), "aes-256-gcm"); !errors.Is(err, authsvc.ErrConflict) {
			t.Errorf("second reseal from none = %v, want ErrConflict", err)
		}
		if err := b.ResealSigningKey(ctx, "nope", "none", []byte("x"), "aes-256-gcm"); !errors.Is(err, authsvc.ErrConflict) {
			t.Errorf("reseal of an unknown key = %v, want ErrConflict", err)
		}
		keys, _, err := b.SigningKeys(ctx)
		if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].PrivateKey, []byte("sealed")) || keys[0].Encryption != "aes-256-gcm" {
			t.Errorf("after reseal: %+v, %v", keys, err)
		}
	})
}
