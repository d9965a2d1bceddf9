package grpcauth

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the validator's metrics: its Guard's, and in local
// mode the revocation set's size and completeness (alert on
// tokencart_auth_revocation_set_complete == 0: the replica then checks
// every token by its stale policy).
func (v *Validator) Collectors() []prometheus.Collector {
	cs := v.guard.Collectors()
	if v.revs == nil {
		return cs
	}
	return append(cs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokencart_auth_revocation_entries",
			Help: "Revocation entries held: accounts with revocations plus their session and token entries.",
		}, func() float64 { return float64(v.revs.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokencart_auth_revocation_set_complete",
			Help: "1 while the revocation set holds the whole state; 0 before its first replay, or after it overflowed.",
		}, func() float64 {
			if v.revs.Complete() {
				return 1
			}
			return 0
		}),
	)
}

// Collectors returns the guard's counts as metrics.
func (g *Guard) Collectors() []prometheus.Collector {
	guard := func(pick func(addr, tok, failed int64) int64) func() float64 {
		return func() float64 { return float64(pick(g.Counts())) }
	}
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokencart_auth_guard_refused_address_total",
			Help: "Token checks refused without a check because the client address failed too many recently.",
		}, guard(func(a, _, _ int64) int64 { return a })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokencart_auth_guard_refused_token_total",
			Help: "Token checks refused without a check because the same token failed moments ago.",
		}, guard(func(_, t, _ int64) int64 { return t })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokencart_auth_failed_checks_total",
			Help: "Token checks (signature or introspection) that ran and failed.",
		}, guard(func(_, _, f int64) int64 { return f })),
	}
}
