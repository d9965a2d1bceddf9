package grpcauth

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the validator's metrics, read from Status: its
// Guard's, and in local mode the key-set fetches and the revocation feed's
// state (alert on tokencart_auth_revocation_feed_stale == 1: the replica
// then checks every token by its stale policy).
func (v *Validator) Collectors() []prometheus.Collector {
	cs := append(v.guard.Collectors(), v.foreign.collectors()...)
	lookups := func(result string, pick func(hits, misses int64) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokencart_auth_token_cache_lookups_total", ConstLabels: prometheus.Labels{"result": result},
			Help: "Lookups in the caches of checked tokens (local verification, introspection, trusted issuers), by result: hit or miss.",
		}, func() float64 { return float64(pick(v.cacheLookups())) })
	}
	cs = append(cs,
		lookups("hit", func(h, _ int64) int64 { return h }),
		lookups("miss", func(_, m int64) int64 { return m }))
	if v.local == nil {
		return cs
	}
	gauge := func(name, help string, f func(Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(v.Status()) })
	}
	counter := func(name, help string, f func(Status) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(v.Status())) })
	}
	return append(cs,
		gauge("tokencart_auth_revocation_entries",
			"Revocation entries held: accounts with revocations plus their session and token entries.",
			func(s Status) float64 { return float64(s.Revocations) }),
		gauge("tokencart_auth_revocation_set_complete",
			"1 while the revocation set holds the whole state; 0 before its first replay, or after it overflowed.",
			func(s Status) float64 { return boolValue(s.FeedComplete) }),
		gauge("tokencart_auth_revocation_feed_stale",
			"1 while tokens are checked by the stale policy because the revocation feed is silent or incomplete.",
			func(s Status) float64 { return boolValue(s.Stale) }),
		gauge("tokencart_auth_revocation_feed_last_message_timestamp_seconds",
			"When the revocation feed last delivered a revocation or heartbeat (0 before the first).",
			func(s Status) float64 {
				if s.FeedLastMessage.IsZero() {
					return 0
				}
				return float64(s.FeedLastMessage.UnixNano()) / 1e9
			}),
		counter("tokencart_auth_keyset_fetches_total", "Key-set fetches from authsvc attempted.",
			func(s Status) int64 { return s.KeyFetches }),
		counter("tokencart_auth_keyset_fetch_failures_total", "Key-set fetches from authsvc that failed.",
			func(s Status) int64 { return s.KeyFetchFailures }),
	)
}

// cacheLookups sums the hits and misses of v's token caches.
func (v *Validator) cacheLookups() (hits, misses int64) {
	caches := []*tokenCache{}
	if v.local != nil {
		caches = append(caches, v.local.cache)
	}
	if v.intro != nil {
		caches = append(caches, v.intro.cache)
	}
	if v.foreign != nil {
		caches = append(caches, v.foreign.cache)
	}
	for _, c := range caches {
		h, m := c.lookups()
		hits, misses = hits+h, misses+m
	}
	return hits, misses
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
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

// collectors returns, per trusted issuer, whether its keys are loaded and
// its key-set fetches (alert on tokencart_auth_issuer_keyset_loaded == 0:
// that issuer's tokens are refused with Unavailable).
func (f *foreignAuthenticator) collectors() []prometheus.Collector {
	if f == nil {
		return nil
	}
	var cs []prometheus.Collector
	for _, iss := range f.issuers.Issuers() {
		labels := prometheus.Labels{"issuer": iss.Name()}
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tokencart_auth_issuer_keyset_loaded", ConstLabels: labels,
				Help: "1 once a trusted issuer's key set has been fetched; 0 while its tokens cannot be checked.",
			}, func() float64 { return boolValue(iss.Loaded()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "tokencart_auth_issuer_keyset_fetches_total", ConstLabels: labels,
				Help: "Discovery and JWKS fetches from a trusted issuer attempted.",
			}, func() float64 { n, _ := iss.Fetches(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "tokencart_auth_issuer_keyset_fetch_failures_total", ConstLabels: labels,
				Help: "Discovery and JWKS fetches from a trusted issuer that failed.",
			}, func() float64 { _, n := iss.Fetches(); return float64(n) }),
		)
	}
	return cs
}
