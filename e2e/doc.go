// Package e2e runs tokencart the way users do — authsvc and several
// catalogsvc replicas as separate processes on loopback addresses — and
// checks the claims the project exists to make: replicas are
// interchangeable, so scaling, crashes and key rotation lose no cart update
// and log nobody out.
package e2e
