package k8s_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	securityv1beta1 "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/tokencart/tokencart/authsvc"
)

// The mesh examples: Envoy's jwt_authn filter with its JWKS cluster, and
// the Istio component.
const (
	envoyFilterFile  = "../envoy/jwt-authn.yaml"
	envoyClusterFile = "../envoy/authsvc-cluster.yaml"
	istioComponent   = "components/istio"
	baseDir          = "base"
)

// strictJSON decodes protobuf JSON as the projects' own tools do, but
// refuses unknown fields: a misspelt field is an error, not a silently
// ignored setting.
var strictJSON = protojson.UnmarshalOptions{DiscardUnknown: false}

// decodeYAML decodes y, YAML of a protobuf message, into m.
func decodeYAML(y []byte, m proto.Message) error {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return err
	}
	return strictJSON.Unmarshal(j, m)
}

// authsvcSettings are the settings of authsvc that token consumers must
// agree with, as the prod overlay configures them (defaults included).
type authsvcSettings struct {
	issuer, audience string
	jwksMaxAge       time.Duration
	publicPort       int32
}

func prodAuthsvc(t *testing.T) authsvcSettings {
	t.Helper()
	m := renderT(t, prodDir)
	examples, err := loadExampleSecrets(devDir)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(binaries(t), func(b binary) bool { return b.name == "authsvc" })
	d := m.deployment("authsvc")
	c := &checker{}
	fs := c.env(binaries(t)[i], container(&d.Spec.Template.Spec, "authsvc"), secretValues(m, examples))
	if err := errors.Join(c.errs...); err != nil {
		t.Fatal(err)
	}
	maxAge, err := durationOf(fs, "jwks-max-age")
	if err != nil {
		t.Fatal(err)
	}
	port, err := portOf(fs, "public-addr")
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) string { return fs.Lookup(name).Value.String() }
	return authsvcSettings{issuer: get("issuer"), audience: get("audience"), jwksMaxAge: maxAge, publicPort: port}
}

// checkEnvoy parses the filter and cluster with go-control-plane's types,
// runs their generated validation, and checks them against authsvc's
// settings.
func checkEnvoy(filterYAML, clusterYAML []byte, auth authsvcSettings) error {
	var filter hcmv3.HttpFilter
	if err := decodeYAML(filterYAML, &filter); err != nil {
		return err
	}
	if err := filter.ValidateAll(); err != nil {
		return err
	}
	var cfg jwtauthnv3.JwtAuthentication
	if err := filter.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		return err
	}
	if err := cfg.ValidateAll(); err != nil {
		return err
	}
	var cluster clusterv3.Cluster
	if err := decodeYAML(clusterYAML, &cluster); err != nil {
		return err
	}
	if err := cluster.ValidateAll(); err != nil {
		return err
	}
	var errs []error
	if filter.GetName() != "envoy.filters.http.jwt_authn" {
		errs = append(errs, errors.New("filter name is not envoy.filters.http.jwt_authn"))
	}
	p := cfg.GetProviders()["authsvc"]
	jwks := p.GetRemoteJwks()
	switch {
	case p == nil:
		errs = append(errs, errors.New("no provider authsvc"))
	case p.GetIssuer() != auth.issuer:
		errs = append(errs, errors.New("issuer "+p.GetIssuer()+" is not authsvc's --issuer "+auth.issuer))
	case !slices.Contains(p.GetAudiences(), auth.audience):
		errs = append(errs, errors.New("audiences lack authsvc's --audience "+auth.audience))
	case jwks.GetHttpUri().GetUri() != auth.issuer+authsvc.JWKSPath:
		errs = append(errs, errors.New("remote_jwks uri "+jwks.GetHttpUri().GetUri()+" is not the issuer's jwks_uri"))
	case jwks.GetCacheDuration().AsDuration() > auth.jwksMaxAge:
		errs = append(errs, errors.New("remote_jwks cache_duration "+jwks.GetCacheDuration().AsDuration().String()+
			" exceeds authsvc's --jwks-max-age "+auth.jwksMaxAge.String()+": new keys would be refused after a rotation"))
	case !p.GetForward() || p.GetForwardPayloadHeader() == "":
		errs = append(errs, errors.New("the token must be forwarded (catalogsvc verifies it too) with its payload header"))
	case jwks.GetHttpUri().GetCluster() != cluster.GetName():
		errs = append(errs, errors.New("remote_jwks cluster "+jwks.GetHttpUri().GetCluster()+" is not "+cluster.GetName()))
	}
	sa := cluster.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if addr := net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))); "http://"+addr != auth.issuer ||
		int32(sa.GetPortValue()) != auth.publicPort {
		errs = append(errs, errors.New("cluster address "+addr+" is not authsvc's public listener at the issuer"))
	}
	if !slices.ContainsFunc(cfg.GetRules(), func(r *jwtauthnv3.RequirementRule) bool {
		return r.GetMatch().GetPrefix() == "/tokencart.catalog.v1.CartService/" && r.GetRequires().GetProviderName() == "authsvc"
	}) {
		errs = append(errs, errors.New("no rule requires an authsvc token for CartService"))
	}
	return errors.Join(errs...)
}

// TestEnvoyJWTAuthn: the Envoy example is a valid jwt_authn filter and
// cluster by go-control-plane's schema and validation rules, agrees with
// authsvc's manifests, and a broken copy of it fails.
func TestEnvoyJWTAuthn(t *testing.T) {
	t.Parallel()
	filter, err := os.ReadFile(envoyFilterFile)
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := os.ReadFile(envoyClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	auth := prodAuthsvc(t)
	if err := checkEnvoy(filter, cluster, auth); err != nil {
		t.Fatalf("%s: %v", envoyFilterFile, err)
	}
	tests := []struct {
		name, old, new string
		want           string
	}{
		{"misspelt field", "forward_payload_header:", "forward_payload_headr:", "unknown field"},
		{"empty JWKS URI", "uri: http://authsvc.tokencart.svc.cluster.local:8080/.well-known/jwks.json", `uri: ""`, "Uri"},
		{"JWKS cached longer than promised", "cache_duration: 300s", "cache_duration: 3600s", "--jwks-max-age"},
		{"another issuer", "issuer: http://authsvc.tokencart.svc.cluster.local:8080", "issuer: tokencart-authsvc", "is not authsvc's --issuer"},
		{"JWKS on the admin port", "8080/.well-known/jwks.json", "9081/.well-known/jwks.json", "is not the issuer's jwks_uri"},
		{"negative timeout", "timeout: 5s", "timeout: -5s", "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := strings.Replace(string(filter), tt.old, tt.new, 1)
			if broken == string(filter) {
				t.Fatalf("%q not in %s", tt.old, envoyFilterFile)
			}
			err := checkEnvoy([]byte(broken), cluster, auth)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("cluster on the gRPC port", func(t *testing.T) {
		broken := strings.Replace(string(cluster), "port_value: 8080", "port_value: 8081", 1)
		if err := checkEnvoy(filter, []byte(broken), auth); err == nil || !strings.Contains(err.Error(), "public listener") {
			t.Errorf("check = %v, want the cluster refused", err)
		}
	})
}

// renderIstio renders the base with the Istio component, as an overlay
// that adds it would.
func renderIstio(t *testing.T, fsys filesys.FileSystem, root string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	k := "namespace: " + namespace + "\nresources:\n  - ../" + baseDir + "\ncomponents:\n  - ../" + istioComponent + "\n"
	dir := filepath.Join(root, "istio-test-overlay")
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k)); err != nil {
		t.Fatal(err)
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, res := range resMap.Resources() {
		if !strings.HasPrefix(res.GetApiVersion(), "security.istio.io/") {
			continue
		}
		j, err := res.MarshalJSON()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// checkIstio decodes each Istio object's spec into istio.io/api's type for
// its kind, refusing unknown fields, and checks it against authsvc's
// settings and catalogsvc's pods.
func checkIstio(objs []*unstructured.Unstructured, auth authsvcSettings, catalogLabels map[string]string) error {
	var errs []error
	kinds := map[string]bool{}
	selects := func(labels map[string]string) bool {
		for k, v := range labels {
			if catalogLabels[k] != v {
				return false
			}
		}
		return len(labels) > 0
	}
	for _, o := range objs {
		spec, err := yaml.Marshal(o.Object["spec"])
		if err != nil {
			return err
		}
		kinds[o.GetKind()] = true
		if o.GetNamespace() != namespace {
			errs = append(errs, errors.New(o.GetKind()+" is not in namespace "+namespace))
		}
		switch o.GetKind() {
		case "RequestAuthentication":
			var ra securityv1beta1.RequestAuthentication
			if err := decodeYAML(spec, &ra); err != nil {
				errs = append(errs, errors.New("RequestAuthentication: "+err.Error()))
				continue
			}
			if !selects(ra.GetSelector().GetMatchLabels()) {
				errs = append(errs, errors.New("RequestAuthentication does not select catalogsvc's pods"))
			}
			if !slices.ContainsFunc(ra.GetJwtRules(), func(r *securityv1beta1.JWTRule) bool {
				return r.GetIssuer() == auth.issuer && r.GetJwksUri() == auth.issuer+authsvc.JWKSPath &&
					slices.Contains(r.GetAudiences(), auth.audience) && r.GetForwardOriginalToken()
			}) {
				errs = append(errs, errors.New("RequestAuthentication has no rule for authsvc's issuer, jwks_uri and audience that forwards the token"))
			}
		case "AuthorizationPolicy":
			var ap securityv1beta1.AuthorizationPolicy
			if err := decodeYAML(spec, &ap); err != nil {
				errs = append(errs, errors.New("AuthorizationPolicy: "+err.Error()))
				continue
			}
			if !selects(ap.GetSelector().GetMatchLabels()) {
				errs = append(errs, errors.New("AuthorizationPolicy does not select catalogsvc's pods"))
			}
			ok := ap.GetAction() == securityv1beta1.AuthorizationPolicy_DENY && slices.ContainsFunc(ap.GetRules(), func(r *securityv1beta1.Rule) bool {
				return slices.ContainsFunc(r.GetFrom(), func(f *securityv1beta1.Rule_From) bool {
					return slices.Contains(f.GetSource().GetNotRequestPrincipals(), auth.issuer+"/*")
				}) && slices.ContainsFunc(r.GetTo(), func(to *securityv1beta1.Rule_To) bool {
					return slices.Contains(to.GetOperation().GetPaths(), "/tokencart.catalog.v1.CartService/*")
				})
			})
			if !ok {
				errs = append(errs, errors.New("AuthorizationPolicy does not deny CartService calls without an authsvc principal"))
			}
		default:
			errs = append(errs, errors.New("unexpected Istio kind "+o.GetKind()))
		}
	}
	if !kinds["RequestAuthentication"] || !kinds["AuthorizationPolicy"] {
		errs = append(errs, errors.New("the component lacks a RequestAuthentication or an AuthorizationPolicy"))
	}
	return errors.Join(errs...)
}

// TestIstioComponent: the Istio component renders with the base, each of
// its objects is valid by istio.io/api's types (no unknown field), and it
// agrees with authsvc's settings and catalogsvc's pods; broken copies fail.
func TestIstioComponent(t *testing.T) {
	t.Parallel()
	auth := prodAuthsvc(t)
	catalog := renderT(t, prodDir).deployment("catalogsvc").Spec.Template.Labels
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := renderIstio(t, istioFS(t, root), root)
	if err == nil {
		err = checkIstio(objs, auth, catalog)
	}
	if err != nil {
		t.Fatalf("%s: %v", istioComponent, err)
	}

	tests := []struct {
		name, file, old, new string
		want                 string
	}{
		{"misspelt field", "requestauthentication.yaml", "forwardOriginalToken:", "forwardOriginalTokn:", "unknown field"},
		{"wrong JWKS URI", "requestauthentication.yaml", "8080/.well-known/jwks.json", "9081/.well-known/jwks.json", "no rule for authsvc"},
		{"another audience", "requestauthentication.yaml", "- tokencart", "- someone-else", "no rule for authsvc"},
		{"policy for another workload", "authorizationpolicy.yaml", "app.kubernetes.io/name: catalogsvc", "app.kubernetes.io/name: authsvc", "does not select"},
		{"unknown action", "authorizationpolicy.yaml", "action: DENY", "action: REJECT", "AuthorizationPolicy"},
		{"misspelt rule field", "authorizationpolicy.yaml", "notRequestPrincipals:", "notRequestPrincipal:", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := istioFS(t, root)
			path := filepath.Join(root, istioComponent, tt.file)
			b, err := fsys.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			broken := strings.Replace(string(b), tt.old, tt.new, 1)
			if broken == string(b) {
				t.Fatalf("%q not in %s", tt.old, tt.file)
			}
			if err := fsys.WriteFile(path, []byte(broken)); err != nil {
				t.Fatal(err)
			}
			objs, err := renderIstio(t, fsys, root)
			if err == nil {
				err = checkIstio(objs, auth, catalog)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// istioFS returns an in-memory copy of the base and the Istio component,
// at their paths on disk, for renderIstio to add its overlay to.
func istioFS(t *testing.T, root string) filesys.FileSystem {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	for _, dir := range []string{baseDir, istioComponent} {
		if err := copyDir(fsys, root, dir); err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

// copyDir copies the files of root/dir on disk into fsys at the same path.
func copyDir(fsys filesys.FileSystem, root, dir string) error {
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		return err
	}
	if err := fsys.MkdirAll(filepath.Join(root, dir)); err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, dir, e.Name()))
		if err != nil {
			return err
		}
		if err := fsys.WriteFile(filepath.Join(root, dir, e.Name()), b); err != nil {
			return err
		}
	}
	return nil
}
