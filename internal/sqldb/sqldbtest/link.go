package sqldbtest

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Link is a TCP relay between a service under test and PostgreSQL that the
// test can cut and restore, to show what the service does while its
// database is unreachable.
type Link struct {
	tb     testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewLink starts a relay to the server dsn names and returns the same DSN
// pointed at the relay. The relay stops when the test ends.
func NewLink(tb testing.TB, dsn string) (*Link, string) {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		tb.Fatalf("sqldbtest: link needs a postgres:// URL with a host")
	}
	l := &Link{tb: tb, target: u.Host, conns: map[net.Conn]struct{}{}}
	l.listen("127.0.0.1:0")
	l.addr = l.ln.Addr().String()
	tb.Cleanup(l.Cut)
	u.Host = l.addr
	return l, u.String()
}

// Cut closes the relay's listener and every connection through it: the
// service's open connections fail and new ones are refused.
func (l *Link) Cut() {
	l.mu.Lock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// Restore listens again on the relay's address after Cut.
func (l *Link) Restore() {
	l.tb.Helper()
	l.listen(l.addr)
}

func (l *Link) listen(addr string) {
	l.tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		l.tb.Fatalf("sqldbtest: link listen: %v", err)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	l.wg.Go(func() { l.accept(ln) })
}

func (l *Link) accept(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.tb.Logf("sqldbtest: link accept: %v", err)
			}
			return
		}
		out, err := net.Dial("tcp", l.target)
		if err != nil {
			in.Close()
			continue
		}
		if !l.track(in, out) {
			return
		}
		l.wg.Go(func() { l.pipe(in, out) })
		l.wg.Go(func() { l.pipe(out, in) })
	}
}

// track registers a relayed pair, or closes it if the link was cut
// meanwhile.
func (l *Link) track(in, out net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		in.Close()
		out.Close()
		return false
	}
	l.conns[in], l.conns[out] = struct{}{}, struct{}{}
	return true
}

func (l *Link) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}
