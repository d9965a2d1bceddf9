package authsvc_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
)

// answer is all a client learns from a refused call.
type answer struct {
	status          *status.Status
	header, trailer metadata.MD
}

func (a answer) equal(b answer) bool {
	return proto.Equal(a.status.Proto(), b.status.Proto()) && cmp.Equal(a.header, b.header) && cmp.Equal(a.trailer, b.trailer)
}

// TestNoAccountEnumeration: a client cannot tell from Login's answer
// whether an email has an account. An unknown email, a malformed one and a
// wrong password get the same code, message, details, headers and
// trailers, and every one of them costs one argon2id hash on the same
// bounded hasher with the same parameters as a real account's (the
// unknown email's password is checked against a dummy hash), so they also
// take as long (TestLoginTimingRatio logs how long; the benchmark
// BenchmarkLoginEnumeration measures it).
//
// Register cannot work that way: its contract is to say AlreadyExists for
// a taken email. What it does not say is whether the password given was
// the account's; and it too hashes before it looks, so a taken email is not
// answered sooner.
func TestNoAccountEnumeration(t *testing.T) {
	t.Parallel()
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.LoginAccountLimit = 1000                 // the answer compared is the refusal, not the throttle
		c.HashQueueTimeout = 50 * time.Millisecond // while the test holds every hashing slot
	}})
	ctx := t.Context()
	s.Register(t, "known@example.com")
	login := func(req *authv1.LoginRequest) answer {
		var a answer
		_, err := s.Client.Login(ctx, req, grpc.Header(&a.header), grpc.Trailer(&a.trailer))
		a.status = status.Convert(err)
		return a
	}
	register := func(req *authv1.RegisterRequest) answer {
		var a answer
		_, err := s.Client.Register(ctx, req, grpc.Header(&a.header), grpc.Trailer(&a.trailer))
		a.status = status.Convert(err)
		return a
	}

	logins := []struct {
		name string
		req  *authv1.LoginRequest
	}{
		{"wrong password", &authv1.LoginRequest{Email: "known@example.com", Password: "wrong password"}},
		{"unknown email", &authv1.LoginRequest{Email: "unknown@example.com", Password: "wrong password"}},
		{"unknown email, the known account's password", &authv1.LoginRequest{Email: "unknown@example.com", Password: authsvctest.Password}},
		{"known email in other case, wrong password", &authv1.LoginRequest{Email: " KNOWN@example.com ", Password: "wrong password"}},
		{"malformed email", &authv1.LoginRequest{Email: "known at example.com", Password: authsvctest.Password}},
		{"empty password", &authv1.LoginRequest{Email: "known@example.com"}},
		{"7-character password", &authv1.LoginRequest{Email: "known@example.com", Password: "1234567"}},
		{"empty password, unknown email", &authv1.LoginRequest{Email: "unknown@example.com"}},
	}
	want := login(logins[0].req)
	if want.status.Code() != codes.Unauthenticated {
		t.Fatalf("wrong password: %v, want Unauthenticated", want.status.Err())
	}
	for _, l := range logins[1:] {
		if got := login(l.req); !got.equal(want) {
			t.Errorf("Login, %s: %v %v %v; a wrong password gets %v %v %v", l.name,
				got.status.Proto(), got.header, got.trailer, want.status.Proto(), want.header, want.trailer)
		}
	}

	registers := []struct {
		name string
		req  *authv1.RegisterRequest
	}{
		{"taken email, its password", &authv1.RegisterRequest{Email: "known@example.com", Password: authsvctest.Password}},
		{"taken email, another password", &authv1.RegisterRequest{Email: "known@example.com", Password: "another password"}},
		{"taken email in other case", &authv1.RegisterRequest{Email: "Known@Example.com", Password: "another password"}},
	}
	wantReg := register(registers[0].req)
	if wantReg.status.Code() != codes.AlreadyExists {
		t.Fatalf("Register of a taken email: %v, want AlreadyExists", wantReg.status.Err())
	}
	for _, r := range registers[1:] {
		if got := register(r.req); !got.equal(wantReg) {
			t.Errorf("Register, %s: %v; %s gets %v", r.name, got.status.Proto(), registers[0].name, wantReg.status.Proto())
		}
	}

	// With every hashing slot held, each of these waits for one and then
	// gives up: so each reaches the hasher, the one the real accounts are
	// checked with. A call that needs no hash answers as usual.
	release, err := s.Service.HoldHashSlots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logins {
		if got := login(l.req); got.status.Code() != codes.ResourceExhausted {
			t.Errorf("Login, %s, with the hasher busy: %v; want ResourceExhausted (it must hash)", l.name, got.status.Err())
		}
	}
	for _, r := range registers {
		if got := register(r.req); got.status.Code() != codes.ResourceExhausted {
			t.Errorf("Register, %s, with the hasher busy: %v; want ResourceExhausted (it must hash before it looks)", r.name, got.status.Err())
		}
	}
	_, err = s.Client.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: "garbage"})
	expect.Code(t, "RefreshToken with the hasher busy", err, codes.Unauthenticated)
	release()

	// The dummy hash costs what a real one does: same algorithm, version,
	// parameters, salt and key lengths.
	u, err := s.Store.UserByEmail(ctx, "known@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := phcShape(s.Service.DummyHash()), phcShape(u.PasswordHash); !slices.Equal(got, want) {
		t.Errorf("dummy hash %v, a real account's %v", got, want)
	}
}

// phcShape is what sets the cost of checking a password against a PHC
// string: everything but the salt's and the hash's values.
func phcShape(phc string) []string {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 {
		return parts
	}
	return []string{parts[1], parts[2], parts[3], strings.Repeat("s", len(parts[4])), strings.Repeat("k", len(parts[5]))}
}

// TestLoginTimingRatio logs the median time of a Login with an unknown
// email over that with a wrong password, interleaved. It asserts nothing
// about time (the house rule: no timed assertions); TestNoAccountEnumeration
// asserts that both take the same path through the hasher, and
// BenchmarkLoginEnumeration measures the ratio properly.
func TestLoginTimingRatio(t *testing.T) {
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) { c.LoginAccountLimit = 1000 }})
	s.Register(t, "known@example.com")
	reqs := [2]*authv1.LoginRequest{
		{Email: "unknown@example.com", Password: "wrong password"},
		{Email: "known@example.com", Password: "wrong password"},
	}
	const n = 15
	var times [2][]time.Duration
	for i := range n {
		for j := range 2 {
			k := (i + j) % 2 // alternate which goes first
			start := time.Now()
			_, err := s.Client.Login(t.Context(), reqs[k])
			times[k] = append(times[k], time.Since(start))
			expect.Code(t, "Login", err, codes.Unauthenticated)
		}
	}
	unknown, wrong := median(times[0]), median(times[1])
	t.Logf("median of %d logins: unknown email %v, wrong password %v, ratio %.3f", n, unknown, wrong, float64(unknown)/float64(wrong))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkLoginEnumeration times refused logins, one at a time, with an
// unknown email and with a known email's wrong password, interleaved (so
// that a change in the machine's load affects both alike). It reports the
// median time of each and the ratio unknown/wrong of the medians (aim: 0.9
// to 1.1): how much a stopwatch tells an attacker. An op is one login of
// each kind.
//
//	go test -run '^$' -bench 'LoginEnumeration' -count 5 ./authsvc/
func BenchmarkLoginEnumeration(b *testing.B) {
	s := authsvctest.Start(b, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.LoginAccountLimit = 1 << 30
		c.LoginAddressLimit = 1 << 30
	}})
	s.Register(b, "known@example.com")
	reqs := [2]*authv1.LoginRequest{
		{Email: "unknown@example.com", Password: "wrong password"},
		{Email: "known@example.com", Password: "wrong password"},
	}
	var times [2][]time.Duration
	i := 0
	for b.Loop() {
		for j := range 2 {
			k := (i + j) % 2 // alternate which goes first
			start := time.Now()
			_, err := s.Client.Login(b.Context(), reqs[k])
			times[k] = append(times[k], time.Since(start))
			if status.Code(err) != codes.Unauthenticated {
				b.Fatalf("Login: %v", err)
			}
		}
		i++
	}
	unknown, wrong := median(times[0]), median(times[1])
	b.ReportMetric(float64(unknown.Microseconds())/1000, "unknown-ms")
	b.ReportMetric(float64(wrong.Microseconds())/1000, "wrong-ms")
	b.ReportMetric(float64(unknown)/float64(wrong), "unknown/wrong")
}
