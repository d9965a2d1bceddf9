package rpcerr

import (
	"fmt"
	"maps"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Domain is the google.rpc.ErrorInfo domain of every tokencart error. Both
// services share it, so a reason means the same thing whichever service
// sent it (AIP-193).
const Domain = "tokencart.dev"

// Reasons every service may send. Each service declares its own beside its
// errors; all are UPPER_SNAKE_CASE and stable: clients branch on them.
const (
	// ReasonFieldInvalid: a request field breaks a rule. The status also
	// carries a google.rpc.BadRequest naming the field, and ErrorInfo's
	// metadata "field" names it too.
	ReasonFieldInvalid = "FIELD_INVALID"
	// ReasonInternal: an unexpected failure; the detail is in the log.
	ReasonInternal = "INTERNAL"
	// ReasonStoreUnavailable: the database cannot work now; retry.
	ReasonStoreUnavailable = "STORE_UNAVAILABLE"
	// ReasonRateLimited: the caller sent more than its share; the status
	// carries a google.rpc.RetryInfo saying when to try again.
	ReasonRateLimited = "RATE_LIMITED"
)

// Error is a failure a client can act on. Its gRPC status carries a
// google.rpc.ErrorInfo (Reason, Domain, Metadata), a google.rpc.BadRequest
// when it names fields, and a google.rpc.RetryInfo when RetryAfter is set.
// Handlers return it (often declared once, as a package variable) and the
// Mapper passes it as it is.
type Error struct {
	Code       codes.Code
	Reason     string
	Message    string
	Metadata   map[string]string
	Violations []FieldViolation
	// RetryAfter, when positive, is the delay after which a retry may
	// succeed, rounded up to the millisecond on the wire.
	RetryAfter time.Duration
}

// FieldViolation names a request field (a dotted path such as
// "product.price.currency_code") and what is wrong with it.
type FieldViolation struct {
	Field, Description string
}

// Errorf returns an Error with code, reason and a formatted message.
func Errorf(c codes.Code, reason, format string, args ...any) *Error {
	return &Error{Code: c, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns the InvalidArgument Error of one field: its message is
// "field: description", and its details name the field.
func Invalid(field, format string, args ...any) *Error {
	desc := fmt.Sprintf(format, args...)
	return &Error{
		Code: codes.InvalidArgument, Reason: ReasonFieldInvalid, Message: field + ": " + desc,
		Metadata:   map[string]string{"field": field},
		Violations: []FieldViolation{{Field: field, Description: desc}},
	}
}

// Exhausted returns the ResourceExhausted Error of a limit that will admit
// the call again after the delay after.
func Exhausted(reason, msg string, after time.Duration) *Error {
	return &Error{Code: codes.ResourceExhausted, Reason: reason, Message: msg, RetryAfter: max(after, time.Nanosecond)}
}

// With returns a copy of e whose metadata has key set to value.
func (e *Error) With(key, value string) *Error {
	c := *e
	c.Metadata = maps.Clone(e.Metadata)
	if c.Metadata == nil {
		c.Metadata = make(map[string]string, 1)
	}
	c.Metadata[key] = value
	return &c
}

// WithReason returns a copy of e with another reason.
func (e *Error) WithReason(reason string) *Error {
	c := *e
	c.Reason = reason
	return &c
}

// Error returns the message the client is told.
func (e *Error) Error() string { return e.Message }

// GRPCStatus returns the status with its details.
func (e *Error) GRPCStatus() *status.Status {
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: e.Reason, Domain: Domain, Metadata: e.Metadata}}
	if len(e.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range e.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		details = append(details, br)
	}
	if e.RetryAfter > 0 {
		after := e.RetryAfter.Truncate(time.Millisecond) + time.Millisecond
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(after)})
	}
	return withDetails(status.New(e.Code, e.Message), details...)
}

// Is reports whether target is an *Error of the same code and reason, so
// that errors.Is matches a declared Error however it was copied.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Reason == e.Reason
}

// withInfo returns st with an ErrorInfo whose reason is the code's name
// unless it has one: the fallback for statuses declared without a reason.
func withInfo(st *status.Status) *status.Status {
	if st.Code() == codes.OK {
		return st
	}
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.ErrorInfo); ok {
			return st
		}
	}
	info := &errdetails.ErrorInfo{Reason: code.Code(st.Code()).String(), Domain: Domain}
	return withDetails(st, info)
}

// withDetails returns st with details added, or st as it is if they cannot
// be encoded (which a well-formed detail never fails).
func withDetails(st *status.Status, details ...protoadapt.MessageV1) *status.Status {
	if withD, err := st.WithDetails(details...); err == nil {
		return withD
	}
	return st
}
