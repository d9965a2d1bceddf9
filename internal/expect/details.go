package expect

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/client"
)

// Failure is what a client should be able to read from a refused call:
// the code, the ErrorInfo reason (domain client.ErrorDomain), and, for
// INVALID_ARGUMENT, the field a BadRequest names.
type Failure struct {
	Code   codes.Code
	Reason string
	Field  string // "" when the status names no field
}

// Details reports an error (t.Errorf) for each way err's status is not
// want: wrong code; no ErrorInfo of want's reason in client.ErrorDomain;
// a BadRequest that does not name exactly want.Field (or any BadRequest
// when it is ""), or a field violation without a description; a RetryInfo
// with a positive delay missing from a RESOURCE_EXHAUSTED, or present on
// another code. It returns whether all held.
func Details(t testing.TB, what string, err error, want Failure) bool {
	t.Helper()
	var problems []string
	if got := status.Code(err); got != want.Code {
		problems = append(problems, fmt.Sprintf("code %v, want %v", got, want.Code))
	}
	if info := client.ErrorInfo(err); info.GetDomain() != client.ErrorDomain || info.GetReason() != want.Reason {
		problems = append(problems, fmt.Sprintf("ErrorInfo %v, want reason %q in %q", info, want.Reason, client.ErrorDomain))
	}
	var fields []string
	for _, v := range client.FieldViolations(err) {
		fields = append(fields, v.GetField())
		if v.GetDescription() == "" {
			problems = append(problems, fmt.Sprintf("field violation %q without a description", v.GetField()))
		}
	}
	if wantFields := slices.DeleteFunc([]string{want.Field}, func(f string) bool { return f == "" }); !slices.Equal(fields, wantFields) {
		problems = append(problems, fmt.Sprintf("field violations %q, want %q", fields, wantFields))
	}
	d, ok := client.RetryDelay(err)
	switch exhausted := want.Code == codes.ResourceExhausted; {
	case exhausted && (!ok || d <= 0):
		problems = append(problems, fmt.Sprintf("RetryInfo delay %v, %v; want a positive one", d, ok))
	case !exhausted && ok:
		problems = append(problems, fmt.Sprintf("RetryInfo on %v", want.Code))
	}
	if len(problems) == 0 {
		return true
	}
	t.Errorf("%s: %v: %s", what, err, strings.Join(problems, "; "))
	return false
}

// Opaque reports whether err is the Internal status that tells a client
// nothing of its cause: the message "internal error", and no detail but an
// ErrorInfo of reason INTERNAL without metadata.
func Opaque(err error) bool {
	st := status.Convert(err)
	info := client.ErrorInfo(err)
	return st.Code() == codes.Internal && st.Message() == "internal error" && len(st.Details()) == 1 &&
		info.GetDomain() == client.ErrorDomain && info.GetReason() == "INTERNAL" && len(info.GetMetadata()) == 0
}
