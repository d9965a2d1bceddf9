package client

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every tokencart error
// (AIP-193): its reasons (ErrorInfo.reason, such as "PRODUCT_NOT_FOUND")
// are stable, for clients to branch on.
const ErrorDomain = "tokencart.dev"

// reasonFieldInvalid is the reason of a plain field violation, which the
// violation itself describes.
const reasonFieldInvalid = "FIELD_INVALID"

// ErrorInfo returns the google.rpc.ErrorInfo that err's status carries,
// or nil.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range details(err) {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// Reason returns the reason of err's tokencart ErrorInfo, or "".
func Reason(err error) string {
	if info := ErrorInfo(err); info.GetDomain() == ErrorDomain {
		return info.GetReason()
	}
	return ""
}

// FieldViolations returns the fields that err's google.rpc.BadRequest
// names (INVALID_ARGUMENT), each with what is wrong with it.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range details(err) {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

// RetryDelay returns how long err's google.rpc.RetryInfo says to wait
// before a retry (RESOURCE_EXHAUSTED), if it says.
func RetryDelay(err error) (time.Duration, bool) {
	for _, d := range details(err) {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// Describe returns err as one line for a person: the violated fields and
// what is wrong with each, or the message, then the code and the reason,
// and when to retry, as in
//
//	quantity: must be 1 to 999 (INVALID_ARGUMENT)
//	no such product (NOT_FOUND: PRODUCT_NOT_FOUND)
//	per-caller rate limit exceeded; retry later (RESOURCE_EXHAUSTED: RATE_LIMITED; retry in 1.201s)
func Describe(err error) string {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK {
		return err.Error()
	}
	var b strings.Builder
	if vs := FieldViolations(err); len(vs) > 0 {
		for i, v := range vs {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %s", v.GetField(), v.GetDescription())
		}
	} else {
		b.WriteString(st.Message())
	}
	name := code.Code(st.Code()).String()
	fmt.Fprintf(&b, " (%s", name)
	if r := Reason(err); r != "" && r != name && r != reasonFieldInvalid {
		fmt.Fprintf(&b, ": %s", r)
	}
	if d, ok := RetryDelay(err); ok {
		fmt.Fprintf(&b, "; retry in %v", d.Round(time.Millisecond))
	}
	b.WriteString(")")
	return b.String()
}

func details(err error) []any {
	var se interface{ GRPCStatus() *status.Status }
	if err == nil || !errors.As(err, &se) {
		return nil
	}
	return se.GRPCStatus().Details()
}
