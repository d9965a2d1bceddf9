package serve

import (
	"context"
	"strconv"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tokencart/tokencart/internal/rpcerr"
)

// The API's protos set features.utf8_validation = NONE, so that a string
// that is not UTF-8 reaches the server instead of failing while gRPC
// decodes the request, which it can only answer with INTERNAL. These
// interceptors make the check instead: every string of a request, at any
// depth, is valid UTF-8 when a handler sees it, or the call ends with
// INVALID_ARGUMENT naming the field.

func unaryUTF8(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := checkUTF8(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func streamUTF8(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, utf8Stream{ss})
}

// utf8Stream checks every message the client streams.
type utf8Stream struct {
	grpc.ServerStream
}

func (s utf8Stream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return checkUTF8(m)
}

// checkUTF8 returns an InvalidArgument status naming the first string field
// of req that is not valid UTF-8, if any. It does not echo the value.
func checkUTF8(req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	if field := invalidUTF8(m.ProtoReflect(), ""); field != "" {
		return rpcerr.Invalid(field, "not valid UTF-8")
	}
	return nil
}

// invalidUTF8 returns the path of the first string in m that is not valid
// UTF-8 (such as "lines[2].product_id"), or "".
func invalidUTF8(m protoreflect.Message, prefix string) string {
	var bad string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if bad = invalidUTF8Value(fd, l.Get(i), name+"["+strconv.Itoa(i)+"]"); bad != "" {
					break
				}
			}
		case fd.IsMap():
			keyIsString := fd.MapKey().Kind() == protoreflect.StringKind
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if keyIsString && !utf8.ValidString(k.String()) {
					bad = name + " (a key)"
					return false
				}
				// Keys are input: the path does not show them.
				bad = invalidUTF8Value(fd.MapValue(), mv, name+" (a value)")
				return bad == ""
			})
		default:
			bad = invalidUTF8Value(fd, v, name)
		}
		return bad == ""
	})
	return bad
}

func invalidUTF8Value(fd protoreflect.FieldDescriptor, v protoreflect.Value, name string) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return name
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return invalidUTF8(v.Message(), name+".")
	}
	return ""
}
