// Package bench drives tokencart's services, started as real processes on
// loopback, with a closed-loop load generator built on the generated gRPC
// stubs, and reports throughput, latency percentiles, CPU per call and the
// ratios the performance goals are set on. Scenarios run interleaved over
// several rounds and are summarised by their medians. cmd/tokencart-bench
// is the command behind `make bench`; RESULTS.md records a run.
package bench
