package catalogsvc

import (
	"flag"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/catalogsvc/cart"
	"github.com/tokencart/tokencart/internal/expect"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the seed files under testdata/fuzz")

// TestWriteFuzzSeeds writes the seeds of this package's fuzz targets to
// testdata/fuzz when run with -update-fuzz-seeds,
//
//	go test -run '^TestWriteFuzzSeeds$' ./catalogsvc/ -update-fuzz-seeds
//
// and otherwise checks that the files there are up to date.
func TestWriteFuzzSeeds(t *testing.T) {
	files := map[string]string{}
	for name, v := range cartRequestSeeds() {
		files[filepath.Join("FuzzValidateCartRequest", "seed-"+name)] = expect.FuzzSeed(v...)
	}
	for name, v := range catalogRequestSeeds() {
		files[filepath.Join("FuzzValidateCatalogRequest", "seed-"+name)] = expect.FuzzSeed(v...)
	}
	expect.FuzzSeeds(t, files, *updateFuzzSeeds)
}

func cartRequestSeeds() map[string][]any {
	return map[string][]any{
		"valid":          {"espresso-blend-1kg", int64(1), "", int64(0), false},
		"valid-bounds":   {strings.Repeat("a", 64), int64(999), strings.Repeat("é", cart.MaxRequestIDLen), int64(0), true},
		"zero":           {"a", int64(0), "r", int64(-1), true},
		"too-long":       {strings.Repeat("a", 65), int64(1000), strings.Repeat("r", cart.MaxRequestIDLen+1), int64(5), false},
		"sql":            {"x' OR '1'='1", int64(-1), "'; DROP TABLE carts; --", int64(0), true},
		"not-utf8":       {"caf\xe9", int64(1 << 31), "caf\xe9", int64(math.MaxInt64), true},
		"control":        {"espresso\x00", int64(math.MinInt64), "a\u0085b", int64(math.MinInt64), true},
		"upper-and-dots": {"Espresso.1kg", int64(2), "\u2028", int64(1), false},
	}
}

func catalogRequestSeeds() map[string][]any {
	listQuery := "list\x00coffee"
	searchQuery := "search\x00\x00espresso"
	return map[string][]any{
		"valid": {"espresso-blend-1kg", "Espresso blend, 1 kg", "Dark roast.\nFor espresso.", "coffee", "EUR",
			int64(24), int32(900_000_000), int32(20), "coffee", encodePageToken(listQuery, "espresso-blend-1kg")},
		"valid-search-token": {"a", "A", "", "a", "EUR", int64(maxUnits), int32(0), int32(maxPageSize), "espresso",
			encodePageToken(searchQuery, "kenya-aa-250g")},
		"bad-price": {"b", " ", "\x7f", "Coffee", "USD", int64(maxUnits), int32(1), int32(maxPageSize + 1), " \t",
			encodePageToken(listQuery, "a")[1:]},
		"negative": {"c", "Name", "", "c", "EUR", int64(-1), int32(-1), int32(-1), strings.Repeat("q", maxQueryLen+1), "!!!"},
		"mixed-signs": {"d", "Name", strings.Repeat("d", maxDescriptionLen+1), "d", "eur", int64(1), int32(-5), int32(0), "caf\xe9",
			strings.Repeat("A", maxPageTokenLen+1)},
		"token-respelled": {"f", "F", "", "f", "EUR", int64(1), int32(0), int32(1), listQuery,
			respell(encodePageToken(listQuery, "espresso-blend-1kg"))},
		"not-utf8": {"e", "caf\xe9", "\u0000", strings.Repeat("e", maxCategoryLen+1), "EU", int64(0), int32(nanosPerUnit), int32(1), "x",
			encodePageToken(listQuery, "e") + "\n"},
	}
}

// respell returns tok with a line break inside: the same bytes to a
// lenient base64 decoder.
func respell(tok string) string { return tok[:4] + "\r\n" + tok[4:] }
