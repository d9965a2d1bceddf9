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

// collectors returns the key manager's metrics: when the key this replica
// signs with became active, and the configured rotation interval, so that
// one alert rule (signing key older than 1.5 rotation intervals: rotation
// has stalled) holds for any --key-rotation-interval.
func (m *keyManager) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokencart_authsvc_signing_key_activated_timestamp_seconds",
			Help: "When the key this replica signs with became active (0 while it has none).",
		}, func() float64 {
			t := m.ring.Load().activated
			if t.IsZero() {
				return 0
			}
			return float64(t.UnixNano()) / 1e9
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokencart_authsvc_key_rotation_interval_seconds",
			Help: "How often a new signing key is created (--key-rotation-interval).",
		}, func() float64 { return m.rotateEvery.Seconds() }),
	}
}
