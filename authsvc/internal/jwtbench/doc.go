// Package jwtbench holds only a benchmark: EdDSA JWT signing and
// verification with go-jose v4 (the library internal/token uses) against
// github.com/golang-jwt/jwt/v5, the evidence behind that choice.
//
//	go test -run '^$' -bench . ./authsvc/internal/jwtbench
package jwtbench
