package k8s_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/tokencart/tokencart/catalogsvc"
)

// manifests is one rendered kustomization, every object decoded into its
// k8s.io/api type.
type manifests struct {
	namespaces   []corev1.Namespace
	deployments  []appsv1.Deployment
	statefulSets []appsv1.StatefulSet
	services     []corev1.Service
	secrets      []corev1.Secret
	hpas         []autoscalingv2.HorizontalPodAutoscaler
	pdbs         []policyv1.PodDisruptionBudget
	netpols      []networkingv1.NetworkPolicy
}

// render builds the kustomization in dir with kustomize's Go API, as
// `kubectl apply -k dir` would, and decodes every object strictly.
func render(dir string) (*manifests, error) {
	return renderFS(filesys.MakeFsOnDisk(), dir)
}

// renderFS is render on fsys.
func renderFS(fsys filesys.FileSystem, dir string) (*manifests, error) {
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	m := &manifests{}
	var errs []error
	for _, res := range resMap.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", res.CurId(), err))
			continue
		}
		if err := m.add(y); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", res.CurId(), err))
		}
	}
	return m, errors.Join(errs...)
}

// add decodes one YAML object into the type its apiVersion and kind name
// and appends it to m. Unknown fields, duplicate fields and fields in the
// wrong case are errors, as they are for a strict apiserver: a misspelt or
// misplaced field that kubectl would drop with a warning fails here.
func (m *manifests) add(y []byte) error {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return err
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
		return err
	}
	switch gvk := tm.APIVersion + "/" + tm.Kind; gvk {
	case "v1/Namespace":
		return decodeInto(j, &m.namespaces)
	case "apps/v1/Deployment":
		return decodeInto(j, &m.deployments)
	case "apps/v1/StatefulSet":
		return decodeInto(j, &m.statefulSets)
	case "v1/Service":
		return decodeInto(j, &m.services)
	case "v1/Secret":
		return decodeInto(j, &m.secrets)
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return decodeInto(j, &m.hpas)
	case "policy/v1/PodDisruptionBudget":
		return decodeInto(j, &m.pdbs)
	case "networking.k8s.io/v1/NetworkPolicy":
		return decodeInto(j, &m.netpols)
	default:
		return fmt.Errorf("unexpected object kind %s: add its type to manifests", gvk)
	}
}

// decodeInto strictly decodes the JSON object j and appends it to *list.
func decodeInto[T any](j []byte, list *[]T) error {
	var v T
	if err := decodeStrict(j, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// decodeStrict decodes j into v the way the apiserver's strict field
// validation does: case-sensitive, no unknown and no duplicate fields.
func decodeStrict(j []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// clone returns a deep copy of m, for tests that break one thing.
func (m *manifests) clone() *manifests {
	return &manifests{
		namespaces:   cloneAll(m.namespaces, (*corev1.Namespace).DeepCopy),
		deployments:  cloneAll(m.deployments, (*appsv1.Deployment).DeepCopy),
		statefulSets: cloneAll(m.statefulSets, (*appsv1.StatefulSet).DeepCopy),
		services:     cloneAll(m.services, (*corev1.Service).DeepCopy),
		secrets:      cloneAll(m.secrets, (*corev1.Secret).DeepCopy),
		hpas:         cloneAll(m.hpas, (*autoscalingv2.HorizontalPodAutoscaler).DeepCopy),
		pdbs:         cloneAll(m.pdbs, (*policyv1.PodDisruptionBudget).DeepCopy),
		netpols:      cloneAll(m.netpols, (*networkingv1.NetworkPolicy).DeepCopy),
	}
}

func cloneAll[T any](in []T, deepCopy func(*T) *T) []T {
	out := make([]T, len(in))
	for i := range in {
		out[i] = *deepCopy(&in[i])
	}
	return out
}

// deployment returns the Deployment called name, or nil.
func (m *manifests) deployment(name string) *appsv1.Deployment {
	for i := range m.deployments {
		if m.deployments[i].Name == name {
			return &m.deployments[i]
		}
	}
	return nil
}

func (m *manifests) service(name string) *corev1.Service {
	for i := range m.services {
		if m.services[i].Name == name {
			return &m.services[i]
		}
	}
	return nil
}

func (m *manifests) netpol(name string) *networkingv1.NetworkPolicy {
	for i := range m.netpols {
		if m.netpols[i].Name == name {
			return &m.netpols[i]
		}
	}
	return nil
}

// exampleSecrets are the Secrets the dev overlay generates from its example
// files: Secret name -> key -> value.
type exampleSecrets map[string]map[string]string

const (
	devDir  = "overlays/dev"
	prodDir = "overlays/prod"
)

// loadExampleSecrets reads the dev overlay's secretGenerator and the env
// files it names. Each file must say it is not for production.
func loadExampleSecrets(dir string) (exampleSecrets, error) {
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k types.Kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	out := make(exampleSecrets)
	for _, g := range k.SecretGenerator {
		if len(g.FileSources) > 0 || len(g.LiteralSources) > 0 {
			return nil, fmt.Errorf("secretGenerator %s: use env files only, so every value is in a NOT FOR PRODUCTION example", g.Name)
		}
		kv := make(map[string]string)
		for _, env := range g.EnvSources {
			if err := readEnvFile(filepath.Join(dir, env), kv); err != nil {
				return nil, err
			}
		}
		out[g.Name] = kv
	}
	return out, nil
}

// readEnvFile adds the KEY=VALUE lines of a kustomize env file to kv.
func readEnvFile(path string, kv map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "NOT FOR PRODUCTION") {
		return fmt.Errorf("%s: an example secrets file must say NOT FOR PRODUCTION", path)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return fmt.Errorf("%s:%d: want KEY=VALUE", path, n)
		}
		kv[k] = v
	}
	return sc.Err()
}

// renderT renders dir and fails the test on any error.
func renderT(t *testing.T, dir string) *manifests {
	t.Helper()
	m, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOverlaysSatisfyInvariants(t *testing.T) {
	t.Parallel()
	examples, err := loadExampleSecrets(devDir)
	if err != nil {
		t.Fatal(err)
	}
	bins := binaries(t)
	for _, dir := range []string{devDir, prodDir} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			m := renderT(t, dir)
			for _, err := range check(m, bins, examples) {
				t.Error(err)
			}
		})
	}
}

// The base is not applied on its own, but it must render and decode.
func TestBaseRenders(t *testing.T) {
	t.Parallel()
	renderT(t, "base")
}

func TestDevOverlay(t *testing.T) {
	t.Parallel()
	m := renderT(t, devDir)
	examples, err := loadExampleSecrets(devDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.statefulSets) != 1 || m.statefulSets[0].Name != "postgres" {
		t.Fatalf("dev has StatefulSets %v, want one called postgres", names(m.statefulSets))
	}
	if r := m.statefulSets[0].Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("dev postgres replicas = %v, want 1 (a single instance)", r)
	}
	if m.service("postgres") == nil {
		t.Error("dev has no postgres Service")
	}
	// The example DSNs must reach the dev database with its example user.
	pg := examples["postgres-secrets"]
	wantPrefix := fmt.Sprintf("postgres://%s:%s@postgres:5432/%s", pg["user"], pg["password"], pg["database"])
	for _, name := range []string{"authsvc-secrets", "catalogsvc-secrets"} {
		if dsn := examples[name]["dsn"]; !strings.HasPrefix(dsn, wantPrefix) {
			t.Errorf("%s dsn = %q, want it to start with %q (the dev postgres)", name, dsn, wantPrefix)
		}
	}
	// The example cart key must be one catalogsvc accepts when switched to
	// request mode.
	fs := newFlagSet("catalogsvc")
	cfg := catalogsvc.RegisterFlags(fs)
	cfg.CartMode, cfg.CartKey = catalogsvc.CartModeRequest, examples["catalogsvc-secrets"]["cart-key"]
	cfg.DSN = examples["catalogsvc-secrets"]["dsn"]
	cfg.Auth.ServiceCredential = examples["catalogsvc-secrets"]["service-credential"]
	if err := cfg.Validate(); err != nil {
		t.Errorf("catalogsvc refuses the example secrets in request mode: %v", err)
	}
	// catalogsvc's service credential must be one authsvc accepts.
	if !slices.Contains(strings.Split(examples["authsvc-secrets"]["service-credentials"], ","), cfg.Auth.ServiceCredential) {
		t.Error("the example catalogsvc service-credential is not among authsvc's service-credentials")
	}
	if len(m.secrets) != len(examples) {
		t.Errorf("dev renders %d Secrets, want the %d generated from examples", len(m.secrets), len(examples))
	}
}

func TestProdOverlay(t *testing.T) {
	t.Parallel()
	m := renderT(t, prodDir)
	if len(m.secrets) != 0 {
		t.Errorf("prod renders Secrets %v: production secrets are created out of band, never from the repository", names(m.secrets))
	}
	if len(m.statefulSets) != 0 {
		t.Errorf("prod renders StatefulSets %v: production PostgreSQL is external", names(m.statefulSets))
	}
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") || strings.HasSuffix(c.Image, ":dev") {
				t.Errorf("prod Deployment %s runs image %q, want a pinned release tag or digest", d.Name, c.Image)
			}
		}
	}
}

// names lists the names of objects, for messages.
func names[T any, P interface {
	*T
	GetName() string
}](objs []T) []string {
	var out []string
	for i := range objs {
		out = append(out, P(&objs[i]).GetName())
	}
	return out
}

// Strict decoding is what makes a misspelt field fail rather than vanish:
// prove it on a rendered kustomization with one unknown field patched in.
func TestUnknownFieldFailsToDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, patch string
	}{
		{"misspelt field", `[{"op": "add", "path": "/spec/template/spec/containers/0/readinesProbe", "value": {"grpc": {"port": 8082}}}]`},
		{"field in the wrong case", `[{"op": "add", "path": "/spec/template/spec/terminationgraceperiodseconds", "value": 60}]`},
		{"field at the wrong level", `[{"op": "add", "path": "/spec/template/spec/maxSurge", "value": 1}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The real base, copied into memory, under an overlay that
			// patches in the unknown field.
			fsys := filesys.MakeFsInMemory()
			files, err := filepath.Glob("base/*.yaml")
			if err != nil || len(files) == 0 {
				t.Fatalf("base files: %v %v", files, err)
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := fsys.WriteFile("/k/"+f, b); err != nil {
					t.Fatal(err)
				}
			}
			k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base
patches:
  - target: {kind: Deployment, name: catalogsvc}
    patch: '%s'
`, tt.patch)
			if err := fsys.WriteFile("/k/broken/kustomization.yaml", []byte(k)); err != nil {
				t.Fatal(err)
			}
			_, err = renderFS(fsys, "/k/broken")
			if err == nil || !strings.Contains(err.Error(), "catalogsvc") {
				t.Fatalf("render with %s: err = %v, want a decoding error naming the catalogsvc Deployment", tt.name, err)
			}
			t.Logf("rejected as wanted: %v", err)
		})
	}
}
