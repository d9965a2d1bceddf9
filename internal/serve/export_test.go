package serve

import "time"

// WithReadinessPollInterval shortens the readiness poll so tests observe
// health changes quickly.
func WithReadinessPollInterval(d time.Duration) Option {
	return func(o *options) { o.pollInterval = d }
}

// WithoutMalformedRequests registers handlers without the wrapper that
// counts malformed requests, so benchmarks can measure what it costs.
func WithoutMalformedRequests() Option {
	return func(o *options) { o.noMalformed = true }
}

// CheckUTF8 is the UTF-8 interceptors' check of one request (with one
// cache of message types for the test binary).
var CheckUTF8 = (&utf8Checker{}).check

// RefusalLogInterval is the least time between two logged refusals.
const RefusalLogInterval = refusalLogInterval
