// Package monitoring holds tokencart's monitoring component for kustomize
// (PodMonitors, a PrometheusRule and a Grafana dashboard) and the tests
// that check it: promtool checks and unit-tests the alert rules, the
// component renders with each overlay, and every metric the rules and the
// dashboard name is one the running services export. It has no Go API; it
// is a module of its own so that the Prometheus server's packages (the
// PromQL parser) stay out of the other modules' go.mod.
package monitoring
