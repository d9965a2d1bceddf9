package bench

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/tokencart/tokencart/internal/faultnet"
)

// postgresVia returns dsn pointed at a faultnet proxy in front of its
// server, adding Options.PostgresLatency each way, when Options.PostgresProxy
// asks for one: PostgreSQL a network hop away rather than on the same
// cores at zero distance. The proxy starts on first use; close stops it.
func (e *env) postgresVia(dsn string) (string, error) {
	if !e.opts.PostgresProxy {
		return dsn, nil
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "", errors.New("postgres: invalid DSN")
	}
	if e.pgProxy == nil {
		p, err := faultnet.Listen("127.0.0.1:0", u.Host)
		if err != nil {
			return "", fmt.Errorf("postgres proxy: %w", err)
		}
		if e.opts.PostgresLatency > 0 {
			if err := p.Latency(faultnet.Both, e.opts.PostgresLatency, 0); err != nil {
				p.Close()
				return "", fmt.Errorf("postgres proxy: %w", err)
			}
		}
		e.pgProxy = p
	}
	u.Host = e.pgProxy.Addr()
	return u.String(), nil
}
