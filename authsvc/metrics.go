package authsvc

import "github.com/prometheus/client_golang/prometheus"

// metrics are authsvc's own Prometheus metrics, beside the gRPC server's.
type metrics struct {
	// revocations counts revocation entries recorded, by kind: session,
	// account, token (single access tokens, which are limited).
	revocations *prometheus.CounterVec
	// limited counts calls refused by a limit, by limit.
	limited *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokencart_authsvc_revocations_total",
			Help: "Revocations recorded by this replica, by kind (session, account, token).",
		}, []string{"kind"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokencart_authsvc_limited_calls_total",
			Help: "Calls refused with RESOURCE_EXHAUSTED by one of authsvc's limits, by limit.",
		}, []string{"limit"}),
	}
}

// collectors returns the metrics to register.
func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.revocations, m.limited}
}
