package authsvc

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokencart/tokencart/internal/token"
)

// HoldHashSlots takes every password-hashing slot of s, so that any call
// that reaches the hasher waits for one (and, after HashQueueTimeout, fails
// with ResourceExhausted) until release is called. It shows which code
// paths compute a hash: one that answers at once never reached the hasher.
func (s *Service) HoldHashSlots(ctx context.Context) (release func(), err error) {
	var releases []func()
	release = func() {
		for _, r := range releases {
			r()
		}
	}
	for range cap(s.hasher.slots) {
		r, err := s.hasher.acquire(ctx)
		if err != nil {
			release()
			return nil, err
		}
		releases = append(releases, r)
	}
	return release, nil
}

// DummyHash returns the hash that the password of an unknown email is
// checked against.
func (s *Service) DummyHash() string { return s.dummyHash }

// CurrentSigningKey returns the key s signs with now, private half
// included: tests forge tokens signed by it but wrong in one other way, and
// look for its private half in logs.
func (s *Service) CurrentSigningKey() (token.SigningKey, error) { return s.keys.signer() }

// KeyCollectors returns the key manager's metrics.
func (s *Service) KeyCollectors() []prometheus.Collector { return s.keys.collectors() }
