// Package abuse runs the abuse scenario behind `make abuse`: authsvc and two
// catalogsvc replicas started as processes with production defaults, a
// legitimate shopper whose GetCart latency is measured before and during a
// flood, and an attacker on another source address who churns refresh
// tokens (refresh, then replay each spent token to get sessions revoked),
// calls WatchRevocations without a service credential, and sends forged
// access tokens to both replicas. It reads each process's memory, authsvc's
// store size and the revocation state before and after the flood, and
// reports the figures and the goals they are held to as Markdown.
// cmd/tokencart-abuse is the command.
package abuse
