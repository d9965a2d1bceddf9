package e2e_test

import (
	"bytes"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// freePortRange returns the first of n consecutive free TCP ports on host,
// and the n ports 1000 above them (the services' admin ports).
func freePortRange(t *testing.T, host string, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(20000)
		if portsFree(host, base, n) && portsFree(host, base+1000, n) {
			return base
		}
	}
	t.Fatal("no free port range found")
	return 0
}

func portsFree(host string, base, n int) bool {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(base+i)))
		if err != nil {
			return false
		}
		ls = append(ls, l)
	}
	return true
}

// freeAddr returns host:port with a port free right now.
func freeAddr(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// tail keeps the last 64 KiB written to it, for failure messages.
type tail struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - 64<<10; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
