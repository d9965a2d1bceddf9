// Package jwtbench holds only a benchmark: EdDSA JWT signing and
// verification with go-jose v4 (the library internal/token uses) against
// github.com/golang-jwt/jwt/v5, the evidence behind that choice.
//
// It is a module of its own so that golang-jwt, which no service uses,
// stays out of the services' go.mod. From this directory:
//
//	go test -run '^$' -bench .
package jwtbench
