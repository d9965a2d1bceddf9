package faultnet_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tokencart/tokencart/internal/faultnet"
)

// echoServer answers each line with the same line and reports every line
// it received on got.
func echoServer(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lines := make(chan string, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					lines <- line
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), lines
}

func newProxy(t *testing.T, upstream string) *faultnet.Proxy {
	t.Helper()
	p, err := faultnet.Listen("127.0.0.1:0", upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// exchange sends a line through addr and reads the answer within wait.
func exchange(t *testing.T, addr string, wait time.Duration) (time.Duration, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(wait))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "ping\n" {
		return 0, errors.New("answer differs: " + line)
	}
	return time.Since(start), nil
}

func received(got <-chan string, wait time.Duration) bool {
	select {
	case <-got:
		return true
	case <-time.After(wait):
		return false
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fault  func(p *faultnet.Proxy) error
		wantIn bool // the server receives the line
		check  func(t *testing.T, rtt time.Duration, err error)
	}{
		{"none", func(*faultnet.Proxy) error { return nil }, true, func(t *testing.T, _ time.Duration, err error) {
			if err != nil {
				t.Errorf("exchange: %v", err)
			}
		}},
		{"latency each way", func(p *faultnet.Proxy) error {
			return p.Latency(faultnet.Both, 100*time.Millisecond, 10*time.Millisecond)
		}, true, func(t *testing.T, rtt time.Duration, err error) {
			// Only the lower bound is certain on a busy machine.
			if err != nil || rtt < 180*time.Millisecond {
				t.Errorf("round trip %v, %v; want at least 180 ms", rtt, err)
			}
		}},
		{"latency under a millisecond", func(p *faultnet.Proxy) error {
			return p.Latency(faultnet.Both, 500*time.Microsecond, 0)
		}, true, func(t *testing.T, rtt time.Duration, err error) {
			if err != nil || rtt < time.Millisecond {
				t.Errorf("round trip %v, %v; want at least 1 ms", rtt, err)
			}
		}},
		{"stall both ways", func(p *faultnet.Proxy) error { return p.Stall(faultnet.Both, 0) }, false, wantTimeout},
		{"cut upstream only", func(p *faultnet.Proxy) error { return p.Stall(faultnet.Upstream, 0) }, false, wantTimeout},
		{"cut downstream only", func(p *faultnet.Proxy) error { return p.Stall(faultnet.Downstream, 0) }, true, wantTimeout},
		{"stall then close", func(p *faultnet.Proxy) error { return p.Stall(faultnet.Both, 50*time.Millisecond) }, false,
			func(t *testing.T, _ time.Duration, err error) {
				if !errors.Is(err, io.EOF) {
					t.Errorf("exchange: %v, want EOF once the stall closes the connection", err)
				}
			}},
		{"reset peer", func(p *faultnet.Proxy) error { return p.ResetPeer(faultnet.Upstream, 0) }, false,
			func(t *testing.T, _ time.Duration, err error) {
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("exchange: %v, want connection reset", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			upstream, got := echoServer(t)
			p := newProxy(t, upstream)
			if err := tt.fault(p); err != nil {
				t.Fatal(err)
			}
			rtt, err := exchange(t, p.Addr(), time.Second)
			tt.check(t, rtt, err)
			if in := received(got, 200*time.Millisecond); in != tt.wantIn {
				t.Errorf("server received the line: %v, want %v", in, tt.wantIn)
			}
			p.Heal()
			if _, err := exchange(t, p.Addr(), 5*time.Second); err != nil {
				t.Errorf("after Heal, a new connection: %v", err)
			}
		})
	}
}

func wantTimeout(t *testing.T, _ time.Duration, err error) {
	t.Helper()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("exchange: %v, want no answer and no close (deadline exceeded)", err)
	}
}

func TestBandwidth(t *testing.T) {
	t.Parallel()
	upstream, _ := echoServer(t)
	p := newProxy(t, upstream)
	if err := p.Bandwidth(faultnet.Downstream, 10); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line := make([]byte, 5*1024)
	for i := range line {
		line[i] = 'x'
	}
	line[len(line)-1] = '\n'
	start := time.Now()
	if _, err := c.Write(line); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(line))); err != nil {
		t.Fatal(err)
	}
	// 5 KiB at 10 KB/s: a lower bound, certain however busy the machine.
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("5 KiB at 10 KB/s took %v, want at least 400 ms", took)
	}
}

func TestDisconnectReconnect(t *testing.T) {
	t.Parallel()
	upstream, _ := echoServer(t)
	p := newProxy(t, upstream)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Disconnect()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("open connection after Disconnect: read %v, want it closed", err)
	}
	if _, err := exchange(t, p.Addr(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("new connection after Disconnect: %v, want refused", err)
	}
	if err := p.Reconnect(); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(t, p.Addr(), 5*time.Second); err != nil {
		t.Errorf("after Reconnect: %v", err)
	}
}
