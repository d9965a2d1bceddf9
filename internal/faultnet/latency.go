package faultnet

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"
)

// latencyType names fineLatency in Toxiproxy's registry of toxic types.
const latencyType = "faultnet_latency"

// registerLatency adds fineLatency to Toxiproxy's registry, once: the
// registry is Toxiproxy's own, global by its design.
var registerLatency = sync.OnceFunc(func() { toxics.Register(latencyType, new(fineLatency)) })

// fineLatency is Toxiproxy's latency toxic with microsecond resolution: its
// own counts whole milliseconds, too coarse for a database a fraction of a
// millisecond away. Each chunk of data is held until latency ± jitter after
// it was read, chunks in order.
type fineLatency struct {
	Latency int64 `json:"latency_us"`
	Jitter  int64 `json:"jitter_us"`
}

// GetBufferSize lets data queue behind the delayed chunk, as Toxiproxy's
// latency toxic does, so that the delay is added once rather than to every
// chunk in a row.
func (t *fineLatency) GetBufferSize() int { return 1024 }

func (t *fineLatency) delay() time.Duration {
	d := t.Latency
	if t.Jitter > 0 {
		d += rand.Int64N(2*t.Jitter) - t.Jitter // #nosec G404 -- timing noise, not a secret
	}
	return time.Duration(d) * time.Microsecond
}

// Pipe forwards each chunk once its delay has passed.
func (t *fineLatency) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			timer := time.NewTimer(t.delay() - time.Since(c.Timestamp))
			select {
			case <-timer.C:
				stub.Output <- c
			case <-stub.Interrupt:
				timer.Stop()
				stub.Output <- c // removed: pass it on at once rather than drop it
				return
			}
		}
	}
}
