// Package faultnet puts a fault-injecting TCP proxy between two tiers, so
// that tests and benchmarks can show what the services do when the network
// is slow, jittery, stalled, reset or cut rather than merely absent.
//
// Each Proxy is a Toxiproxy proxy (github.com/Shopify/toxiproxy/v2) run in
// the calling process: no toxiproxy server, no HTTP API. Faults are
// Toxiproxy toxics added to the proxy's connections, present and future,
// and Heal removes them all. Directions are named from the client's side:
// Upstream is what the client sends, Downstream what it receives.
package faultnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Direction is the way data flows through a proxy.
type Direction int

// The directions a toxic applies to.
const (
	// Upstream is client to server.
	Upstream Direction = 1 << iota
	// Downstream is server to client.
	Downstream
	// Both is both ways.
	Both = Upstream | Downstream
)

func (d Direction) streams() []string {
	var out []string
	if d&Upstream != 0 {
		out = append(out, "upstream")
	}
	if d&Downstream != 0 {
		out = append(out, "downstream")
	}
	return out
}

// Proxy relays TCP connections from Addr to an upstream address, with the
// faults its methods add.
type Proxy struct {
	proxy *toxiproxy.Proxy

	mu   sync.Mutex // guards next, the counter naming toxics
	next int
}

// Listen starts a proxy on listen (host:port; port 0 picks one) that relays
// to upstream. Close stops it.
func Listen(listen, upstream string) (*Proxy, error) {
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(server, "faultnet-"+upstream, listen, upstream)
	nop := zerolog.Nop()
	p.Logger = &nop
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("faultnet: listen on %s: %w", listen, err)
	}
	return &Proxy{proxy: p}, nil
}

// Addr is the address clients dial instead of upstream's.
func (p *Proxy) Addr() string {
	p.proxy.Lock()
	defer p.proxy.Unlock()
	return p.proxy.Listen
}

// Upstream is the address the proxy relays to.
func (p *Proxy) Upstream() string { return p.proxy.Upstream }

// Close stops listening and closes every relayed connection.
func (p *Proxy) Close() { p.proxy.Stop() }

// Disconnect makes the upstream unreachable at once: the proxy stops
// listening (new connections are refused) and closes every connection it
// relays, as when the far side's host goes away and its kernel answers.
func (p *Proxy) Disconnect() { p.proxy.Stop() }

// Reconnect listens again, on the same address, after Disconnect.
func (p *Proxy) Reconnect() error {
	if err := p.proxy.Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
		return fmt.Errorf("faultnet: listen again on %s: %w", p.Addr(), err)
	}
	return nil
}

// Latency delays data in dir by latency, plus or minus up to jitter, to
// the microsecond.
func (p *Proxy) Latency(dir Direction, latency, jitter time.Duration) error {
	registerLatency()
	return p.add(dir, latencyType, map[string]int64{"latency_us": latency.Microseconds(), "jitter_us": jitter.Microseconds()})
}

// Bandwidth limits data in dir to kbps kilobytes a second.
func (p *Proxy) Bandwidth(dir Direction, kbps int64) error {
	return p.add(dir, "bandwidth", map[string]int64{"rate": kbps})
}

// Stall stops data in dir without closing anything: bytes sent are
// dropped, no FIN or RST reaches either end, as when a link or a host
// vanishes silently. With closeAfter > 0 the proxy closes the connection
// once it has been stalled that long; 0 stalls it forever. Stalling one
// direction cuts that direction alone. Data dropped while stalled is lost,
// so a connection that was used meanwhile is usually broken after Heal.
func (p *Proxy) Stall(dir Direction, closeAfter time.Duration) error {
	return p.add(dir, "timeout", map[string]int64{"timeout": closeAfter.Milliseconds()})
}

// ResetPeer closes connections with a TCP RST (SO_LINGER 0) once data has
// flowed in dir, after the delay.
func (p *Proxy) ResetPeer(dir Direction, after time.Duration) error {
	return p.add(dir, "reset_peer", map[string]int64{"timeout": after.Milliseconds()})
}

// Heal removes every toxic: data flows again on the connections still open
// and on new ones.
func (p *Proxy) Heal() {
	p.proxy.Toxics.ResetToxics(context.Background())
}

func (p *Proxy) add(dir Direction, typ string, attrs map[string]int64) error {
	for _, stream := range dir.streams() {
		p.mu.Lock()
		p.next++
		name := fmt.Sprintf("%s-%s-%d", typ, stream, p.next)
		p.mu.Unlock()
		body, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
		if err != nil {
			return fmt.Errorf("faultnet: %s toxic: %w", typ, err)
		}
		if _, err := p.proxy.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("faultnet: %s toxic: %w", typ, err)
		}
	}
	return nil
}
