package serve

import "time"

// WithReadinessPollInterval shortens the readiness poll so tests observe
// health changes quickly.
func WithReadinessPollInterval(d time.Duration) Option {
	return func(o *options) { o.pollInterval = d }
}
