package grpcauth

import "github.com/tokencart/tokencart/internal/token"

// The revocation feed, for tests that drive it without a Validator.
type (
	Revocations       = revocationFeed
	RevocationsConfig = revocationFeedConfig
)

var NewRevocations = newRevocationFeed

// Revoked reports whether v's revocation set revokes c's token.
func (v *Validator) Revoked(c token.Claims) bool { return v.revs.Revoked(c) }

// NewValidator builds a Validator over a connection of the test's own.
var NewValidator = newValidator
