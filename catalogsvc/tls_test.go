package catalogsvc_test

import (
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	"github.com/tokencart/tokencart/internal/expect"
	"github.com/tokencart/tokencart/internal/tlsconfig"
	"github.com/tokencart/tokencart/internal/tlsconfig/tlsconfigtest"
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
	serverCA, clientCA, otherCA := tlsconfigtest.NewCA(t, "server-ca"), tlsconfigtest.NewCA(t, "client-ca"), tlsconfigtest.NewCA(t, "other-ca")
	serverCert := serverCA.Server(t)
	goodClient, foreignClient := clientCA.Client(t, "catalogsvc"), otherCA.Client(t, "catalogsvc")

	startAuth := func(mutual bool) *authsvctest.Server {
		return authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
			c.Serve.TLSCertFile, c.Serve.TLSKeyFile = serverCert.CertFile, serverCert.KeyFile
			if mutual {
				c.Serve.TLSClientCAFile = clientCA.File
			}
		}})
	}
	tlsAuth, mtlsAuth := startAuth(false), startAuth(true)

	tests := []struct {
		name      string
		auth      *authsvctest.Server
		ca        string
		cert      tlsconfigtest.KeyPair
		wantReady bool
	}{
		{"tls", tlsAuth, serverCA.File, tlsconfigtest.KeyPair{}, true},
		{"tls, client certificate not asked for", tlsAuth, serverCA.File, goodClient, true},
		{"tls, wrong CA", tlsAuth, otherCA.File, tlsconfigtest.KeyPair{}, false},
		{"tls, plaintext client", tlsAuth, "", tlsconfigtest.KeyPair{}, false},
		{"mtls", mtlsAuth, serverCA.File, goodClient, true},
		{"mtls, no client certificate", mtlsAuth, serverCA.File, tlsconfigtest.KeyPair{}, false},
		{"mtls, client certificate of another CA", mtlsAuth, serverCA.File, foreignClient, false},
		{"mtls, wrong CA", mtlsAuth, otherCA.File, goodClient, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClusterAt(t, modes[0], tt.auth.GRPCAddr)
			cfg := c.config()
			cfg.Auth.TLSCA, cfg.Auth.TLSCert, cfg.Auth.TLSKey = tt.ca, tt.cert.CertFile, tt.cert.KeyFile
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
				expect.Eventually(t, testTimeout, "failed key-set fetches", func() bool {
					return r.auth.Status().KeyFetchFailures >= 3
				})
				if r.auth.Status().KeySetLoaded || r.auth.Ready(testContext(t)) == nil {
					t.Fatalf("a key set was loaded or the replica is ready (%v)", r.auth.Ready(testContext(t)))
				}
				expect.Eventually(t, testTimeout, "health NOT_SERVING", func() bool { return check() == healthpb.HealthCheckResponse_NOT_SERVING })
				if !r.auth.Status().FeedLastMessage.IsZero() {
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
func loginOverTLS(t *testing.T, addr, caFile string, cert tlsconfigtest.KeyPair) string {
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
	if _, err := client.Register(testContext(t), &authv1.RegisterRequest{Email: email, Password: authsvctest.Password}); err != nil {
		t.Fatalf("Register over TLS: %v", err)
	}
	resp, err := client.Login(testContext(t), &authv1.LoginRequest{Email: email, Password: authsvctest.Password})
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
