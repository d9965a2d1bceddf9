package serve

import (
	"context"
	"strconv"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The API's protos set features.utf8_validation = NONE, so that a string
// that is not UTF-8 reaches the server instead of failing while gRPC
// decodes the request, which it can only answer with INTERNAL. These
// interceptors make the check instead: every string of a request, at any
// depth, is valid UTF-8 when a handler sees it, or the call ends with
// INVALID_ARGUMENT naming the field.

// utf8Checker checks requests, knowing per message type which of its fields
// can hold a string, so that a request is not walked field by field through
// reflection on every call, and a type without strings costs a lookup.
type utf8Checker struct {
	// fields maps a message's full name to its []protoreflect.FieldDescriptor
	// that can hold strings. It holds the types of registered methods'
	// requests and what they contain: fixed when the binary is built, not
	// by traffic.
	fields sync.Map
}

func (c *utf8Checker) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := c.check(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (c *utf8Checker) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, utf8Stream{ss, c})
}

// utf8Stream checks every message the client streams.
type utf8Stream struct {
	grpc.ServerStream
	c *utf8Checker
}

func (s utf8Stream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.c.check(m)
}

// check returns an InvalidArgument status naming the first string field of
// req that is not valid UTF-8, if any. It does not echo the value.
func (c *utf8Checker) check(req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	if field := c.invalid(m.ProtoReflect()); field != "" {
		return status.Errorf(codes.InvalidArgument, "%s: not valid UTF-8", field)
	}
	return nil
}

// invalid returns the path of the first string in m that is not valid
// UTF-8 (such as "lines[2].product_id"), or "". The path is built only for
// a bad string.
func (c *utf8Checker) invalid(m protoreflect.Message) string {
	for _, fd := range c.stringFields(m.Descriptor()) {
		if !m.Has(fd) {
			continue // unset, or an empty string or list: nothing to check
		}
		v := m.Get(fd)
		name := string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if bad := c.invalidValue(fd, l.Get(i)); bad != "" {
					return join(name+"["+strconv.Itoa(i)+"]", bad)
				}
			}
		case fd.IsMap():
			keyIsString := fd.MapKey().Kind() == protoreflect.StringKind
			var bad string
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if keyIsString && !utf8.ValidString(k.String()) {
					bad = name + " (a key)"
					return false
				}
				// Keys are input: the path does not show them.
				if sub := c.invalidValue(fd.MapValue(), mv); sub != "" {
					bad = join(name+" (a value)", sub)
				}
				return bad == ""
			})
			if bad != "" {
				return bad
			}
		default:
			if bad := c.invalidValue(fd, v); bad != "" {
				return join(name, bad)
			}
		}
	}
	return ""
}

// self is what invalidValue returns for a string that is itself invalid.
const self = "."

// invalidValue returns self when v, a string, is not valid UTF-8, the path
// of the bad string inside v when it is a message, or "".
func (c *utf8Checker) invalidValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return self
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return c.invalid(v.Message())
	}
	return ""
}

// join returns the path of what invalidValue found under name.
func join(name, bad string) string {
	if bad == self {
		return name
	}
	return name + "." + bad
}

// stringFields returns the fields of md that are strings, or messages,
// lists or maps that can hold one.
func (c *utf8Checker) stringFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if f, ok := c.fields.Load(md.FullName()); ok {
		return f.([]protoreflect.FieldDescriptor)
	}
	var out []protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); canHoldString(fd, map[protoreflect.FullName]bool{md.FullName(): true}) {
			out = append(out, fd)
		}
	}
	c.fields.Store(md.FullName(), out)
	return out
}

// canHoldString reports whether a value of field fd can contain a string
// at some depth; seen are the message types on the way here, which are
// taken to hold one (a recursive type is checked when it has one).
func canHoldString(fd protoreflect.FieldDescriptor, seen map[protoreflect.FullName]bool) bool {
	if fd.IsMap() {
		return fd.MapKey().Kind() == protoreflect.StringKind || canHoldString(fd.MapValue(), seen)
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return true
	case protoreflect.MessageKind, protoreflect.GroupKind:
		md := fd.Message()
		if seen[md.FullName()] {
			return true
		}
		seen[md.FullName()] = true
		defer delete(seen, md.FullName())
		fields := md.Fields()
		for i := range fields.Len() {
			if canHoldString(fields.Get(i), seen) {
				return true
			}
		}
	}
	return false
}
