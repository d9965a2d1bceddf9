package catalogsvc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

// snapshot is an immutable copy of the whole catalog, which every read is
// served from: a request costs no query. The Service swaps in a new one
// (an atomic pointer store) when the catalog's change counter moves.
//
// The products are shared by every response that carries them; nothing may
// modify them (protobuf marshalling only reads, concurrently safely).
type snapshot struct {
	version  int64
	products []*catalogv1.Product // sorted by id
	byID     map[string]*catalogv1.Product
	text     []string // per product: lower-cased name, description and category, for search
}

func newSnapshot(version int64, ps []Product) *snapshot {
	s := &snapshot{
		version:  version,
		products: make([]*catalogv1.Product, 0, len(ps)),
		byID:     make(map[string]*catalogv1.Product, len(ps)),
		text:     make([]string, 0, len(ps)),
	}
	for _, p := range ps {
		pb := toProto(p)
		s.products = append(s.products, pb)
		s.byID[p.ID] = pb
		s.text = append(s.text, strings.ToLower(p.Name+"\n"+p.Description+"\n"+p.Category))
	}
	slices.SortFunc(s.products, func(a, b *catalogv1.Product) int { return strings.Compare(a.Id, b.Id) })
	return s
}

// Has implements cart.Catalog.
func (s *snapshot) Has(id string) bool {
	_, ok := s.byID[id]
	return ok
}

// page returns up to size products with ids after `after` that match, in id
// order, and whether more matching products follow.
func (s *snapshot) page(after string, size int, match func(i int) bool) ([]*catalogv1.Product, bool) {
	start := sort.Search(len(s.products), func(i int) bool { return s.products[i].Id > after })
	var out []*catalogv1.Product
	for i := start; i < len(s.products); i++ {
		if !match(i) {
			continue
		}
		if len(out) == size {
			return out, true
		}
		out = append(out, s.products[i])
	}
	return out, false
}

func toProto(p Product) *catalogv1.Product {
	return &catalogv1.Product{
		Id: p.ID, Name: p.Name, Description: p.Description, Category: p.Category,
		Price:      &catalogv1.Money{CurrencyCode: p.Currency, Units: p.Units, Nanos: p.Nanos},
		UpdateTime: timestamppb.New(p.UpdateTime),
	}
}

func fromProto(p *catalogv1.Product, now time.Time) Product {
	return Product{
		ID: p.GetId(), Name: p.GetName(), Description: p.GetDescription(), Category: p.GetCategory(),
		Currency: p.GetPrice().GetCurrencyCode(), Units: p.GetPrice().GetUnits(), Nanos: p.GetPrice().GetNanos(),
		UpdateTime: time.UnixMicro(now.UnixMicro()).UTC(),
	}
}

// refreshCatalog reloads the snapshot if the store's change counter moved.
// The counter is read before the products: a change in between makes the
// snapshot newer than its version says, and the next poll reloads again,
// whereas the other order could label old products with a new version and
// miss the change for good.
func (s *Service) refreshCatalog(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	v, err := s.store.CatalogVersion(ctx)
	if err != nil {
		return err
	}
	if cur := s.snap.Load(); cur != nil && cur.version == v {
		return nil
	}
	ps, err := s.store.Products(ctx)
	if err != nil {
		return err
	}
	s.snap.Store(newSnapshot(v, ps))
	return nil
}

// pollCatalog refreshes the snapshot every interval until ctx is done.
func (s *Service) pollCatalog(ctx context.Context) error {
	t := time.NewTicker(s.cfg.CatalogRefresh)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := s.refreshCatalog(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.log.WarnContext(ctx, "catalog refresh failed; serving the last snapshot", "error", err)
			failing = true
		case err == nil && failing:
			s.log.InfoContext(ctx, "catalog refresh recovered")
			failing = false
		}
	}
}

// Page tokens are opaque to clients: base64url of a format byte, the last
// id of the previous page and a checksum binding both to the query (method,
// category, search words). A token altered, truncated or used with another
// query fails the checksum and is InvalidArgument. It is not a secret: all
// a forger could do is start a page at an id of their choosing, which any
// client may do by asking for the products it wants.
const pageTokenFormat = 1

func pageTokenSum(query, lastID string) []byte {
	h := sha256.Sum256([]byte("tokencart page token\x00" + query + "\x00" + lastID))
	return h[:12]
}

func encodePageToken(query, lastID string) string {
	b := append([]byte{pageTokenFormat}, lastID...)
	return base64.RawURLEncoding.EncodeToString(append(b, pageTokenSum(query, lastID)...))
}

// decodePageToken returns the last id a page token carries, "" for an
// empty token.
func decodePageToken(query, tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	bad := invalid("page_token", "is not a token returned for this query")
	if len(tok) > maxPageTokenLen {
		return "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 1+1+12 || b[0] != pageTokenFormat {
		return "", bad
	}
	lastID, sum := string(b[1:len(b)-12]), b[len(b)-12:]
	if !cart.ValidProductID(lastID) || string(sum) != string(pageTokenSum(query, lastID)) {
		return "", bad
	}
	// The decoder skips line breaks and ignores the unused bits of the
	// last character: only the spelling we issue is the token.
	if encodePageToken(query, lastID) != tok {
		return "", bad
	}
	return lastID, nil
}
