package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/faultnet"
)

// Bounds of the slow-reader scenario: catalogsvc's default
// --max-concurrent-streams, and what one stream may hold queued (gRPC's
// per-stream write quota).
const (
	maxConcurrentStreams = 256
	streamWriteQuota     = 64 << 10
)

// slowReader points one client connection, read at 1 KB/s, at a replica
// with no rate limit, and sends it ten times more concurrent ListProducts
// calls than a connection may have streams. The replica's goroutines and
// heap must grow by no more than MaxConcurrentStreams allow, and come back
// once the client leaves.
func (n *netCluster) slowReader(t *testing.T, prof netProfile) {
	addr := n.addReplica("--rate-limit", "0")
	admin := n.adminAddr(addr)
	slow := newProxy(t, addr)
	must(t, slow.Bandwidth(faultnet.Downstream, 1))
	before := scrape(t, admin)

	conn, err := grpc.NewClient(slow.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	catalog := catalogv1.NewCatalogServiceClient(conn)
	calls := 10 * maxConcurrentStreams
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() { _, _ = catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 100}) })
	}
	// The replica's peak while the calls queue behind the slow reader.
	var peak metrics
	for end := time.Now().Add(max(prof.window, 3*time.Second)); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		m := scrape(t, admin)
		peak.goroutines = max(peak.goroutines, m.goroutines)
		peak.heap = max(peak.heap, m.heap)
	}
	cancel()
	wg.Wait()
	conn.Close()
	var after metrics
	expect.Eventually(t, 30*time.Second, "the replica's goroutines to come back after the slow reader left", func() bool {
		after = scrape(t, admin)
		return after.goroutines <= before.goroutines+32
	})
	t.Logf("slow reader (%d calls on one connection read at 1 KB/s): goroutines %d -> peak %d -> %d; heap in use %.1f -> peak %.1f -> %.1f MiB",
		calls, before.goroutines, peak.goroutines, after.goroutines, mib(before.heap), mib(peak.heap), mib(after.heap))
	if grew := peak.goroutines - before.goroutines; grew > maxConcurrentStreams+64 {
		t.Errorf("a slow reader grew the replica's goroutines by %d, bound %d streams", grew, maxConcurrentStreams)
	}
	if grew := peak.heap - before.heap; grew > maxConcurrentStreams*streamWriteQuota+32<<20 {
		t.Errorf("a slow reader grew the replica's heap by %.1f MiB, bound %.1f MiB", mib(grew), mib(maxConcurrentStreams*streamWriteQuota+32<<20))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// metrics are the figures the slow-reader scenario reads from a replica's
// /metrics.
type metrics struct {
	goroutines int64
	heap       int64
}

func scrape(t *testing.T, admin string) metrics {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	var m metrics
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			m.goroutines = int64(v)
		case "go_memstats_heap_inuse_bytes":
			m.heap = int64(v)
		}
	}
	if m.goroutines == 0 || m.heap == 0 {
		t.Fatal(fmt.Errorf("http://%s/metrics has no go_goroutines or go_memstats_heap_inuse_bytes", admin))
	}
	return m
}

// scrapeSum is the sum of the samples of the metric name, at the replica
// whose admin address is admin, whose labels contain label.
func scrapeSum(t *testing.T, admin, name, label string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		series, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(series, name+"{") || !strings.Contains(series, label) {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			sum += v
		}
	}
	return sum
}

// adminAddr is the admin (HTTP) address of the replica at addr.
func (c *testCluster) adminAddr(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicas[addr].Spec.Args[3]
}
