package sqldbtest

import (
	"net/url"
	"testing"

	"github.com/tokencart/tokencart/internal/faultnet"
)

// Proxy puts a fault-injecting proxy between the service under test and the
// PostgreSQL server dsn names, and returns it with the same DSN pointed at
// it: the test can then cut, stall or slow the service's database link. The
// proxy closes when the test ends.
func Proxy(tb testing.TB, dsn string) (*faultnet.Proxy, string) {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		tb.Fatalf("sqldbtest: a proxy needs a postgres:// URL with a host")
	}
	p, err := faultnet.Listen("127.0.0.1:0", u.Host)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	u.Host = p.Addr()
	return p, u.String()
}

// Reconnect is p.Reconnect, failing the test on error.
func Reconnect(tb testing.TB, p *faultnet.Proxy) {
	tb.Helper()
	if err := p.Reconnect(); err != nil {
		tb.Fatal(err)
	}
}
