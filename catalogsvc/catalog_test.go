package catalogsvc_test

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc"
	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/token"
)

func TestSeedCatalog(t *testing.T) {
	t.Parallel()
	seed, err := catalogsvc.SeedProducts()
	if err != nil {
		t.Fatal(err)
	}
	categories := map[string]int{}
	for _, p := range seed {
		categories[p.Category]++
		if p.Currency != "EUR" || (p.Units == 0 && p.Nanos == 0) {
			t.Errorf("%s: price %s %d.%09d", p.ID, p.Currency, p.Units, p.Nanos)
		}
	}
	if len(seed) < 30 || len(categories) < 5 {
		t.Errorf("seed has %d products in %d categories, want at least 30 in 5", len(seed), len(categories))
	}
}

// listAll pages through ListProducts with page size n.
func listAll(t *testing.T, r *replica, category string, n int32) []string {
	t.Helper()
	var ids []string
	tok := ""
	size := int(n)
	if n == 0 {
		size = 20
	}
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		resp, err := r.catalog.ListProducts(testContext(t), &catalogv1.ListProductsRequest{PageSize: n, PageToken: tok, Category: category})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetProducts()) > size || (resp.GetNextPageToken() != "" && len(resp.GetProducts()) != size) {
			t.Fatalf("page of %d with page_size %d (next %q)", len(resp.GetProducts()), n, resp.GetNextPageToken())
		}
		for _, p := range resp.GetProducts() {
			ids = append(ids, p.GetId())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			return ids
		}
	}
}

func TestListProducts(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	r := c.start()
	seed, err := catalogsvc.SeedProducts()
	if err != nil {
		t.Fatal(err)
	}
	var want, coffee []string
	for _, p := range seed {
		want = append(want, p.ID)
		if p.Category == "coffee" {
			coffee = append(coffee, p.ID)
		}
	}
	slices.Sort(want)
	slices.Sort(coffee)
	for _, n := range []int32{0, 1, 7, 36, 37, 100} {
		if got := listAll(t, r, "", n); !slices.Equal(got, want) {
			t.Errorf("page size %d: %v, want %v", n, got, want)
		}
	}
	if got := listAll(t, r, "coffee", 3); !slices.Equal(got, coffee) {
		t.Errorf("coffee: %v, want %v", got, coffee)
	}
	if got := listAll(t, r, "no-such-category", 3); len(got) != 0 {
		t.Errorf("unknown category: %v", got)
	}

	first, err := r.catalog.ListProducts(testContext(t), &catalogv1.ListProductsRequest{PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	tok := first.GetNextPageToken()
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	tampered := slices.Clone(raw)
	tampered[3] ^= 1
	coffeeTok, err := r.catalog.ListProducts(testContext(t), &catalogv1.ListProductsRequest{PageSize: 1, Category: "coffee"})
	if err != nil {
		t.Fatal(err)
	}
	searchTok, err := r.catalog.SearchProducts(testContext(t), &catalogv1.SearchProductsRequest{Query: "a", PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *catalogv1.ListProductsRequest
	}{
		{"negative page size", &catalogv1.ListProductsRequest{PageSize: -1}},
		{"garbage token", &catalogv1.ListProductsRequest{PageToken: "!!!"}},
		{"tampered token", &catalogv1.ListProductsRequest{PageToken: base64.RawURLEncoding.EncodeToString(tampered)}},
		{"truncated token", &catalogv1.ListProductsRequest{PageToken: tok[:len(tok)-2]}},
		{"token with a line break", &catalogv1.ListProductsRequest{PageToken: tok[:4] + "\n" + tok[4:]}},
		{"another category's token", &catalogv1.ListProductsRequest{PageToken: coffeeTok.GetNextPageToken()}},
		{"a search's token", &catalogv1.ListProductsRequest{PageToken: searchTok.GetNextPageToken()}},
		{"oversized token", &catalogv1.ListProductsRequest{PageToken: strings.Repeat("A", 4096)}},
		{"bad category", &catalogv1.ListProductsRequest{Category: "Coffee; DROP TABLE products"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.catalog.ListProducts(testContext(t), tt.req)
			expect.MustCode(t, "", err, codes.InvalidArgument)
		})
	}
}

func TestSearchAndGet(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	r := c.start()
	search := func(q, category string) []string {
		t.Helper()
		resp, err := r.catalog.SearchProducts(testContext(t), &catalogv1.SearchProductsRequest{Query: q, Category: category, PageSize: 100})
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		var ids []string
		for _, p := range resp.GetProducts() {
			ids = append(ids, p.GetId())
		}
		return ids
	}
	tests := []struct {
		query, category string
		want            []string
	}{
		{"ESPRESSO blend", "", []string{espresso}},
		{"  kenya   ", "", []string{kenya}},
		{"tamper", "", []string{"tamper-58mm"}},
		{"cup", "mugs", []string{"espresso-cups-set-2"}},
		{"grinders", "", []string{"electric-grinder-flat-burr", "grinder-brush", "hand-grinder-conical"}},
		{"no such words", "", nil},
		{"' OR 1=1 --", "", nil},
	}
	for _, tt := range tests {
		if got := search(tt.query, tt.category); !slices.Equal(got, tt.want) {
			t.Errorf("search %q in %q: %v, want %v", tt.query, tt.category, got, tt.want)
		}
	}
	for _, bad := range []string{"", "   ", strings.Repeat("a", 257)} {
		_, err := r.catalog.SearchProducts(testContext(t), &catalogv1.SearchProductsRequest{Query: bad})
		expect.MustCode(t, "", err, codes.InvalidArgument)
	}

	got, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: espresso})
	if err != nil {
		t.Fatal(err)
	}
	want := &catalogv1.Product{Id: espresso, Name: "Espresso Blend, 1 kg", Category: "coffee",
		Price: &catalogv1.Money{CurrencyCode: "EUR", Units: 24, Nanos: 900_000_000}}
	if d := cmp.Diff(want, got.GetProduct(), protocmp.Transform(), protocmp.IgnoreFields(&catalogv1.Product{}, "description", "update_time")); d != "" {
		t.Errorf("GetProduct (-want +got):\n%s", d)
	}
	for id, code := range map[string]codes.Code{"no-such-product": codes.NotFound, "": codes.InvalidArgument, "../etc/passwd": codes.InvalidArgument} {
		_, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: id})
		expect.MustCode(t, "", err, code)
	}
}

func TestUpsertValidation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, modes[0])
	r := c.start()
	admin := client.WithToken(testContext(t), c.fake.Mint(t, "boss", token.RoleAdmin))
	valid := &catalogv1.Product{Id: "valid-1", Name: "Valid", Description: "ok", Category: "test",
		Price: &catalogv1.Money{CurrencyCode: "EUR", Units: 2, Nanos: 500_000_000}}
	with := func(f func(p *catalogv1.Product)) *catalogv1.Product {
		p := proto.Clone(valid).(*catalogv1.Product)
		f(p)
		return p
	}
	tests := []struct {
		name string
		p    *catalogv1.Product
	}{
		{"no product", nil},
		{"bad id", with(func(p *catalogv1.Product) { p.Id = "Bad Id" })},
		{"long id", with(func(p *catalogv1.Product) { p.Id = strings.Repeat("a", 65) })},
		{"no name", with(func(p *catalogv1.Product) { p.Name = "" })},
		{"blank name", with(func(p *catalogv1.Product) { p.Name = "   " })},
		{"long name", with(func(p *catalogv1.Product) { p.Name = strings.Repeat("n", 201) })},
		{"control character", with(func(p *catalogv1.Product) { p.Name = "a\x07b" })},
		{"long description", with(func(p *catalogv1.Product) { p.Description = strings.Repeat("d", 2001) })},
		{"no category", with(func(p *catalogv1.Product) { p.Category = "" })},
		{"no price", with(func(p *catalogv1.Product) { p.Price = nil })},
		{"lower-case currency", with(func(p *catalogv1.Product) { p.Price.CurrencyCode = "eur" })},
		{"long currency", with(func(p *catalogv1.Product) { p.Price.CurrencyCode = "EURO" })},
		{"other currency", with(func(p *catalogv1.Product) { p.Price.CurrencyCode = "USD" })},
		{"nanos out of range", with(func(p *catalogv1.Product) { p.Price.Nanos = 1_000_000_000 })},
		{"mixed signs", with(func(p *catalogv1.Product) { p.Price.Units, p.Price.Nanos = 1, -1 })},
		{"negative", with(func(p *catalogv1.Product) { p.Price.Units, p.Price.Nanos = -1, 0 })},
		{"too expensive", with(func(p *catalogv1.Product) { p.Price.Units = 1_000_000_001 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.catalog.UpsertProduct(admin, &catalogv1.UpsertProductRequest{Product: tt.p})
			expect.MustCode(t, "", err, codes.InvalidArgument)
		})
	}
	resp, err := r.catalog.UpsertProduct(admin, &catalogv1.UpsertProductRequest{Product: with(func(p *catalogv1.Product) {
		p.Name = strings.Repeat("é", 200)
		p.UpdateTime = nil
	})})
	if err != nil {
		t.Fatalf("valid upsert: %v", err)
	}
	if resp.GetProduct().GetUpdateTime() == nil {
		t.Error("update_time not set by the server")
	}
	// Read-your-writes on the replica that wrote.
	got, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: "valid-1"})
	if err != nil || !proto.Equal(got.GetProduct(), resp.GetProduct()) {
		t.Errorf("GetProduct after upsert: %v, %v; want %v", got.GetProduct(), err, resp.GetProduct())
	}
}

// TestCatalogConvergence: an admin write on replica A is visible on A at
// once and on B within the poll interval (the default, 1 s) plus a reload.
func TestCatalogConvergence(t *testing.T) {
	t.Parallel()
	for _, m := range storeModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, m)
			defaults := func(cfg *catalogsvc.Config) { cfg.CatalogRefresh = catalogsvc.DefaultConfig().CatalogRefresh }
			a, b := c.start(defaults), c.start(defaults)
			admin := client.WithToken(testContext(t), c.fake.Mint(t, "boss", token.RoleAdmin))
			for _, step := range []struct {
				name  string
				write func()
				seen  func(*replica) bool
			}{
				{"upsert", func() { upsert(t, a, admin, "new-arrival", 5, 0) }, func(r *replica) bool {
					_, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: "new-arrival"})
					return err == nil
				}},
				{"delete", func() {
					if _, err := a.catalog.DeleteProduct(admin, &catalogv1.DeleteProductRequest{ProductId: "new-arrival"}); err != nil {
						t.Fatal(err)
					}
				}, func(r *replica) bool {
					_, err := r.catalog.GetProduct(testContext(t), &catalogv1.GetProductRequest{ProductId: "new-arrival"})
					return err != nil
				}},
			} {
				start := time.Now()
				step.write()
				if !step.seen(a) {
					t.Errorf("%s: the writing replica does not see its own write", step.name)
				}
				expect.Eventually(t, testTimeout, "convergence", func() bool { return step.seen(b) })
				d := time.Since(start)
				t.Logf("%s: replica B converged after %v (bound %v + reload)", step.name, d, catalogsvc.DefaultConfig().CatalogRefresh)
				if d > catalogsvc.DefaultConfig().CatalogRefresh+500*time.Millisecond {
					t.Errorf("%s: converged after %v", step.name, d)
				}
			}
		})
	}
}
