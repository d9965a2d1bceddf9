// Package authsvc is tokencart's identity service: accounts with argon2id
// password hashes, Ed25519-signed access tokens (internal/token) with
// rotating refresh tokens, signing keys that rotate without downtime and
// are published as a JWKS, revocation with a live feed for the services
// that verify tokens on their own, and introspection.
//
// A Service keeps no state of its own that another replica would need: the
// users, refresh tokens, revocations, login throttle counts and signing
// keys live in its Store (package store: SQLite or PostgreSQL), so any
// number of replicas can serve any request. Each replica reloads the keys
// every few seconds and polls the store for revocations recorded by the
// others.
//
// Errors meet gRPC codes once, in Service.rpcError; handlers return either
// a status declared in errors.go or an error that becomes Internal.
package authsvc
