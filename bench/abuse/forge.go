package abuse

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/tokencart/tokencart/client"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// The forged-token flood: forgeWorkers callers, each pausing forgePause
// between calls (enough to leave the machine's CPUs to the services).
const (
	forgeWorkers = 4
	forgePause   = time.Millisecond
	// tokenPoolSize bounds the attacker's access tokens kept to forge from.
	tokenPoolSize = 256
)

// tokenPool holds the latest access tokens the attacker obtained; safe
// for concurrent use.
type tokenPool struct {
	mu     sync.Mutex // guards tokens and next
	tokens []string
	next   int // where the next token goes once the pool is full
}

func (p *tokenPool) add(t string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tokens) < tokenPoolSize {
		p.tokens = append(p.tokens, t)
		return
	}
	p.tokens[p.next] = t
	p.next = (p.next + 1) % tokenPoolSize
}

// pick returns a token and, when the pool has two, a different one.
func (p *tokenPool) pick() (a, b string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.tokens)
	if n == 0 {
		return "", "", false
	}
	i, j := mrand.IntN(n), mrand.IntN(n)
	if n > 1 && i == j {
		j = (i + 1) % n
	}
	return p.tokens[i], p.tokens[j], true
}

// forger sends GetCart with forged access tokens to every replica: each
// forgery would cost a replica a signature check but for its guard.
type forger struct {
	carts  []catalogv1.CartServiceClient // one per replica, from attackerSource
	tokens *tokenPool
	counts codeCounts
}

func (f *forger) run(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range forgeWorkers {
		wg.Go(func() {
			for n := w; ctx.Err() == nil; n++ {
				a, b, ok := f.tokens.pick()
				if !ok {
					pause(ctx, forgePause)
					continue
				}
				// Another token's signature makes a forgery only when there
				// is another token: with one, a key id of its own does.
				forged, err := forgeToken(a, b, n%2 == 0 || a == b)
				if err != nil {
					continue // a token the pool should not hold; counted nowhere
				}
				_, err = f.carts[n%len(f.carts)].GetCart(client.WithToken(ctx, forged), &catalogv1.GetCartRequest{})
				if ended(ctx) {
					return
				}
				f.counts.add(err)
				pause(ctx, forgePause)
			}
		})
	}
	wg.Wait()
}

// forgeToken returns a JWS that no key signed. With randomKid, it is
// valid's header, with a key id of its own, its payload and signature; else
// valid's header and payload with other's signature (when other is valid
// itself, the signature is over other content). Both are well formed and
// unique enough that only a signature check, or the guard before it,
// refuses them.
func forgeToken(valid, other string, randomKid bool) (string, error) {
	parts := strings.Split(valid, ".")
	otherParts := strings.Split(other, ".")
	if len(parts) != 3 || len(otherParts) != 3 {
		return "", errors.New("forge: not a compact JWS")
	}
	if !randomKid {
		return parts[0] + "." + parts[1] + "." + otherParts[2], nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", fmt.Errorf("forge: header: %w", err)
	}
	var header map[string]any
	if err := json.Unmarshal(raw, &header); err != nil {
		return "", fmt.Errorf("forge: header: %w", err)
	}
	header["kid"] = rand.Text()
	raw, err = json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("forge: header: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw) + "." + parts[1] + "." + parts[2], nil
}
