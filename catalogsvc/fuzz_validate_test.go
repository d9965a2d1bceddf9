package catalogsvc

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/internal/rpcerr"
)

// The fuzz targets of this package run as regression tests in plain
// `go test` (their seeds are the files under testdata/fuzz, written by
// TestWriteFuzzSeeds) and are explored with, e.g.,
//
//	go test -run '^$' -fuzz '^FuzzValidateCartRequest$' -fuzztime 60s ./catalogsvc/

// The validators' specification, written independently of them.
var (
	idPattern       = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	categoryPattern = idPattern // the same alphabet and bound
)

// verdict checks a validator's answer against the specification's: an
// accepted input has no error, a refused one an *rpcerr.Error naming a
// field, which the service maps to InvalidArgument.
func verdict(t *testing.T, what string, input any, err error, valid bool) {
	t.Helper()
	switch {
	case valid && err != nil:
		t.Fatalf("%s %q: refused (%v), but it is valid", what, input, err)
	case !valid && err == nil:
		t.Fatalf("%s %q: accepted, but it is invalid", what, input)
	case err != nil:
		var inv *rpcerr.Error
		if !errors.As(err, &inv) || len(inv.Violations) != 1 {
			t.Fatalf("%s %q: error %T %v is not a field violation", what, input, err, err)
		}
		if got := status.Code(newErrorMapper(slog.New(slog.DiscardHandler)).Status(context.Background(), err)); got != codes.InvalidArgument {
			t.Fatalf("%s %q: mapped to %v, want InvalidArgument", what, input, got)
		}
	}
}

// FuzzValidateCartRequest checks the validation of a cart mutation's
// fields: product id, quantity (AddItem: 1..999, SetItemQuantity: 0..999),
// request id and expected version. They never panic and accept exactly the
// valid inputs.
func FuzzValidateCartRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, productID string, quantity int64, requestID string, expected int64, hasExpected bool) {
		verdict(t, "product id", productID, validateProductID("product_id", productID), idPattern.MatchString(productID))
		verdict(t, "AddItem quantity", quantity, validateQuantity(quantity, false), quantity >= 1 && quantity <= cart.MaxQuantity)
		verdict(t, "SetItemQuantity quantity", quantity, validateQuantity(quantity, true), quantity >= 0 && quantity <= cart.MaxQuantity)
		validID := requestID == "" || (utf8.ValidString(requestID) && utf8.RuneCountInString(requestID) <= cart.MaxRequestIDLen &&
			!strings.ContainsFunc(requestID, unicode.IsControl))
		verdict(t, "request id", requestID, validateRequestID(requestID), validID)
		var exp *int64
		if hasExpected {
			exp = &expected
		}
		verdict(t, "expected version", exp, validateExpected(exp), !hasExpected || expected >= 0)

		// Whatever passes is valid UTF-8, as responses and the store need:
		// gRPC's codec refuses proto3 strings that are not, and these
		// validators hold it even for a caller that skips the codec.
		if validateProductID("product_id", productID) == nil && validateRequestID(requestID) == nil {
			if !utf8.ValidString(productID) || !utf8.ValidString(requestID) {
				t.Fatalf("accepted ids that are not UTF-8: %q, %q", productID, requestID)
			}
		}
	})
}

// validText is validateText's specification.
func validText(s string, minLen, maxLen int) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := 0
	blank := true
	for _, r := range s {
		n++
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return false
		}
		if !unicode.IsSpace(r) {
			blank = false
		}
	}
	return n >= minLen && n <= maxLen && (minLen == 0 || !blank)
}

// FuzzValidateCatalogRequest checks the validation of catalog requests: a
// product (UpsertProduct), page sizes, categories, search queries and page
// tokens. An accepted product marshals and survives the store's
// conversion; a page token is accepted only if it is exactly the one the
// service would have issued for that query.
func FuzzValidateCatalogRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, id, name, description, category, currency string, units int64, nanos int32, size int32, query, pageToken string) {
		p := &catalogv1.Product{
			Id: id, Name: name, Description: description, Category: category,
			Price: &catalogv1.Money{CurrencyCode: currency, Units: units, Nanos: nanos},
		}
		validPrice := currency == Currency && nanos > -nanosPerUnit && nanos < nanosPerUnit &&
			units >= 0 && nanos >= 0 && (units < maxUnits || (units == maxUnits && nanos == 0))
		valid := idPattern.MatchString(id) && validText(name, 1, maxNameLen) &&
			validText(description, 0, maxDescriptionLen) && categoryPattern.MatchString(category) && validPrice
		err := validateProduct(p)
		verdict(t, "product", p, err, valid)
		if err == nil {
			if _, err := proto.Marshal(p); err != nil {
				t.Fatalf("accepted product does not marshal: %v", err)
			}
			back := toProto(fromProto(p, testTime))
			back.UpdateTime = nil
			if !proto.Equal(back, p) {
				t.Fatalf("accepted product changes on the way to the store and back: %v -> %v", p, back)
			}
			// The most a cart can owe for it does not overflow.
			if a := times(p.GetPrice(), cart.MaxQuantity); a.units > 1<<62/cart.MaxLines {
				t.Fatalf("price %v can overflow a cart total", p.GetPrice())
			}
		}
		verdict(t, "product without a price", nil, validateProduct(&catalogv1.Product{Id: id, Name: name, Category: category}), false)

		n, err := pageSize(size)
		verdict(t, "page size", size, err, size >= 0)
		if err == nil && (n < 1 || (size != 0 && n != min(int(size), maxPageSize))) {
			t.Fatalf("page size %d became %d", size, n)
		}
		verdict(t, "category filter", category, validateCategory("category", category, false), category == "" || categoryPattern.MatchString(category))
		verdict(t, "query", query, validateQuery(query),
			len(query) <= maxQueryLen && utf8.ValidString(query) && strings.TrimSpace(query) != "")

		lastID, err := decodePageToken(query, pageToken)
		switch {
		case err != nil:
			verdict(t, "page token", pageToken, err, false)
		case pageToken == "":
			if lastID != "" {
				t.Fatalf("empty page token decoded to %q", lastID)
			}
		case encodePageToken(query, lastID) != pageToken || !idPattern.MatchString(lastID):
			t.Fatalf("page token %q accepted (last id %q) but not one the service issues", pageToken, lastID)
		}
		if idPattern.MatchString(id) {
			tok := encodePageToken(query, id)
			if got, err := decodePageToken(query, tok); err != nil || got != id {
				t.Fatalf("page token for %q: decoded %q, %v", id, got, err)
			}
			if _, err := decodePageToken(query+"x", tok); err == nil {
				t.Fatalf("page token for query %q accepted for another query", query)
			}
		}
	})
}

// testTime is a fixed time for conversions under test.
var testTime = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
