package serve

import "time"

// WithReadinessPollInterval shortens the readiness poll so tests observe
// health changes quickly.
func WithReadinessPollInterval(d time.Duration) Option {
	return func(o *options) { o.pollInterval = d }
}

// CheckUTF8 is the UTF-8 interceptors' check of one request.
var CheckUTF8 = checkUTF8
