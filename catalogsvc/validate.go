package catalogsvc

import (
	"strings"
	"unicode"
	"unicode/utf8"

	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

// Request limits.
const (
	// Currency is the one currency of the catalog: a cart's subtotal is a
	// sum, so every price must be in it.
	Currency = "EUR"

	defaultPageSize   = 20
	maxPageSize       = 100
	maxNameLen        = 200  // characters
	maxDescriptionLen = 2000 // characters
	maxCategoryLen    = 64
	maxQueryLen       = 256 // bytes
	maxPageTokenLen   = 512 // bytes
	// maxUnits bounds a price so that no cart total can overflow: 100 lines
	// of 999 at 1e9 units is 1e14.
	maxUnits     = 1_000_000_000
	nanosPerUnit = 1_000_000_000
)

func validateProductID(field, id string) error {
	if !cart.ValidProductID(id) {
		return invalid(field, "must be 1 to %d characters of a-z, 0-9 and '-'", cart.MaxProductIDLen)
	}
	return nil
}

// validCategory is the product id's alphabet, lower-case so that a category
// filter matches without case folding.
func validateCategory(field, c string, required bool) error {
	if c == "" && !required {
		return nil
	}
	if len(c) > maxCategoryLen || !cart.ValidProductID(c) {
		return invalid(field, "must be 1 to %d characters of a-z, 0-9 and '-'", maxCategoryLen)
	}
	return nil
}

func validateText(field, s string, minLen, maxLen int) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	n := utf8.RuneCountInString(s)
	if n < minLen || n > maxLen || (minLen > 0 && strings.TrimSpace(s) == "") {
		return invalid(field, "must be %d to %d characters", minLen, maxLen)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) {
		return invalid(field, "must not contain control characters")
	}
	return nil
}

// pageSize applies the page_size rules (AIP-158): 0 means the default, 1
// to 100 as asked, more than 100 is 100, and a negative size is invalid.
func pageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return defaultPageSize, nil
	case n < 0:
		return 0, invalid("page_size", "must not be negative (0 for %d, at most %d)", defaultPageSize, maxPageSize)
	}
	return min(int(n), maxPageSize), nil
}

func validatePrice(m *catalogv1.Money) error {
	switch {
	case m == nil:
		return invalid("product.price", "is required")
	case len(m.GetCurrencyCode()) != 3 || strings.IndexFunc(m.GetCurrencyCode(), func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0:
		return invalid("product.price.currency_code", "must be three upper-case letters (ISO 4217)")
	case m.GetCurrencyCode() != Currency:
		return invalid("product.price.currency_code", "the catalog sells in %s only", Currency)
	case m.GetNanos() <= -nanosPerUnit || m.GetNanos() >= nanosPerUnit:
		return invalid("product.price.nanos", "must be within [-999999999, 999999999]")
	case (m.GetUnits() > 0 && m.GetNanos() < 0) || (m.GetUnits() < 0 && m.GetNanos() > 0):
		return invalid("product.price", "units and nanos must have the same sign")
	case m.GetUnits() < 0 || m.GetNanos() < 0:
		return invalid("product.price", "must not be negative")
	case m.GetUnits() > maxUnits || (m.GetUnits() == maxUnits && m.GetNanos() > 0):
		return invalid("product.price", "must not exceed %d", maxUnits)
	}
	return nil
}

func validateProduct(p *catalogv1.Product) error {
	if p == nil {
		return invalid("product", "is required")
	}
	if err := validateProductID("product.id", p.GetId()); err != nil {
		return err
	}
	if err := validateText("product.name", p.GetName(), 1, maxNameLen); err != nil {
		return err
	}
	if err := validateText("product.description", p.GetDescription(), 0, maxDescriptionLen); err != nil {
		return err
	}
	if err := validateCategory("product.category", p.GetCategory(), true); err != nil {
		return err
	}
	return validatePrice(p.GetPrice())
}

// validateQuery checks a search query: words of valid UTF-8, bounded.
func validateQuery(q string) error {
	if len(q) > maxQueryLen || !utf8.ValidString(q) || strings.TrimSpace(q) == "" {
		return invalid("query", "must be 1 to %d bytes of valid UTF-8 with at least one word", maxQueryLen)
	}
	return nil
}

func validateRequestID(id string) error {
	if id == "" {
		return nil // optional
	}
	if !utf8.ValidString(id) || utf8.RuneCountInString(id) > cart.MaxRequestIDLen ||
		strings.ContainsFunc(id, unicode.IsControl) {
		return invalid("request_id", "must be 1 to %d characters of valid UTF-8 without control characters", cart.MaxRequestIDLen)
	}
	return nil
}

func validateExpected(v *int64) error {
	if v != nil && *v < 0 {
		return invalid("expected_version", "must not be negative")
	}
	return nil
}

func validateQuantity(q int64, allowZero bool) error {
	lowest := int64(1)
	if allowZero {
		lowest = 0
	}
	if q < lowest || q > cart.MaxQuantity {
		return invalid("quantity", "must be %d to %d", lowest, cart.MaxQuantity)
	}
	return nil
}
