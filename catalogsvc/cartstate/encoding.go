package cartstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tokencart/tokencart/catalogsvc/cart"
)

// Encoding is how a payload is written before it is sealed. Open reads
// both, whatever the setting: the setting only chooses what Seal writes.
type Encoding int

const (
	// Binary is the protobuf wire format (see the field numbers below):
	// about a third of JSON's size and no reflection to decode. The
	// default.
	Binary Encoding = iota
	// JSON is the compact JSON that releases before Binary wrote and
	// read. A fleet upgrading from such a release writes JSON until no
	// older replica is left, so every replica can open every cart.
	JSON
)

// ParseEncoding parses "binary" or "json".
func ParseEncoding(s string) (Encoding, error) {
	switch strings.ToLower(s) {
	case "binary":
		return Binary, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("cart state encoding %q: want binary or json", s)
}

func (e Encoding) String() string {
	if e == JSON {
		return "json"
	}
	return "binary"
}

// Field numbers of the binary encoding, as if in
//
//	message Payload { int64 version = 1; int64 time = 2; repeated Line lines = 3; repeated Request requests = 4; }
//	message Line    { string product_id = 1; int64 quantity = 2; }
//	message Request { string id = 1; bytes hash = 2; int64 version = 3; int64 time = 4; repeated Line lines = 5; }
//
// A JSON payload starts with '{' (0x7b: field 15, group start), which no
// binary payload does, so Open tells the two apart by the first byte.
const (
	fieldVersion  protowire.Number = 1
	fieldTime     protowire.Number = 2
	fieldLines    protowire.Number = 3
	fieldRequests protowire.Number = 4

	fieldLineProduct  protowire.Number = 1
	fieldLineQuantity protowire.Number = 2

	fieldRequestID      protowire.Number = 1
	fieldRequestHash    protowire.Number = 2
	fieldRequestVersion protowire.Number = 3
	fieldRequestTime    protowire.Number = 4
	fieldRequestLines   protowire.Number = 5
)

// errEncoding: bytes that are not a payload in either encoding.
var errEncoding = errors.New("not a cart payload")

func (e Encoding) marshal(p payload) ([]byte, error) {
	if e == JSON {
		return json.Marshal(p)
	}
	return appendPayload(nil, p), nil
}

func unmarshalPayload(b []byte) (payload, error) {
	var p payload
	if len(b) > 0 && b[0] == '{' {
		err := json.Unmarshal(b, &p)
		return p, err
	}
	return p, readFields(b, func(num protowire.Number, v field) error {
		switch {
		case num == fieldVersion && v.isVarint():
			p.Version = int64(v.n)
		case num == fieldTime && v.isVarint():
			p.Time = int64(v.n)
		case num == fieldLines && v.isBytes():
			l, err := readLine(v.b)
			p.Lines = append(p.Lines, l)
			return err
		case num == fieldRequests && v.isBytes():
			r, err := readRequest(v.b)
			p.Requests = append(p.Requests, r)
			return err
		default:
			return fmt.Errorf("%w: unexpected field %d", errEncoding, num)
		}
		return nil
	})
}

func appendPayload(b []byte, p payload) []byte {
	b = appendVarint(b, fieldVersion, uint64(p.Version))
	b = appendVarint(b, fieldTime, uint64(p.Time))
	b = appendLines(b, fieldLines, p.Lines)
	for _, r := range p.Requests {
		b = protowire.AppendTag(b, fieldRequests, protowire.BytesType)
		b = protowire.AppendBytes(b, appendRequest(nil, r))
	}
	return b
}

func appendRequest(b []byte, r request) []byte {
	b = protowire.AppendTag(b, fieldRequestID, protowire.BytesType)
	b = protowire.AppendString(b, r.ID)
	b = protowire.AppendTag(b, fieldRequestHash, protowire.BytesType)
	b = protowire.AppendBytes(b, r.Hash)
	b = appendVarint(b, fieldRequestVersion, uint64(r.Version))
	b = appendVarint(b, fieldRequestTime, uint64(r.Time))
	return appendLines(b, fieldRequestLines, r.Lines)
}

func appendLines(b []byte, num protowire.Number, lines []cart.Line) []byte {
	for _, l := range lines {
		var line []byte
		line = protowire.AppendTag(line, fieldLineProduct, protowire.BytesType)
		line = protowire.AppendString(line, l.ProductID)
		line = appendVarint(line, fieldLineQuantity, uint64(l.Quantity))
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendBytes(b, line)
	}
	return b
}

// appendVarint appends a varint field, leaving out zero as proto3 does.
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func readLine(b []byte) (cart.Line, error) {
	var l cart.Line
	return l, readFields(b, func(num protowire.Number, v field) error {
		switch {
		case num == fieldLineProduct && v.isBytes():
			l.ProductID = string(v.b)
		case num == fieldLineQuantity && v.isVarint():
			l.Quantity = int64(v.n)
		default:
			return fmt.Errorf("%w: unexpected line field %d", errEncoding, num)
		}
		return nil
	})
}

func readRequest(b []byte) (request, error) {
	var r request
	return r, readFields(b, func(num protowire.Number, v field) error {
		switch {
		case num == fieldRequestID && v.isBytes():
			r.ID = string(v.b)
		case num == fieldRequestHash && v.isBytes():
			r.Hash = v.b
		case num == fieldRequestVersion && v.isVarint():
			r.Version = int64(v.n)
		case num == fieldRequestTime && v.isVarint():
			r.Time = int64(v.n)
		case num == fieldRequestLines && v.isBytes():
			l, err := readLine(v.b)
			r.Lines = append(r.Lines, l)
			return err
		default:
			return fmt.Errorf("%w: unexpected request field %d", errEncoding, num)
		}
		return nil
	})
}

// field is one decoded field's value: a varint or a length-delimited
// value (which aliases the input).
type field struct {
	typ protowire.Type
	n   uint64
	b   []byte
}

func (f field) isVarint() bool { return f.typ == protowire.VarintType }
func (f field) isBytes() bool  { return f.typ == protowire.BytesType }

// readFields calls fn for each field of b. Only varint and
// length-delimited fields are read; any other wire type is an error.
func readFields(b []byte, fn func(protowire.Number, field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errEncoding, protowire.ParseError(n))
		}
		b = b[n:]
		v := field{typ: typ}
		switch typ {
		case protowire.VarintType:
			v.n, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v.b, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("%w: field %d has wire type %d", errEncoding, num, typ)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", errEncoding, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}
