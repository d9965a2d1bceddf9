package monitoring_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// prometheusPodLabels are the labels the Prometheus Operator puts on the
// pods of a Prometheus resource named k8s (its StatefulSet's selector
// labels, which the resource cannot change). The base's NetworkPolicies
// admit pods labelled app.kubernetes.io/name: prometheus to the metrics
// port; a Prometheus not run by the Operator needs that label on its pods.
var prometheusPodLabels = map[string]string{
	"app.kubernetes.io/name":       "prometheus",
	"app.kubernetes.io/managed-by": "prometheus-operator",
	"prometheus":                   "k8s",
}

// rendered is an overlay built with the monitoring component, the objects
// this test looks at decoded strictly into their API types.
type rendered struct {
	kinds        map[string]int // apiVersion/kind -> count, of every object
	deployments  []appsv1.Deployment
	netpols      []networkingv1.NetworkPolicy
	configMaps   []corev1.ConfigMap
	podMonitors  []monitoringv1.PodMonitor
	prometheusRs []monitoringv1.PrometheusRule
}

// renderWithComponent builds overlay (a directory under deploy/k8s) with
// this component added to its kustomization.yaml, as README.md says to:
// on a copy of deploy/k8s in memory, so the repository is not touched.
func renderWithComponent(t *testing.T, overlay string) *rendered {
	t.Helper()
	const root = "../.." // deploy/k8s
	fsys := filesys.MakeFsInMemory()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".json", ".env":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return fsys.WriteFile(filepath.Join("/k8s", rel), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	kfile := filepath.Join("/k8s", overlay, "kustomization.yaml")
	k, err := fsys.ReadFile(kfile)
	if err != nil {
		t.Fatal(err)
	}
	k = append(k, "\ncomponents:\n  - ../../components/monitoring\n"...)
	if err := fsys.WriteFile(kfile, k); err != nil {
		t.Fatal(err)
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, filepath.Join("/k8s", overlay))
	if err != nil {
		t.Fatalf("kustomize build %s with the monitoring component: %v", overlay, err)
	}
	r := &rendered{kinds: make(map[string]int)}
	var errs []error
	for _, res := range resMap.Resources() {
		y, err := res.AsYAML()
		if err == nil {
			err = r.add(y)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", res.CurId(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rendered) add(y []byte) error {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return err
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
		return err
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	r.kinds[gvk]++
	switch gvk {
	case "apps/v1/Deployment":
		return decodeInto(j, &r.deployments)
	case "networking.k8s.io/v1/NetworkPolicy":
		return decodeInto(j, &r.netpols)
	case "v1/ConfigMap":
		return decodeInto(j, &r.configMaps)
	case "monitoring.coreos.com/v1/PodMonitor":
		return decodeInto(j, &r.podMonitors)
	case "monitoring.coreos.com/v1/PrometheusRule":
		return decodeInto(j, &r.prometheusRs)
	}
	return nil
}

// decodeInto decodes j as a strict apiserver would (no unknown, duplicate
// or miscased fields) and appends it to *list.
func decodeInto[T any](j []byte, list *[]T) error {
	var v T
	strict, err := sigsjson.UnmarshalStrict(j, &v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if err := errors.Join(strict...); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// TestComponentWithOverlays builds each overlay with the component and
// checks what it adds: a PodMonitor per service that selects the service's
// pods on a port they have and that the NetworkPolicies open to Prometheus,
// the PrometheusRule with the rules file's groups, and the dashboard
// ConfigMap, all in the overlay's namespace.
func TestComponentWithOverlays(t *testing.T) {
	t.Parallel()
	rule := loadRule(t)
	dashboard, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, overlay := range []string{"overlays/dev", "overlays/prod"} {
		t.Run(overlay, func(t *testing.T) {
			t.Parallel()
			r := renderWithComponent(t, overlay)
			want := map[string]int{
				"monitoring.coreos.com/v1/PodMonitor":     2,
				"monitoring.coreos.com/v1/PrometheusRule": 1,
				"v1/ConfigMap":       1,
				"apps/v1/Deployment": 2,
			}
			for gvk, n := range want {
				if r.kinds[gvk] != n {
					t.Errorf("%d objects of kind %s, want %d (all kinds: %v)", r.kinds[gvk], gvk, n, r.kinds)
				}
			}

			for _, pr := range r.prometheusRs {
				checkNamespace(t, "PrometheusRule", pr.ObjectMeta)
				if got, _ := yaml.Marshal(pr.Spec.Groups); string(got) != string(mustMarshal(t, rule.Spec.Groups)) {
					t.Errorf("PrometheusRule %s: groups differ from prometheusrule.yaml after the build:\n%s", pr.Name, got)
				}
			}
			for _, cm := range r.configMaps {
				checkNamespace(t, "ConfigMap", cm.ObjectMeta)
				if cm.Name != "tokencart-dashboard" || cm.Labels["grafana_dashboard"] != "1" {
					t.Errorf("ConfigMap %s labels %v, want tokencart-dashboard with grafana_dashboard: \"1\"", cm.Name, cm.Labels)
				}
				if cm.Data["tokencart.json"] != string(dashboard) {
					t.Errorf("ConfigMap %s: tokencart.json is not dashboard.json", cm.Name)
				}
			}

			monitored := map[string]bool{}
			for _, pm := range r.podMonitors {
				checkNamespace(t, "PodMonitor", pm.ObjectMeta)
				for _, d := range r.podMonitorTargets(t, pm) {
					monitored[d.Name] = true
				}
			}
			for _, d := range r.deployments {
				if !monitored[d.Name] {
					t.Errorf("Deployment %s: no PodMonitor scrapes it", d.Name)
				}
			}
		})
	}
}

// podMonitorTargets checks pm against the rendered objects and returns the
// Deployments it scrapes: its selector picks their pods, each endpoint
// names a container port of theirs, and a NetworkPolicy admits Prometheus
// pods from any namespace to that port.
func (r *rendered) podMonitorTargets(t *testing.T, pm monitoringv1.PodMonitor) []appsv1.Deployment {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Errorf("PodMonitor %s: selector %v: %v", pm.Name, pm.Spec.Selector, err)
		return nil
	}
	if ns := pm.Spec.NamespaceSelector; ns.Any || len(ns.MatchNames) > 0 {
		t.Errorf("PodMonitor %s: namespaceSelector %+v; want its own namespace (the default)", pm.Name, ns)
	}
	if pm.Spec.JobLabel != "app.kubernetes.io/name" {
		t.Errorf("PodMonitor %s: jobLabel %q; the rules and the dashboard select job by app.kubernetes.io/name", pm.Name, pm.Spec.JobLabel)
	}
	var targets []appsv1.Deployment
	for _, d := range r.deployments {
		podLabels := labels.Set(d.Spec.Template.Labels)
		if !sel.Matches(podLabels) {
			continue
		}
		targets = append(targets, d)
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			if ep.Port == nil {
				t.Errorf("PodMonitor %s: an endpoint without a port name", pm.Name)
				continue
			}
			port, ok := containerPort(d, *ep.Port)
			if !ok {
				t.Errorf("PodMonitor %s: Deployment %s has no container port named %q", pm.Name, d.Name, *ep.Port)
				continue
			}
			if !r.admitsPrometheus(podLabels, port) {
				t.Errorf("PodMonitor %s: no NetworkPolicy admits pods labelled %v from any namespace to %s port %s (%d)",
					pm.Name, prometheusPodLabels, d.Name, port.Name, port.ContainerPort)
			}
		}
	}
	if len(targets) == 0 {
		t.Errorf("PodMonitor %s: selector %v picks no Deployment's pods", pm.Name, sel)
	}
	return targets
}

func containerPort(d appsv1.Deployment, name string) (corev1.ContainerPort, bool) {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p, true
			}
		}
	}
	return corev1.ContainerPort{}, false
}

// admitsPrometheus reports whether an ingress NetworkPolicy that selects
// pods with podLabels has a rule admitting Prometheus pods, in whatever
// namespace, to port.
func (r *rendered) admitsPrometheus(podLabels labels.Set, port corev1.ContainerPort) bool {
	for _, np := range r.netpols {
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || !sel.Matches(podLabels) {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			if admitsPort(rule.Ports, port) && slices.ContainsFunc(rule.From, admitsPrometheusPeer) {
				return true
			}
		}
	}
	return false
}

func admitsPort(ports []networkingv1.NetworkPolicyPort, port corev1.ContainerPort) bool {
	if len(ports) == 0 {
		return true
	}
	return slices.ContainsFunc(ports, func(p networkingv1.NetworkPolicyPort) bool {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			return false
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String:
			return p.Port.StrVal == port.Name
		default:
			return p.Port.IntVal == port.ContainerPort
		}
	})
}

// admitsPrometheusPeer: the peer admits Prometheus pods in every namespace
// (Prometheus runs in a namespace of its own, e.g. monitoring).
func admitsPrometheusPeer(peer networkingv1.NetworkPolicyPeer) bool {
	if peer.IPBlock != nil || peer.NamespaceSelector == nil || peer.PodSelector == nil {
		return false
	}
	nsSel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
	if err != nil || !nsSel.Empty() {
		return false
	}
	podSel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
	return err == nil && podSel.Matches(labels.Set(prometheusPodLabels))
}

func checkNamespace(t *testing.T, kind string, m metav1.ObjectMeta) {
	t.Helper()
	if m.Namespace != "tokencart" {
		t.Errorf("%s %s in namespace %q, want the overlay's tokencart", kind, m.Name, m.Namespace)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
