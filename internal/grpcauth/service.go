package grpcauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"slices"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/tokencart/tokencart/internal/rpcerr"
	"github.com/tokencart/tokencart/internal/secret"
)

// ServiceCredentialHeader is the request metadata that carries a service
// credential: a shared secret, configured on authsvc and on the services
// that follow its revocation feed or introspect tokens.
const ServiceCredentialHeader = "tokencart-service-credential"

// minServiceCredentialSize is the least number of random bytes in a service
// credential.
const minServiceCredentialSize = 32

// ServiceCredential is the per-call credential of a service calling
// authsvc's service methods: a grpc.WithPerRPCCredentials that sends the
// secret (as configured, base64) in ServiceCredentialHeader. Send it over
// TLS outside a trusted network.
type ServiceCredential string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c ServiceCredential) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{ServiceCredentialHeader: string(c)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials. It is
// false so that a development setup works in plaintext.
func (ServiceCredential) RequireTransportSecurity() bool { return false }

// ServicesConfig says which callers are services.
type ServicesConfig struct {
	// Credentials are the accepted service credentials, each base64 of at
	// least minServiceCredentialSize random bytes. More than one lets a
	// credential be replaced without downtime.
	Credentials []string
	// Identities are the accepted identities of mutual-TLS client
	// certificates (verified by the server's TLS configuration): a URI SAN
	// such as a SPIFFE ID, or a DNS SAN.
	Identities []string
}

// Services authenticates service callers: by a service credential, or by
// the identity in a verified client certificate.
type Services struct {
	digests    [][sha256.Size]byte
	identities []string
}

// Errors of service authentication, declared once.
var (
	errServiceRequired = rpcerr.Errorf(codes.Unauthenticated, ReasonServiceRequired,
		"this method is for services: present a service credential ("+ServiceCredentialHeader+") or an allowed client certificate")
	errServiceDenied = rpcerr.Errorf(codes.PermissionDenied, ReasonServiceRequired, "service credential or client certificate not accepted")
)

// NewServices checks cfg and returns its Services.
func NewServices(cfg ServicesConfig) (*Services, error) {
	s := &Services{identities: slices.Clone(cfg.Identities)}
	for _, c := range cfg.Credentials {
		b, err := secret.DecodeAtLeast(c, minServiceCredentialSize)
		if err != nil {
			return nil, err
		}
		s.digests = append(s.digests, sha256.Sum256(b))
	}
	for _, id := range cfg.Identities {
		if id == "" {
			return nil, errors.New("a service identity must not be empty")
		}
	}
	return s, nil
}

// Configured reports whether any service can authenticate at all.
func (s *Services) Configured() bool { return len(s.digests) > 0 || len(s.identities) > 0 }

// AuthFunc returns the go-grpc-middleware auth function that admits only
// services.
func (s *Services) AuthFunc() auth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		if err := s.authenticate(ctx); err != nil {
			return nil, err
		}
		return ctx, nil
	}
}

func (s *Services) authenticate(ctx context.Context) error {
	if s.certificateIdentity(ctx) {
		return nil
	}
	vals := metadata.ValueFromIncomingContext(ctx, ServiceCredentialHeader)
	if len(vals) != 1 {
		return errServiceRequired
	}
	b, err := secret.DecodeAtLeast(vals[0], minServiceCredentialSize)
	if err != nil {
		return errServiceDenied
	}
	got := sha256.Sum256(b)
	match := 0
	for _, d := range s.digests {
		match |= subtle.ConstantTimeCompare(got[:], d[:])
	}
	if match != 1 {
		return errServiceDenied
	}
	return nil
}

// certificateIdentity reports whether the call's verified client
// certificate carries an allowed identity.
func (s *Services) certificateIdentity(ctx context.Context) bool {
	if len(s.identities) == 0 {
		return false
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return false
	}
	return slices.ContainsFunc(certIdentities(info.State.VerifiedChains[0][0]), func(id string) bool { return slices.Contains(s.identities, id) })
}

func certIdentities(c *x509.Certificate) []string {
	ids := slices.Clone(c.DNSNames)
	for _, u := range c.URIs {
		ids = append(ids, u.String())
	}
	return ids
}
