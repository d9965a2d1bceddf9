package catalogsvc_test

import (
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authtest"
	"github.com/tokencart/tokencart/internal/tlsconfig"
	"github.com/tokencart/tokencart/internal/tlsconfig/tlstest"
)

// TestAuthsvcOverTLS runs a real authsvc that requires TLS 1.3, and one
// that requires mutual TLS, and catalogsvc replicas calling them with the
// --auth-tls-* settings. A replica that trusts the right CA (and, for
// mTLS, presents a certificate authsvc's client CA issued) loads the key
// set, follows the revocation feed and accepts authsvc's tokens; one that
// trusts another CA, speaks plaintext, or has no or a foreign client
// certificate never gets a key set, so stays NOT_SERVING.
func TestAuthsvcOverTLS(t *testing.T) {
	t.Parallel()
	serverCA, clientCA, otherCA := tlstest.NewCA(t, "server-ca"), tlstest.NewCA(t, "client-ca"), tlstest.NewCA(t, "other-ca")
	serverCert := serverCA.Server(t)
	goodClient, foreignClient := clientCA.Client(t, "catalogsvc"), otherCA.Client(t, "catalogsvc")

	startAuth := func(mutual bool) *authtest.Server {
		return authtest.Start(t, authtest.Options{Configure: func(c *authsvc.Config) {
			c.Serve.TLSCertFile, c.Serve.TLSKeyFile = serverCert.CertFile, serverCert.KeyFile
			if mutual {
				c.Serve.TLSClientCAFile = clientCA.File
			}
		}})
	}
	tlsAuth, mtlsAuth := startAuth(false), startAuth(true)

	tests := []struct {
		name      string
		auth      *authtest.Server
		ca        string
		cert      tlstest.KeyPair
		wantReady bool
	}{
		{"tls", tlsAuth, serverCA.File, tlstest.KeyPair{}, true},
		{"tls, client certificate not asked for", tlsAuth, serverCA.File, goodClient, true},
		{"tls, wrong CA", tlsAuth, otherCA.File, tlstest.KeyPair{}, false},
		{"tls, plaintext client", tlsAuth, "", tlstest.KeyPair{}, false},
		{"mtls", mtlsAuth, serverCA.File, goodClient, true},
		{"mtls, no client certificate", mtlsAuth, serverCA.File, tlstest.KeyPair{}, false},
		{"mtls, client certificate of another CA", mtlsAuth, serverCA.File, foreignClient, false},
		{"mtls, wrong CA", mtlsAuth, otherCA.File, goodClient, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClusterAt(t, modes[0], tt.auth.GRPCAddr)
			cfg := c.config()
			cfg.AuthTLSCA, cfg.AuthTLSCert, cfg.AuthTLSKey = tt.ca, tt.cert.CertFile, tt.cert.KeyFile
			r := startReplica(t, cfg, tt.wantReady)
			health := healthpb.NewHealthClient(r.conn)
			check := func() healthpb.HealthCheckResponse_ServingStatus {
				resp, err := health.Check(testContext(t), &healthpb.HealthCheckRequest{})
				if err != nil {
					t.Fatal(err)
				}
				return resp.GetStatus()
			}
			if !tt.wantReady {
				// Wait for evidence, not time: a few key-set fetches have
				// been made, and every one failed.
				waitFor(t, "failed key-set fetches", func() bool {
					_, failed := r.svc.Validator().Keys().Fetches()
					return failed >= 3
				})
				if keys := r.svc.Validator().Keys(); keys.KeySet() != nil || r.svc.Ready(testContext(t)) == nil {
					t.Fatalf("a key set was loaded (%v) or the replica is ready (%v)", keys.KeySet().KeyIDs(), r.svc.Ready(testContext(t)))
				}
				waitFor(t, "health NOT_SERVING", func() bool { return check() == healthpb.HealthCheckResponse_NOT_SERVING })
				if !r.svc.Validator().Revocations().LastMessage().IsZero() {
					t.Error("revocation feed delivered a message")
				}
				return
			}
			// startReplica has waited for the key set and the revocation
			// feed's first message, both over (m)TLS. A token from authsvc (obtained over a TLS connection of the
			// test's own) is accepted.
			raw := loginOverTLS(t, tt.auth.GRPCAddr, serverCA.File, goodClient)
			s := c.shopperWithToken(r, raw)
			checkCart(t, r, s.add(kenya, 2).must(t), 1, line{kenya, 2})
		})
	}
}

// loginOverTLS registers a customer at the authsvc at addr over (m)TLS and
// returns an access token.
func loginOverTLS(t *testing.T, addr, caFile string, cert tlstest.KeyPair) string {
	t.Helper()
	creds, err := tlsconfig.Client(caFile, cert.CertFile, cert.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv1.NewAuthServiceClient(conn)
	email := "tls-user-" + sanitize(t.Name()) + "@authtest.example"
	if _, err := client.Register(testContext(t), &authv1.RegisterRequest{Email: email, Password: authtest.Password}); err != nil {
		t.Fatalf("Register over TLS: %v", err)
	}
	resp, err := client.Login(testContext(t), &authv1.LoginRequest{Email: email, Password: authtest.Password})
	if err != nil {
		t.Fatalf("Login over TLS: %v", err)
	}
	return resp.GetAccessToken()
}

// sanitize keeps the letters and digits of s.
func sanitize(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			out = append(out, c|0x20)
		}
	}
	return string(out)
}
