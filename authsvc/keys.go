package authsvc

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencart/tokencart/internal/token"
)

// How a stored private key is sealed.
const (
	encryptionNone   = "none"
	encryptionAESGCM = "aes-256-gcm"
)

// errNoSigningKey means the replica has no active signing key loaded: the
// store has been unreachable since start, or every key failed to decrypt.
var errNoSigningKey = errors.New("no active signing key")

// maxRotatedKeys is the most keys that may be published when
// RotateSigningKey adds one: a few below token.MaxKeys, the most a
// consumer accepts, so that scheduled rotations always have room.
const maxRotatedKeys = token.MaxKeys - 4

// keyManager owns the signing keys of one replica: it loads them from the
// store, rotates them (one replica at a time, by compare-and-set in the
// store), withdraws the old ones, and answers with the current signer and
// published key set.
//
// A key's life, all times derived from what is stored so every replica
// agrees:
//
//	create_time          published in the JWKS of every replica (at its next reload)
//	activate_time        = create_time + publishDelay: may sign
//	signer_until         = the next key's activate_time: signs no more
//	withdraw_time        = signer_until + retention: leaves the JWKS, deleted
//
// publishDelay is at least the reload interval plus the JWKS max-age, so
// every consumer that follows the cache headers holds a key before the
// first token it signed. retention is the token lifetime plus the maximum
// leeway plus the JWKS max-age plus two reload intervals (a replica may sign
// with the old key until its next reload after signer_until), so a key
// stays published until every token it signed has expired, and a consumer
// that fetched the key set just before the withdrawal and caches it for the
// max-age is still within that margin. The first key ever created activates
// at once: no consumer can hold an older key set then.
type keyManager struct {
	store        KeyStore
	aead         cipher.AEAD // nil: private keys are stored unencrypted
	publishDelay time.Duration
	rotateEvery  time.Duration
	retention    time.Duration
	now          func() time.Time
	log          *slog.Logger

	ring atomic.Pointer[keyRing]
	// mu serialises this replica's reloads and rotations, each from its
	// read of the store to the install of its snapshot, so that an older
	// snapshot never replaces a newer one. The store serialises the
	// rotations of different replicas.
	mu sync.Mutex
}

// keyRing is an immutable snapshot of the keys, computed at a reload.
type keyRing struct {
	signer    *token.SigningKey // nil when none is active
	activated time.Time         // signer's activate time; zero when signer is nil
	set       *token.KeySet     // the published keys
	jwks      []byte            // set as a JWKS document
}

func newKeyManager(store KeyStore, kek []byte, cfg *Config, now func() time.Time, log *slog.Logger) (*keyManager, error) {
	m := &keyManager{
		store:        store,
		publishDelay: cfg.KeyPublishDelay,
		rotateEvery:  cfg.KeyRotationInterval,
		retention:    cfg.keyRetention(),
		now:          now,
		log:          log,
	}
	if kek != nil {
		block, err := aes.NewCipher(kek)
		if err != nil {
			return nil, fmt.Errorf("key encryption key: %w", err)
		}
		if m.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("key encryption key: %w", err)
		}
	}
	m.ring.Store(&keyRing{set: token.NewKeySet(nil), jwks: []byte(`{"keys":[]}`)})
	return m, nil
}

// Key implements token.KeyLookup over the published keys.
func (m *keyManager) Key(kid string) (ed25519.PublicKey, bool) {
	return m.ring.Load().set.Key(kid)
}

// signer returns the key to sign with now.
func (m *keyManager) signer() (token.SigningKey, error) {
	if s := m.ring.Load().signer; s != nil {
		return *s, nil
	}
	return token.SigningKey{}, errNoSigningKey
}

// jwks returns the published key set as a JWKS document.
func (m *keyManager) jwks() []byte { return m.ring.Load().jwks }

// refresh reloads the keys, creating the first one or rotating when due,
// deletes withdrawn keys and installs the new snapshot.
func (m *keyManager) refresh(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys, newestID, err := m.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	now := m.now()
	// A key is added to an empty store, and when the newest is due (unless
	// consumers would refuse the key set it makes).
	i := slices.IndexFunc(keys, func(k StoredKey) bool { return k.ID == newestID })
	switch live, _ := m.published(keys, now); {
	case i >= 0 && now.Before(keys[i].CreateTime.Add(m.rotateEvery)):
	case live >= token.MaxKeys:
		m.log.WarnContext(ctx, "scheduled key rotation skipped: the key set holds as many keys as consumers accept", "keys", live)
	default:
		keys, _, err = m.add(ctx, newestID, now)
	}
	if err != nil {
		return err
	}
	return m.install(ctx, keys, now)
}

// rotate adds a new key now, whatever the schedule, and returns it. It
// refuses while maxRotatedKeys keys are published, saying when the next
// one is withdrawn.
func (m *keyManager) rotate(ctx context.Context) (StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range 5 {
		keys, prev, err := m.store.SigningKeys(ctx)
		if err != nil {
			return StoredKey{}, fmt.Errorf("load signing keys: %w", err)
		}
		now := m.now()
		if live, next := m.published(keys, now); live >= maxRotatedKeys {
			return StoredKey{}, limited(fmt.Sprintf("the key set holds %d keys, as many as rotation may publish", live), next.Sub(now))
		}
		keys, added, err := m.add(ctx, prev, now)
		if err != nil {
			return StoredKey{}, err
		}
		if added.ID != "" {
			if err := m.install(ctx, keys, now); err != nil {
				return StoredKey{}, err
			}
			return added, nil
		}
	}
	return StoredKey{}, fmt.Errorf("rotate: %w: other replicas kept rotating", ErrConflict)
}

// add creates a key and stores it as the newest if the newest is still
// prevID, then returns the stored keys and the key added. Losing the race
// to another replica is not an error: the returned keys then hold the other
// replica's key, and added is zero.
func (m *keyManager) add(ctx context.Context, prevID string, now time.Time) (keys []StoredKey, added StoredKey, err error) {
	k, err := token.GenerateSigningKey()
	if err != nil {
		return nil, StoredKey{}, err
	}
	now = now.Truncate(time.Microsecond) // the store's precision
	activate := now.Add(m.publishDelay)
	if prevID == "" {
		activate = now
	}
	sk := StoredKey{ID: k.ID, PublicKey: k.Public(), CreateTime: now, ActivateTime: activate}
	if sk.PrivateKey, sk.Encryption, err = m.seal(k); err != nil {
		return nil, StoredKey{}, err
	}
	switch err := m.store.AddSigningKey(ctx, sk, prevID); {
	case err == nil:
		added = sk
		added.PrivateKey = nil
		m.log.InfoContext(ctx, "signing key created", "kid", k.ID, "activate_time", activate)
	case errors.Is(err, ErrConflict):
		// Another replica rotated first; its key will do.
	default:
		return nil, StoredKey{}, fmt.Errorf("store signing key: %w", err)
	}
	if keys, _, err = m.store.SigningKeys(ctx); err != nil {
		return nil, StoredKey{}, fmt.Errorf("load signing keys: %w", err)
	}
	return keys, added, nil
}

// published returns how many of keys, sorted by activate time, are
// published at now (not withdrawn), and when the next of them is withdrawn
// (now if none will be).
func (m *keyManager) published(keys []StoredKey, now time.Time) (int, time.Time) {
	live, next := 0, time.Time{}
	for i := range keys {
		if i+1 < len(keys) {
			withdraw := keys[i+1].ActivateTime.Add(m.retention)
			if !now.Before(withdraw) {
				continue
			}
			if next.IsZero() || withdraw.Before(next) {
				next = withdraw
			}
		}
		live++
	}
	if next.IsZero() {
		next = now
	}
	return live, next
}

// encryptStored seals under the key-encryption key every stored private
// key that is stored unencrypted: keys created before a key-encryption key
// was configured. Without a key-encryption key it does nothing.
func (m *keyManager) encryptStored(ctx context.Context) error {
	if m.aead == nil {
		return nil
	}
	keys, _, err := m.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	n := 0
	for _, k := range keys {
		if k.Encryption != encryptionNone {
			continue
		}
		priv, err := m.open(k)
		if err != nil {
			return err
		}
		sealed, enc, err := m.seal(token.SigningKey{ID: k.ID, Private: priv})
		if err != nil {
			return err
		}
		switch err := m.store.ResealSigningKey(ctx, k.ID, encryptionNone, sealed, enc); {
		case errors.Is(err, ErrConflict):
			// Another replica starting with the same key did it first.
		case err != nil:
			return fmt.Errorf("encrypt stored signing key %s: %w", k.ID, err)
		default:
			n++
		}
	}
	if n > 0 {
		m.log.WarnContext(ctx, "signing keys that were stored unencrypted are now encrypted with --key-encryption-key; "+
			"copies of the plaintext may remain in database backups and free pages until they are vacuumed", "keys", n)
	}
	return nil
}

// install computes the snapshot for now from keys, sorted by activate time,
// installs it and deletes the withdrawn keys.
func (m *keyManager) install(ctx context.Context, keys []StoredKey, now time.Time) error {
	if len(keys) == 0 {
		return errNoSigningKey
	}
	pubs := make(map[string]ed25519.PublicKey, len(keys))
	var signer *token.SigningKey
	var activated time.Time
	var withdrawn []string
	// Rotation never publishes more than token.MaxKeys; should the store
	// hold more live keys (written by an older version), the oldest are left
	// out, since consumers refuse a larger key set altogether.
	live, _ := m.published(keys, now)
	skip := max(0, live-token.MaxKeys)
	if skip > 0 {
		m.log.ErrorContext(ctx, "more live signing keys than consumers accept; publishing the newest only", "keys", live, "max", token.MaxKeys)
	}
	for i, k := range keys {
		if i+1 < len(keys) && !now.Before(keys[i+1].ActivateTime.Add(m.retention)) {
			withdrawn = append(withdrawn, k.ID)
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return fmt.Errorf("signing key %s: bad public key", k.ID)
		}
		pubs[k.ID] = ed25519.PublicKey(k.PublicKey)
		if now.Before(k.ActivateTime) || (i+1 < len(keys) && !now.Before(keys[i+1].ActivateTime)) {
			continue
		}
		priv, err := m.open(k)
		if err != nil {
			return err
		}
		signer = &token.SigningKey{ID: k.ID, Private: priv}
		activated = k.ActivateTime
	}
	set := token.NewKeySet(pubs)
	doc, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("marshal key set: %w", err)
	}
	m.ring.Store(&keyRing{signer: signer, activated: activated, set: set, jwks: doc})
	if len(withdrawn) > 0 {
		if err := m.store.DeleteSigningKeys(ctx, withdrawn); err != nil {
			return fmt.Errorf("delete withdrawn signing keys: %w", err)
		}
		m.log.InfoContext(ctx, "signing keys withdrawn", "kids", withdrawn)
	}
	return nil
}

// seal returns k's private key as stored: AES-256-GCM under the key
// encryption key with a random nonce prefixed and the key id as associated
// data (so a sealed key cannot be moved to another row), or as is when
// there is no key encryption key.
func (m *keyManager) seal(k token.SigningKey) ([]byte, string, error) {
	if m.aead == nil {
		return k.Private.Seed(), encryptionNone, nil
	}
	nonce := make([]byte, m.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return m.aead.Seal(nonce, nonce, k.Private.Seed(), keyAAD(k.ID)), encryptionAESGCM, nil
}

// open reverses seal.
func (m *keyManager) open(k StoredKey) (ed25519.PrivateKey, error) {
	var seed []byte
	switch k.Encryption {
	case encryptionNone:
		seed = k.PrivateKey
	case encryptionAESGCM:
		if m.aead == nil {
			return nil, fmt.Errorf("signing key %s is encrypted: set --key-encryption-key", k.ID)
		}
		ns := m.aead.NonceSize()
		if len(k.PrivateKey) < ns {
			return nil, fmt.Errorf("signing key %s: sealed key too short", k.ID)
		}
		var err error
		if seed, err = m.aead.Open(nil, k.PrivateKey[:ns], k.PrivateKey[ns:], keyAAD(k.ID)); err != nil {
			return nil, fmt.Errorf("signing key %s does not decrypt: wrong --key-encryption-key?", k.ID)
		}
	default:
		return nil, fmt.Errorf("signing key %s: unknown encryption %q", k.ID, k.Encryption)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key %s: bad private key", k.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(k.PublicKey)) {
		return nil, fmt.Errorf("signing key %s: private key does not match public key", k.ID)
	}
	return priv, nil
}

func keyAAD(kid string) []byte { return []byte("tokencart-authsvc signing key " + kid) }
