package abuse

import "testing"

func TestMetricValue(t *testing.T) {
	t.Parallel()
	const text = `# HELP tokencart_authsvc_revocations_total Revocations.
# TYPE tokencart_authsvc_revocations_total counter
tokencart_authsvc_revocations_total{kind="account"} 2
tokencart_authsvc_revocations_total{kind="session"} 17
tokencart_auth_revocation_entries 5
tokencart_auth_revocation_entries_extra 9
go_memstats_heap_inuse_bytes 1.2345e+07
`
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
		ok     bool
	}{
		{"tokencart_authsvc_revocations_total", []string{`kind="session"`}, 17, true},
		{"tokencart_authsvc_revocations_total", nil, 19, true},
		{"tokencart_authsvc_revocations_total", []string{`kind="token"`}, 0, false},
		{"tokencart_auth_revocation_entries", nil, 5, true},
		{"go_memstats_heap_inuse_bytes", nil, 12345000, true},
		{"go_memstats_heap", nil, 0, false},
	} {
		got, ok := metricValue(text, tt.name, tt.labels...)
		if got != tt.want || ok != tt.ok {
			t.Errorf("metricValue(%s, %v) = %v, %v; want %v, %v", tt.name, tt.labels, got, ok, tt.want, tt.ok)
		}
	}
}
