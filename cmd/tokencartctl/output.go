package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// printer writes responses as tables, or as protojson with --json.
type printer struct {
	w    io.Writer
	json bool
}

// print writes m: as protojson, or as the table that table writes.
func (p printer) print(m proto.Message, table func(w io.Writer)) error {
	if p.json {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(p.w, string(b))
		return err
	}
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func (p printer) user(u *authv1.User) error {
	return p.print(u, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tEMAIL\tROLES\tCREATED")
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.GetId(), u.GetEmail(), strings.Join(u.GetRoles(), ","),
			u.GetCreateTime().AsTime().Local().Format("2006-01-02 15:04"))
	})
}

func (p printer) products(resp *catalogv1.ListProductsResponse) error {
	return p.print(resp, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tCATEGORY\tPRICE\tNAME")
		for _, pr := range resp.GetProducts() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", pr.GetId(), pr.GetCategory(), money(pr.GetPrice()), pr.GetName())
		}
	})
}

func (p printer) cart(c *catalogv1.Cart) error {
	return p.print(c, func(w io.Writer) {
		fmt.Fprintln(w, "PRODUCT\tQTY\tUNIT PRICE\tTOTAL\tNAME")
		for _, l := range c.GetLines() {
			name := l.GetName()
			if !l.GetAvailable() {
				name += " (no longer sold)"
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", l.GetProductId(), l.GetQuantity(), money(l.GetUnitPrice()), money(l.GetLineTotal()), name)
		}
		fmt.Fprintf(w, "SUBTOTAL\t%d\t\t%s\t(cart version %d)\n", c.GetTotalQuantity(), money(c.GetSubtotal()), c.GetVersion())
	})
}

func money(m *catalogv1.Money) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%d.%02d %s", m.GetUnits(), abs(m.GetNanos())/10_000_000, m.GetCurrencyCode())
}

func abs(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}
