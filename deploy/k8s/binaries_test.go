package k8s_test

import (
	"flag"
	"io"
	"testing"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/catalogsvc"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// binaries describes the two service binaries from their own flag
// definitions and generated service descriptors, so the manifests are
// checked against the code rather than against a copy of it.
func binaries(t *testing.T) []binary {
	t.Helper()
	return []binary{
		{
			name:      "authsvc",
			envPrefix: authsvc.EnvPrefix,
			newFlags: func() (*flag.FlagSet, func() error) {
				fs := newFlagSet("authsvc")
				cfg := authsvc.RegisterFlags(fs)
				return fs, cfg.Validate
			},
			services: []string{authv1.AuthService_ServiceDesc.ServiceName},
			required: func(*flag.FlagSet) []string {
				// Without a key-encryption key the signing keys are stored
				// in the clear: acceptable for `make run`, not in a cluster.
				return []string{"dsn", "key-encryption-key"}
			},
			minReplicas: 2,
		},
		{
			name:      "catalogsvc",
			envPrefix: catalogsvc.EnvPrefix,
			newFlags: func() (*flag.FlagSet, func() error) {
				fs := newFlagSet("catalogsvc")
				cfg := catalogsvc.RegisterFlags(fs)
				return fs, cfg.Validate
			},
			services: []string{
				catalogv1.CatalogService_ServiceDesc.ServiceName,
				catalogv1.CartService_ServiceDesc.ServiceName,
			},
			required: func(fs *flag.FlagSet) []string {
				req := []string{"dsn", "auth-addr"}
				if f := fs.Lookup("cart-mode"); f != nil && f.Value.String() == catalogsvc.CartModeRequest {
					req = append(req, "cart-key")
				}
				return req
			},
			minReplicas: 3,
			headless:    true,
			hpaMin:      3,
			hpaMax:      20,
		},
	}
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
