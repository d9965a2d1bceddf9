package monitoring_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/catalogsvc/store"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/serve"
)

// startCatalogsvc runs a catalogsvc replica as cmd/catalogsvc does, with
// its flags' defaults (local token checks, carts in the store, the seed
// catalog), on SQLite and free ports, following the authsvc at authAddr.
// It returns once the replica is ready and its revocation feed has spoken.
func startCatalogsvc(t *testing.T, authAddr string) *serve.Server {
	t.Helper()
	cfg := catalogsvc.RegisterFlags(flag.NewFlagSet("catalogsvc", flag.ContinueOnError))
	cfg.Serve.GRPCAddr, cfg.Serve.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Serve.DrainDelay = 0
	cfg.Serve.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.DSN = filepath.Join(t.TempDir(), "catalog.db")
	cfg.Auth.Addr = authAddr
	cfg.Auth.ServiceCredential = authsvctest.TestServiceCredential
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := cfg.Serve.Logger
	st, err := store.Open(ctx, cfg.DSN, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	auth, err := grpcauth.Dial(cfg.Auth, log)
	if err != nil {
		cancel()
		t.Fatal(err, st.Close())
	}
	svc, err := catalogsvc.New(ctx, *cfg, st, auth, log)
	if err != nil {
		cancel()
		t.Fatal(err, auth.Close(), st.Close())
	}
	srv, err := serve.New(cfg.Serve, svc.ServeOptions()...)
	if err != nil {
		cancel()
		t.Fatal(err, auth.Close(), st.Close())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("catalogsvc: %v", err)
		}
		if err := auth.Close(); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		done <- err
		t.Fatalf("catalogsvc did not start: %v", err)
	}
	expect.Eventually(t, 30*time.Second, "catalogsvc's revocation feed to deliver", func() bool {
		return !auth.Status().FeedLastMessage.IsZero()
	})
	return srv
}

// exercise makes calls on both services that bring every series the rules
// and the dashboard read into existence: successful and failing calls
// (handled_total by code, the latency histogram), a revocation, a refused
// token, and a call refused by one of authsvc's limits.
func exercise(t *testing.T, auth *authsvctest.Server, catalogAddr string) {
	t.Helper()
	ctx := t.Context()
	conn, err := grpc.NewClient(catalogAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	catalog, carts := catalogv1.NewCatalogServiceClient(conn), catalogv1.NewCartServiceClient(conn)

	_, tok := auth.NewCustomer(t)
	asCustomer := authsvctest.WithToken(ctx, tok)
	if _, err := catalog.ListProducts(asCustomer, &catalogv1.ListProductsRequest{}); err != nil {
		t.Fatalf("ListProducts: %v", err)
	}
	_, err = carts.AddItem(asCustomer, &catalogv1.AddItemRequest{ProductId: "espresso-blend-1kg", Quantity: 0})
	expect.Code(t, "AddItem of quantity 0", err, codes.InvalidArgument)
	_, err = carts.GetCart(authsvctest.WithToken(ctx, "not-a-token"), &catalogv1.GetCartRequest{})
	expect.Code(t, "GetCart with a bad token", err, codes.Unauthenticated)

	admin := authsvctest.WithToken(ctx, auth.AdminToken(t))
	if _, err := auth.Client.RotateSigningKey(admin, &authv1.RotateSigningKeyRequest{}); err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	_, err = auth.Client.RotateSigningKey(admin, &authv1.RotateSigningKeyRequest{})
	expect.Code(t, "a second RotateSigningKey within the hour (limit 1)", err, codes.ResourceExhausted)
	if _, err := auth.Client.Logout(asCustomer, &authv1.LogoutRequest{}); err != nil {
		t.Fatalf("Logout: %v", err)
	}
}

// scrape returns the names of the series served on addr's /metrics: a
// family's name, and for histograms and summaries the _bucket, _sum and
// _count series PromQL reads.
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s/metrics: %s\n%s", addr, resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s/metrics: %v", addr, err)
	}
	names := map[string]bool{}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		names[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	return names
}

// notFromTheServices are the metric names the rules and the dashboard read
// from other exporters, so no scrape of the services can show them.
var notFromTheServices = map[string]string{
	"up": "Prometheus' own, per scrape target",
	"kube_poddisruptionbudget_status_current_healthy": "kube-state-metrics",
	"kube_poddisruptionbudget_status_desired_healthy": "kube-state-metrics",
}

// TestQueriesUseExportedMetrics runs authsvc and a catalogsvc replica,
// calls them, scrapes both admin ports, and checks that every metric name
// in the alert rules and in the dashboard's queries is one they export
// (or is listed in notFromTheServices): a renamed metric breaks this test,
// not the alerts in production.
func TestQueriesUseExportedMetrics(t *testing.T) {
	t.Parallel()
	auth := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.KeyRotationLimit = 1
	}})
	catalog := startCatalogsvc(t, auth.GRPCAddr)
	exercise(t, auth, catalog.GRPCAddr())

	exported := map[string][]string{} // metric name -> services exporting it
	for svc, addr := range map[string]string{"authsvc": auth.AdminAddr, "catalogsvc": catalog.AdminAddr()} {
		for name := range scrape(t, addr) {
			exported[name] = append(exported[name], svc)
		}
	}

	used := map[string][]string{} // metric name -> where it is used
	rule := loadRule(t)
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("rule %s%s", r.Alert, r.Record)
			for _, name := range metricNames(t, where, r.Expr.String()) {
				used[name] = append(used[name], where)
			}
		}
	}
	for where, q := range dashboardQueries(t) {
		for _, name := range metricNames(t, where, q) {
			used[name] = append(used[name], where)
		}
	}
	for _, must := range []string{"grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "tokencart_auth_revocation_feed_stale"} {
		if len(used[must]) == 0 {
			t.Errorf("nothing reads %s: the query extraction found %d names", must, len(used))
		}
	}
	for name, where := range used {
		if _, ok := notFromTheServices[name]; ok {
			continue
		}
		if len(exported[name]) == 0 {
			t.Errorf("%s, used by %v, is exported by neither service", name, where)
		}
	}
	for name, from := range notFromTheServices {
		if len(used[name]) == 0 {
			t.Errorf("notFromTheServices lists %s (%s), which nothing uses: remove it", name, from)
		}
	}
}
