package abuse

import (
	"io"
	"time"
)

// Options configure a Run. Zero values take the defaults.
type Options struct {
	// Duration is the length of the flood. Default 60s.
	Duration time.Duration
	// Warmup is how long every kind of traffic runs before the "before"
	// readings, so that the processes' memory has reached its level under
	// such traffic and what grows during the flood is state. Default 20s.
	Warmup time.Duration
	// Cycles bounds the refresh-and-reuse cycles of the churn: refreshes
	// accepted, each of whose spent tokens is replayed once. Default 20000.
	Cycles int
	// BinDir holds prebuilt authsvc and catalogsvc binaries; empty builds
	// them into a temporary directory.
	BinDir string
	// Progress receives a line per phase; nil discards.
	Progress io.Writer
	// ProcessLog receives the services' output; nil discards.
	ProcessLog io.Writer
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = 60 * time.Second
	}
	if o.Warmup <= 0 {
		o.Warmup = 20 * time.Second
	}
	if o.Cycles <= 0 {
		o.Cycles = 20000
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.ProcessLog == nil {
		o.ProcessLog = io.Discard
	}
	return o
}
