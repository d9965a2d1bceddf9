module github.com/tokencart/tokencart/bench/jwtbench

go 1.26.0

toolchain go1.27.3

require (
	github.com/go-jose/go-jose/v4 v4.1.9
	github.com/golang-jwt/jwt/v5 v5.3.1
)
