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

// RefusalLogInterval is the least time between two logged refusals.
const RefusalLogInterval = refusalLogInterval
