package k8s_test

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/sqldb"
)

const (
	// namespace is where every tokencart object lives.
	namespace = "tokencart"
	// nonrootUID is the distroless nonroot user the images run as.
	nonrootUID = 65532
	// adminShutdown is how long internal/serve gives the admin HTTP server
	// to stop after the gRPC drain (its adminShutdownTimeout): part of the
	// time the pod needs after SIGTERM.
	adminShutdown = 5 * time.Second
	// defaultGrace is Kubernetes' terminationGracePeriodSeconds default.
	defaultGrace = 30
)

// runtimeEnv are environment variables read by the Go runtime or the
// OpenTelemetry SDK rather than by a binary's flags; OTEL_* is also allowed.
var runtimeEnv = []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"}

// Bounds of the Go runtime's GC settings in a service container (see
// goRuntime).
const (
	// memLimitMinPct and memLimitMaxPct bound GOMEMLIMIT as a share of the
	// container's memory limit; about 80% is the aim.
	memLimitMinPct, memLimitMaxPct = 50, 90
	// gogcMin and gogcMax bound GOGC when it is set.
	gogcMin, gogcMax = 100, 1000
)

// binary is what a service binary serves and accepts, as the manifests must
// agree with it.
type binary struct {
	// name is the binary's name and that of its Deployment, container,
	// image (tokencart/NAME) and ClusterIP Service.
	name string
	// envPrefix is the prefix of its environment variables (envflag).
	envPrefix string
	// newFlags returns a fresh FlagSet with every flag of the binary, and a
	// function that validates the configuration those flags hold, as the
	// binary does at start.
	newFlags func() (fs *flag.FlagSet, validate func() error)
	// services are the gRPC services it serves, each also a gRPC health
	// service name; "" (the whole server) is always allowed too.
	services []string
	// required returns the flags that must be set in a deployment, given
	// the flags as the manifests set them.
	required func(fs *flag.FlagSet) []string
	// minReplicas is the fewest replicas it may run with.
	minReplicas int32
	// headless means it needs a headless Service NAME-headless for
	// client-side round_robin over dns:///.
	headless bool
	// hpaMin and hpaMax, when non-zero, require a CPU HorizontalPodAutoscaler
	// with exactly these bounds.
	hpaMin, hpaMax int32
}

// checker collects invariant violations.
type checker struct {
	errs []error
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// check returns every way m breaks the invariants that make the services
// safe to run and scale, for the binaries bins. Secrets referenced but not
// rendered in m must be among examples (the dev overlay's generated ones).
func check(m *manifests, bins []binary, examples exampleSecrets) []error {
	c := &checker{}
	c.namespaces(m)
	secrets := secretValues(m, examples)
	flags := make(map[string]*flag.FlagSet)
	for _, b := range bins {
		if fs := c.binary(m, b, secrets); fs != nil {
			flags[b.name] = fs
		}
	}
	c.agreement(m, flags)
	c.selectors(m)
	c.pods(m)
	c.secretRefs(m, examples)
	c.network(m)
	return c.errs
}

// podTemplate is a workload's pod template with the workload's kind and name.
type podTemplate struct {
	owner string // e.g. "Deployment catalogsvc"
	tmpl  *corev1.PodTemplateSpec
}

func (m *manifests) podTemplates() []podTemplate {
	var out []podTemplate
	for i := range m.deployments {
		out = append(out, podTemplate{"Deployment " + m.deployments[i].Name, &m.deployments[i].Spec.Template})
	}
	for i := range m.statefulSets {
		out = append(out, podTemplate{"StatefulSet " + m.statefulSets[i].Name, &m.statefulSets[i].Spec.Template})
	}
	return out
}

func (c *checker) namespaces(m *manifests) {
	if len(m.namespaces) != 1 || m.namespaces[0].Name != namespace {
		c.errorf("namespace: want exactly the Namespace %s, got %v", namespace, names(m.namespaces))
	}
	objs := []metav1.Object{}
	for _, list := range [][]metav1.Object{
		objects(m.deployments), objects(m.statefulSets), objects(m.services), objects(m.secrets),
		objects(m.hpas), objects(m.pdbs), objects(m.netpols),
	} {
		objs = append(objs, list...)
	}
	for _, o := range objs {
		if o.GetNamespace() != namespace {
			c.errorf("namespace: %s is in namespace %q, want %q", o.GetName(), o.GetNamespace(), namespace)
		}
	}
}

func objects[T any, P interface {
	*T
	metav1.Object
}](list []T) []metav1.Object {
	out := make([]metav1.Object, len(list))
	for i := range list {
		out[i] = P(&list[i])
	}
	return out
}

// binary checks b's Deployment, Services, PDB and HPA against what b serves,
// and returns b's flags as the Deployment sets them (nil if it has none).
func (c *checker) binary(m *manifests, b binary, secrets secretLookup) *flag.FlagSet {
	d := m.deployment(b.name)
	if d == nil {
		c.errorf("%s: no Deployment", b.name)
		return nil
	}
	pod := &d.Spec.Template.Spec
	ctr := container(pod, b.name)
	if ctr == nil {
		c.errorf("%s: Deployment has no container called %s", b.name, b.name)
		return nil
	}
	if repo := imageRepo(ctr.Image); repo != "tokencart/"+b.name {
		c.errorf("%s: image %q, want tokencart/%s", b.name, ctr.Image, b.name)
	}

	fs := c.env(b, ctr, secrets)
	c.goRuntime(b, ctr)
	grpcPort, err1 := portOf(fs, "grpc-addr")
	adminPort, err2 := portOf(fs, "admin-addr")
	if err := errors.Join(err1, err2); err != nil {
		c.errorf("%s: %w", b.name, err)
		return fs
	}
	for _, p := range []struct {
		name string
		want int32
		what string
	}{{"grpc", grpcPort, "--grpc-addr"}, {"metrics", adminPort, "--admin-addr (the admin server serves /metrics)"}} {
		got, ok := namedPort(ctr, p.name)
		switch {
		case !ok:
			c.errorf("%s: ports: no container port named %q", b.name, p.name)
		case got != p.want:
			c.errorf("%s: ports: container port %q is %d, but the binary listens on %d (%s)", b.name, p.name, got, p.want, p.what)
		}
	}

	if fs.Lookup("public-addr") != nil {
		c.publicPort(m, b, ctr, fs)
	}
	c.probes(b, ctr, fs, grpcPort, adminPort)
	c.termination(b, pod, ctr, fs)
	c.rollout(m, b, d)
	c.placement(b, d)
	c.scrape(b, d, adminPort)
	c.serviceFor(m, b, b.name, d, grpcPort, false)
	if b.headless {
		c.serviceFor(m, b, b.name+"-headless", d, grpcPort, true)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != nonrootUID {
		c.errorf("%s: securityContext: pod runAsUser must be %d, the image's nonroot user", b.name, nonrootUID)
	}
	return fs
}

// publicPort: a binary with a public HTTP listener (authsvc's discovery
// document and JWKS) has a container port named public on it, and its
// Service exposes that port under the same name.
func (c *checker) publicPort(m *manifests, b binary, ctr *corev1.Container, fs *flag.FlagSet) {
	port, err := portOf(fs, "public-addr")
	if err != nil {
		c.errorf("%s: %w", b.name, err)
		return
	}
	if got, ok := namedPort(ctr, "public"); !ok || got != port {
		c.errorf("%s: ports: container port \"public\" is %d (present %v), but the binary serves its public HTTP listener on %d (--public-addr)", b.name, got, ok, port)
	}
	svc := m.service(b.name)
	if svc == nil {
		return // reported by serviceFor
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "public" })
	if i < 0 {
		c.errorf("%s: Service %s: no port named public: token consumers cannot reach the discovery document and JWKS", b.name, svc.Name)
		return
	}
	if target, err := resolvePort(ctr, svc.Spec.Ports[i].TargetPort); err != nil || target != port {
		c.errorf("%s: Service %s: port public targets %v (%v), but the binary serves it on %d", b.name, svc.Name, svc.Spec.Ports[i].TargetPort.String(), err, port)
	}
}

// agreement: settings of the two binaries that must fit each other.
func (c *checker) agreement(m *manifests, flags map[string]*flag.FlagSet) {
	auth, catalog := flags["authsvc"], flags["catalogsvc"]
	if auth == nil || catalog == nil {
		return
	}
	str := func(fs *flag.FlagSet, name string) string {
		if f := fs.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	dur := func(fs *flag.FlagSet, name string) time.Duration {
		d, err := durationOf(fs, name)
		if err != nil {
			c.errorf("agreement: %w", err)
		}
		return d
	}
	for _, name := range []string{"issuer", "audience"} {
		if a, b := str(auth, name), str(catalog, name); a != b {
			c.errorf("agreement: authsvc mints tokens with --%s %q but catalogsvc accepts only %q", name, a, b)
		}
	}
	// The issuer is where consumers discover authsvc: its Service's public
	// port, by a name that resolves in the cluster.
	if u, err := url.Parse(str(auth, "issuer")); err != nil || u.Host == "" {
		c.errorf("agreement: authsvc --issuer %q is not a URL", str(auth, "issuer"))
	} else if svc := m.service("authsvc"); svc != nil {
		host, port := u.Hostname(), u.Port()
		switch {
		case !slices.Contains([]string{"authsvc." + namespace + ".svc", "authsvc." + namespace + ".svc.cluster.local"}, host):
			c.errorf("agreement: authsvc --issuer %q does not name the authsvc Service by a name that resolves in every namespace", u)
		case !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port && p.Name == "public" }):
			c.errorf("agreement: authsvc --issuer %q: port %q is not the authsvc Service's public port", u, port)
		}
	}
	// A new signing key must reach every catalogsvc replica before it signs.
	if refresh, reload, publish := dur(catalog, "keyset-refresh"), dur(auth, "key-reload-interval"), dur(auth, "key-publish-delay"); refresh+reload > publish {
		c.errorf("agreement: catalogsvc --keyset-refresh %v + authsvc --key-reload-interval %v exceeds authsvc --key-publish-delay %v: tokens signed by a new key would be refused",
			refresh, reload, publish)
	}
	// A quiet revocation feed must not look stale between heartbeats.
	if hb, stale := dur(auth, "revocation-heartbeat"), dur(catalog, "revocation-staleness"); hb >= stale {
		c.errorf("agreement: authsvc --revocation-heartbeat %v must be below catalogsvc --revocation-staleness %v", hb, stale)
	}
	// catalogsvc must dial authsvc's Service on its gRPC port.
	addr := str(catalog, "auth-addr")
	host, port, err := net.SplitHostPort(addr)
	svc := m.service("authsvc")
	switch {
	case err != nil:
		c.errorf("agreement: catalogsvc --auth-addr %q: %w", addr, err)
	case svc == nil:
	case !slices.Contains([]string{"authsvc", "authsvc." + namespace, "authsvc." + namespace + ".svc", "authsvc." + namespace + ".svc.cluster.local"}, host):
		c.errorf("agreement: catalogsvc --auth-addr %q does not name the authsvc Service", addr)
	case !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port && p.Name == "grpc" }):
		c.errorf("agreement: catalogsvc --auth-addr %q: port %s is not the authsvc Service's grpc port", addr, port)
	}
}

// env checks the container's environment against the binary's flags and
// returns the flags as that environment sets them.
//
// A flag read from a Secret gets the value that the Secret has in this
// overlay or in the dev examples, so that the whole configuration can be
// validated as the binary would at start.
func (c *checker) env(b binary, ctr *corev1.Container, secrets secretLookup) *flag.FlagSet {
	fs, validate := b.newFlags()
	byEnv := make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) { byEnv[envflag.EnvName(b.envPrefix, f.Name)] = f.Name })
	set := make(map[string]bool)
	seen := make(map[string]bool)
	for _, e := range ctr.Env {
		if seen[e.Name] {
			c.errorf("%s: env: %s is set twice", b.name, e.Name)
		}
		seen[e.Name] = true
		name, ok := byEnv[e.Name]
		if !ok {
			if !slices.Contains(runtimeEnv, e.Name) && !strings.HasPrefix(e.Name, "OTEL_") {
				c.errorf("%s: env: %s is not a configuration variable of %s", b.name, e.Name, b.name)
			}
			continue
		}
		set[name] = true
		if e.ValueFrom != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref == nil {
				continue
			}
			// A missing key is reported by secretRefs.
			if v, ok := secrets(ref.Name, ref.Key); ok {
				if err := fs.Set(name, v); err != nil {
					// Not the value: it is a secret, even if an example.
					c.errorf("%s: env: %s from Secret %s key %s is invalid for --%s", b.name, e.Name, ref.Name, ref.Key, name)
				}
			}
			continue
		}
		if e.Value == "" {
			// envflag treats an empty variable as unset.
			c.errorf("%s: env: %s is empty, which means the default: remove it or give a value", b.name, e.Name)
			continue
		}
		if err := fs.Set(name, e.Value); err != nil {
			c.errorf("%s: env: %s=%q is invalid for --%s: %w", b.name, e.Name, e.Value, name, err)
		}
	}
	for _, name := range b.required(fs) {
		if !set[name] {
			c.errorf("%s: env: required %s (--%s) is not set", b.name, envflag.EnvName(b.envPrefix, name), name)
		}
	}
	// Replicas are interchangeable only if they share one database; a
	// SQLite path would give each pod its own.
	if f := fs.Lookup("dsn"); f != nil && !sqldb.IsPostgres(f.Value.String()) {
		c.errorf("%s: env: the DSN is not a postgres:// URL: every replica must share one PostgreSQL database", b.name)
	}
	if err := validate(); err != nil {
		c.errorf("%s: env: the binary would refuse this configuration: %w", b.name, err)
	}
	return fs
}

// goRuntime: the Go runtime's GC settings in the container's environment.
//
// Neither is needed: the binaries set GOMEMLIMIT to 80% of the container's
// memory limit, read from its cgroup (internal/runtimetune; the resources
// check requires the limit), and GOGC to 400 (bench/RESULTS.md) when the
// environment sets neither. One set here overrides that, so it is checked:
//
// GOMEMLIMIT makes the GC collect harder as the heap nears it. It is a soft
// limit on the memory the runtime manages, while the container's limit also
// charges what the runtime does not count (the binary's text, kernel
// buffers), so it must sit well under that limit: 50% to 90% of it. It is in
// Go's syntax (bytes, or a B/KiB/MiB/GiB/TiB suffix), which is not
// Kubernetes' (Mi): a malformed value stops the runtime at start. A literal
// must move with the limit, which is why the manifests leave it out.
//
// GOGC: below 100 only costs CPU, far above 1000 lets the heap reach
// GOMEMLIMIT on a small live heap, "off" leaves GOMEMLIMIT alone to bound
// the heap, and a value that is not an integer is silently taken as 100.
func (c *checker) goRuntime(b binary, ctr *corev1.Container) {
	env := make(map[string]corev1.EnvVar)
	for _, e := range ctr.Env {
		if _, dup := env[e.Name]; !dup { // duplicates are reported by env
			env[e.Name] = e
		}
	}
	limit := ctr.Resources.Limits.Memory()
	switch e, ok := env["GOMEMLIMIT"]; {
	case !ok:
		// The binary sets it from the container's limit.
	case e.ValueFrom != nil:
		c.errorf("%s: env: GOMEMLIMIT must be a literal value: the downward API gives only the whole memory limit, and GOMEMLIMIT must sit below it (%d%% to %d%%)", b.name, memLimitMinPct, memLimitMaxPct)
	case e.Value == "" || e.Value == "off":
		c.errorf("%s: env: GOMEMLIMIT=%q sets no limit; leave it out and the binary sets 80%% of the memory limit", b.name, e.Value)
	default:
		n, err := parseGoByteCount(e.Value)
		switch {
		case err != nil:
			c.errorf("%s: env: GOMEMLIMIT=%q is not a Go byte count (bytes, or a B/KiB/MiB/GiB/TiB suffix; Kubernetes' Mi or M is not Go's): %w; the Go runtime would refuse to start", b.name, e.Value, err)
		case limit.IsZero():
			c.errorf("%s: env: GOMEMLIMIT=%s, but the container has no memory limit for it to stay under", b.name, e.Value)
		default:
			pct := float64(n) / float64(limit.Value()) * 100
			if pct < memLimitMinPct || pct > memLimitMaxPct {
				c.errorf("%s: env: GOMEMLIMIT=%s is %.1f%% of the container's memory limit %s, want %d%% to %d%% (about 80%%): GOMEMLIMIT must move with the limit",
					b.name, e.Value, pct, limit, memLimitMinPct, memLimitMaxPct)
			}
		}
	}
	if e, ok := env["GOGC"]; ok {
		n, err := parseGoInt(e.Value)
		switch {
		case e.ValueFrom != nil:
			c.errorf("%s: env: GOGC must be a literal value, an integer from %d to %d", b.name, gogcMin, gogcMax)
		case e.Value == "off" || err == nil && n < 0:
			c.errorf("%s: env: GOGC=%s turns the proportional collector off: the heap grows to GOMEMLIMIT before any collection, and without bound if GOMEMLIMIT is dropped; want an integer from %d to %d",
				b.name, e.Value, gogcMin, gogcMax)
		case err != nil:
			c.errorf("%s: env: GOGC=%q is not an integer: the Go runtime would silently use 100; want an integer from %d to %d", b.name, e.Value, gogcMin, gogcMax)
		case n < gogcMin || n > gogcMax:
			c.errorf("%s: env: GOGC=%d is outside %d to %d: below %d collects more often than the default, above %d the heap grows to over %dx the live heap between collections",
				b.name, n, gogcMin, gogcMax, gogcMin, gogcMax, gogcMax/100+1)
		}
	}
}

// parseGoByteCount parses s as the Go runtime parses GOMEMLIMIT (its
// parseByteCount): a non-negative decimal integer (strconv.ParseInt, base
// 10) of bytes, optionally followed by B, KiB, MiB, GiB or TiB. "off", which
// means no limit, is not a byte count.
func parseGoByteCount(s string) (int64, error) {
	num, shift := s, 0
	for _, u := range []struct {
		suffix string
		shift  int
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"B", 0}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = rest, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	switch {
	case err != nil || n < 0:
		return 0, errors.New("want a non-negative integer then an optional B, KiB, MiB, GiB or TiB")
	case n > math.MaxInt64>>shift:
		return 0, errors.New("overflows an int64 byte count")
	}
	return n << shift, nil
}

// parseGoInt parses s as the Go runtime parses a GOGC other than "off": a
// base-10 int32 (strconv.ParseInt). A negative value turns the collector off.
func parseGoInt(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	return int(n), err
}

// probes: readiness is gRPC health of a served service (it follows the
// readiness checks, the database included); liveness and startup must not
// depend on the database, so they ask /healthz on the admin port. Every gRPC
// health status, "" included, follows the readiness checks, so a gRPC
// liveness probe would restart pods whenever the database is down.
//
// The kubelet's gRPC probe speaks plaintext only: with --tls-cert, readiness
// must ask the admin port's /readyz instead.
func (c *checker) probes(b binary, ctr *corev1.Container, fs *flag.FlagSet, grpcPort, adminPort int32) {
	r := ctr.ReadinessProbe
	tls := false
	if f := fs.Lookup("tls-cert"); f != nil && f.Value.String() != "" {
		tls = true
	}
	switch {
	case tls && (r == nil || r.HTTPGet == nil || r.HTTPGet.Path != "/readyz"):
		c.errorf("%s: readinessProbe: the gRPC port serves TLS, which the kubelet's gRPC probe cannot speak: want httpGet /readyz on the admin port", b.name)
	case tls:
		if port, err := resolvePort(ctr, r.HTTPGet.Port); err != nil || port != adminPort {
			c.errorf("%s: readinessProbe: /readyz must be asked on the admin port %d", b.name, adminPort)
		}
	case r == nil || r.GRPC == nil:
		c.errorf("%s: readinessProbe: want a native gRPC health probe", b.name)
	case r.GRPC.Port != grpcPort:
		c.errorf("%s: readinessProbe: gRPC port %d, but the binary serves gRPC on %d", b.name, r.GRPC.Port, grpcPort)
	default:
		svc := ""
		if r.GRPC.Service != nil {
			svc = *r.GRPC.Service
		}
		if svc != "" && !slices.Contains(b.services, svc) {
			c.errorf("%s: readinessProbe: gRPC health service %q is not served by %s (it serves %q)", b.name, svc, b.name, b.services)
		}
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
	}{{"livenessProbe", ctr.LivenessProbe}, {"startupProbe", ctr.StartupProbe}} {
		switch {
		case p.probe == nil:
			c.errorf("%s: %s: missing", b.name, p.kind)
		case p.probe.GRPC != nil || p.probe.Exec != nil || p.probe.HTTPGet == nil:
			c.errorf("%s: %s: want httpGet /healthz on the admin port: gRPC health follows the database, and the image has no shell", b.name, p.kind)
		case p.probe.HTTPGet.Path != "/healthz":
			c.errorf("%s: %s: path %q, want /healthz (the only endpoint that does not check the database)", b.name, p.kind, p.probe.HTTPGet.Path)
		default:
			if port, err := resolvePort(ctr, p.probe.HTTPGet.Port); err != nil {
				c.errorf("%s: %s: %w", b.name, p.kind, err)
			} else if port != adminPort {
				c.errorf("%s: %s: port %d, but the admin server (/healthz) listens on %d", b.name, p.kind, port, adminPort)
			}
		}
	}
}

// termination: after the preStop pause, SIGTERM starts the drain (NOT_SERVING
// for --drain-delay while still serving), then GracefulStop for up to
// --shutdown-timeout, then the admin server's shutdown. The grace period must
// cover all of it or the kubelet kills calls in flight.
func (c *checker) termination(b binary, pod *corev1.PodSpec, ctr *corev1.Container, fs *flag.FlagSet) {
	var preStop time.Duration
	switch {
	case ctr.Lifecycle == nil || ctr.Lifecycle.PreStop == nil:
		c.errorf("%s: preStop: missing; endpoints must be removed before the drain starts", b.name)
	case ctr.Lifecycle.PreStop.Sleep == nil:
		c.errorf("%s: preStop: want the native sleep action (the distroless image has no shell for exec)", b.name)
	case ctr.Lifecycle.PreStop.Sleep.Seconds <= 0:
		c.errorf("%s: preStop: sleep %ds, want a positive pause", b.name, ctr.Lifecycle.PreStop.Sleep.Seconds)
	default:
		preStop = time.Duration(ctr.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	drain, err1 := durationOf(fs, "drain-delay")
	shutdown, err2 := durationOf(fs, "shutdown-timeout")
	if err := errors.Join(err1, err2); err != nil {
		c.errorf("%s: %w", b.name, err)
		return
	}
	grace := time.Duration(defaultGrace) * time.Second
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	if need := preStop + drain + shutdown + adminShutdown; grace <= need {
		c.errorf("%s: terminationGracePeriodSeconds %v must exceed preStop %v + drain delay %v + shutdown timeout %v + admin shutdown %v = %v",
			b.name, grace, preStop, drain, shutdown, adminShutdown, need)
	}
}

// rollout: replicas, the HPA, the PDB and the rolling update parameters.
func (c *checker) rollout(m *manifests, b binary, d *appsv1.Deployment) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	podLabels := labels.Set(d.Spec.Template.Labels)
	switch {
	case err != nil:
		c.errorf("%s: selector: %w", b.name, err)
	case sel.Empty():
		c.errorf("%s: selector: empty", b.name)
	case !sel.Matches(podLabels):
		c.errorf("%s: selector %v does not match the pod template's labels %v", b.name, sel, podLabels)
	}

	var hpas []string
	var floor int32
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != b.name {
			continue
		}
		hpas = append(hpas, h.Name)
		floor = 1
		if h.Spec.MinReplicas != nil {
			floor = *h.Spec.MinReplicas
		}
		if b.hpaMin != 0 && (floor != b.hpaMin || h.Spec.MaxReplicas != b.hpaMax) {
			c.errorf("%s: HPA %s: replicas %d to %d, want %d to %d", b.name, h.Name, floor, h.Spec.MaxReplicas, b.hpaMin, b.hpaMax)
		}
		cpu := false
		for _, mt := range h.Spec.Metrics {
			if mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU && mt.Resource.Target.AverageUtilization != nil {
				cpu = true
			}
		}
		if !cpu {
			c.errorf("%s: HPA %s: want a CPU utilisation target", b.name, h.Name)
		}
	}
	switch {
	case len(hpas) > 1:
		c.errorf("%s: HPAs %v all target it; want one", b.name, hpas)
	case len(hpas) == 0 && b.hpaMin != 0:
		c.errorf("%s: no HorizontalPodAutoscaler targets Deployment %s", b.name, b.name)
	case len(hpas) == 0:
		floor = 1
		if d.Spec.Replicas != nil {
			floor = *d.Spec.Replicas
		}
	}
	if floor < b.minReplicas {
		c.errorf("%s: runs as few as %d replicas, want at least %d", b.name, floor, b.minReplicas)
	}
	if r := d.Spec.Replicas; r != nil && *r < b.minReplicas {
		c.errorf("%s: replicas %d, want at least %d", b.name, *r, b.minReplicas)
	}

	var pdbs []string
	for _, p := range m.pdbs {
		ps, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || !ps.Matches(podLabels) {
			continue
		}
		pdbs = append(pdbs, p.Name)
		if mu := p.Spec.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(1) || p.Spec.MinAvailable != nil {
			c.errorf("%s: PodDisruptionBudget %s: want maxUnavailable 1 and no minAvailable", b.name, p.Name)
		}
	}
	if len(pdbs) != 1 {
		// Eviction fails outright for a pod covered by two budgets.
		c.errorf("%s: PodDisruptionBudgets selecting its pods: %v, want exactly one", b.name, pdbs)
	}

	s := d.Spec.Strategy
	if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
		s.RollingUpdate.MaxSurge == nil || *s.RollingUpdate.MaxSurge != intstr.FromInt32(1) ||
		s.RollingUpdate.MaxUnavailable == nil || *s.RollingUpdate.MaxUnavailable != intstr.FromInt32(0) {
		c.errorf("%s: strategy: want RollingUpdate with maxSurge 1 and maxUnavailable 0", b.name)
	}
}

// placement: replicas spread across nodes.
func (c *checker) placement(b binary, d *appsv1.Deployment) {
	for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if tsc.TopologyKey == "kubernetes.io/hostname" && err == nil && !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return
		}
	}
	c.errorf("%s: topologySpreadConstraints: none spreads its pods across kubernetes.io/hostname", b.name)
}

// scrape: the annotations Prometheus' kubernetes-pods job reads.
func (c *checker) scrape(b binary, d *appsv1.Deployment, adminPort int32) {
	want := map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.Itoa(int(adminPort)),
		"prometheus.io/path":   "/metrics",
	}
	for k, v := range want {
		if got := d.Spec.Template.Annotations[k]; got != v {
			c.errorf("%s: pod annotation %s = %q, want %q", b.name, k, got, v)
		}
	}
}

// serviceFor checks that the Service name selects d's pods and sends gRPC
// to the binary's gRPC port.
func (c *checker) serviceFor(m *manifests, b binary, name string, d *appsv1.Deployment, grpcPort int32, headless bool) {
	s := m.service(name)
	if s == nil {
		c.errorf("%s: no Service %s", b.name, name)
		return
	}
	if headless != (s.Spec.ClusterIP == corev1.ClusterIPNone) {
		c.errorf("%s: Service %s: clusterIP %q, headless must be %v", b.name, name, s.Spec.ClusterIP, headless)
	}
	if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		c.errorf("%s: Service %s: selector %v does not select its pods (labels %v)", b.name, name, labels.Set(s.Spec.Selector), labels.Set(d.Spec.Template.Labels))
	}
	ctr := container(&d.Spec.Template.Spec, b.name)
	for _, p := range s.Spec.Ports {
		if p.Name != "grpc" {
			continue
		}
		target := p.TargetPort
		if target == (intstr.IntOrString{}) {
			target = intstr.FromInt32(p.Port)
		}
		if port, err := resolvePort(ctr, target); err != nil {
			c.errorf("%s: Service %s: %w", b.name, name, err)
		} else if port != grpcPort {
			c.errorf("%s: Service %s: targets port %d, but the binary serves gRPC on %d", b.name, name, port, grpcPort)
		}
		return
	}
	c.errorf("%s: Service %s: no port named grpc", b.name, name)
}

// selectors: every Service, PDB and HPA selects or targets a workload, and
// every named target port exists on the pods a Service selects.
func (c *checker) selectors(m *manifests) {
	tmpls := m.podTemplates()
	for _, s := range m.services {
		n := 0
		for _, t := range tmpls {
			if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(t.tmpl.Labels)) {
				continue
			}
			n++
			for _, p := range s.Spec.Ports {
				if p.TargetPort.Type == intstr.String && !hasNamedPort(&t.tmpl.Spec, p.TargetPort.StrVal) {
					c.errorf("Service %s: target port %q is not a port of %s", s.Name, p.TargetPort.StrVal, t.owner)
				}
			}
		}
		if n == 0 {
			c.errorf("Service %s: selector %v selects no pods", s.Name, labels.Set(s.Spec.Selector))
		}
	}
	for _, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() || !slices.ContainsFunc(tmpls, func(t podTemplate) bool { return sel.Matches(labels.Set(t.tmpl.Labels)) }) {
			c.errorf("PodDisruptionBudget %s: selector selects no pods", p.Name)
		}
	}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || m.deployment(ref.Name) == nil {
			c.errorf("HorizontalPodAutoscaler %s: scaleTargetRef %s %s/%s is not a Deployment here", h.Name, ref.APIVersion, ref.Kind, ref.Name)
		}
	}
}

// pods: the restricted Pod Security Standard and resources, for every pod.
func (c *checker) pods(m *manifests) {
	for _, t := range m.podTemplates() {
		spec := &t.tmpl.Spec
		psc := spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			c.errorf("%s: securityContext: pod must set runAsNonRoot: true", t.owner)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			c.errorf("%s: securityContext: pod must use seccompProfile RuntimeDefault", t.owner)
		}
		if psc == nil || psc.FSGroup == nil {
			c.errorf("%s: securityContext: pod must set fsGroup so its volumes are writable", t.owner)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			c.errorf("%s: automountServiceAccountToken must be false: nothing here calls the Kubernetes API", t.owner)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			c.errorf("%s: must not share the host's namespaces", t.owner)
		}
		for _, ctr := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			sc := ctr.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				c.errorf("%s container %s: securityContext: want readOnlyRootFilesystem: true", t.owner, ctr.Name)
			}
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				c.errorf("%s container %s: securityContext: want allowPrivilegeEscalation: false", t.owner, ctr.Name)
			}
			if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				c.errorf("%s container %s: securityContext: want capabilities drop [ALL] and none added", t.owner, ctr.Name)
			}
			if sc != nil && sc.Privileged != nil && *sc.Privileged {
				c.errorf("%s container %s: securityContext: must not be privileged", t.owner, ctr.Name)
			}
			r := ctr.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
				c.errorf("%s container %s: resources: want cpu and memory requests and a memory limit", t.owner, ctr.Name)
			}
		}
	}
}

// secretLookup returns the value of key in Secret name.
type secretLookup func(name, key string) (string, bool)

// secretValues looks keys up in the Secrets m renders, else in examples.
func secretValues(m *manifests, examples exampleSecrets) secretLookup {
	return func(name, key string) (string, bool) {
		for _, s := range m.secrets {
			if s.Name != name {
				continue
			}
			if v, ok := s.StringData[key]; ok {
				return v, true
			}
			v, ok := s.Data[key]
			return string(v), ok
		}
		v, ok := examples[name][key]
		return v, ok
	}
}

// secretRefs: every Secret key a container reads exists, in a Secret the
// kustomization renders or else in the dev examples.
func (c *checker) secretRefs(m *manifests, examples exampleSecrets) {
	lookup := secretValues(m, examples)
	has := func(name, key string) bool {
		_, ok := lookup(name, key)
		return ok
	}
	for _, t := range m.podTemplates() {
		for _, ctr := range append(slices.Clone(t.tmpl.Spec.InitContainers), t.tmpl.Spec.Containers...) {
			for _, e := range ctr.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if !has(ref.Name, ref.Key) {
					c.errorf("%s container %s: env %s reads key %q of Secret %s, which neither this overlay nor the dev example secrets have",
						t.owner, ctr.Name, e.Name, ref.Key, ref.Name)
				}
			}
			for _, ef := range ctr.EnvFrom {
				if ef.SecretRef != nil {
					c.errorf("%s container %s: envFrom Secret %s: name each key with secretKeyRef so it can be checked", t.owner, ctr.Name, ef.SecretRef.Name)
				}
			}
		}
	}
}

// endpoint is one end of a network flow: a pod (in the manifests or a
// stand-in for a client, Prometheus or DNS) or an address outside the
// cluster.
type endpoint struct {
	what     string
	ns       string
	nsLabels map[string]string
	labels   map[string]string
	ports    []corev1.ContainerPort
	external bool
}

// network: ingress is denied by default, and the NetworkPolicies let
// exactly the intended flows through.
func (c *checker) network(m *manifests) {
	if !slices.ContainsFunc(m.netpols, func(p networkingv1.NetworkPolicy) bool {
		return len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			slices.Contains(policyTypes(&p), networkingv1.PolicyTypeIngress) && len(p.Spec.Ingress) == 0
	}) {
		c.errorf("network: no default-deny ingress NetworkPolicy (empty podSelector, policyTypes [Ingress], no rules): a pod added later would be open")
	}
	nsLabels := map[string]string{"kubernetes.io/metadata.name": namespace}
	for _, n := range m.namespaces {
		for k, v := range n.Labels {
			nsLabels[k] = v
		}
	}
	podOf := func(t *corev1.PodTemplateSpec, what string) endpoint {
		var ports []corev1.ContainerPort
		for _, ctr := range t.Spec.Containers {
			ports = append(ports, ctr.Ports...)
		}
		return endpoint{what: what, ns: namespace, nsLabels: nsLabels, labels: t.Labels, ports: ports}
	}
	outside := func(what, ns string, l map[string]string, ports ...corev1.ContainerPort) endpoint {
		return endpoint{what: what, ns: ns, nsLabels: map[string]string{"kubernetes.io/metadata.name": ns}, labels: l, ports: ports}
	}
	auth, catalog := m.deployment("authsvc"), m.deployment("catalogsvc")
	if auth == nil || catalog == nil {
		return // reported by binary
	}
	authPod, catalogPod := podOf(&auth.Spec.Template, "authsvc"), podOf(&catalog.Spec.Template, "catalogsvc")
	client := outside("a client pod (tokencart.io/client=true) in another namespace", "shop", map[string]string{"tokencart.io/client": "true"})
	stranger := outside("an unlabelled pod in another namespace", "shop", map[string]string{"app": "other"})
	prometheus := outside("Prometheus", "monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"})
	istiod := outside("istiod", "istio-system", map[string]string{"app": "istiod"})
	dns := outside("cluster DNS", "kube-system", map[string]string{"k8s-app": "kube-dns"},
		corev1.ContainerPort{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
		corev1.ContainerPort{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP})
	db := endpoint{what: "an external PostgreSQL", external: true,
		ports: []corev1.ContainerPort{{Name: "postgres", ContainerPort: 5432, Protocol: corev1.ProtocolTCP}}}
	for i := range m.statefulSets {
		if m.statefulSets[i].Name == "postgres" {
			db = podOf(&m.statefulSets[i].Spec.Template, "the dev PostgreSQL")
		}
	}

	type flow struct {
		from, to endpoint
		port     string // a named port of to
		proto    corev1.Protocol
		allow    bool
	}
	flows := []flow{
		{catalogPod, authPod, "grpc", corev1.ProtocolTCP, true},
		{client, catalogPod, "grpc", corev1.ProtocolTCP, true},
		{client, authPod, "grpc", corev1.ProtocolTCP, true},
		{catalogPod, authPod, "public", corev1.ProtocolTCP, true},
		{client, authPod, "public", corev1.ProtocolTCP, true},
		{istiod, authPod, "public", corev1.ProtocolTCP, true},
		{stranger, authPod, "public", corev1.ProtocolTCP, false},
		{prometheus, authPod, "public", corev1.ProtocolTCP, false},
		{istiod, authPod, "grpc", corev1.ProtocolTCP, false},
		{istiod, authPod, "metrics", corev1.ProtocolTCP, false},
		{prometheus, catalogPod, "metrics", corev1.ProtocolTCP, true},
		{prometheus, authPod, "metrics", corev1.ProtocolTCP, true},
		{authPod, db, "postgres", corev1.ProtocolTCP, true},
		{catalogPod, db, "postgres", corev1.ProtocolTCP, true},
		{authPod, dns, "dns", corev1.ProtocolUDP, true},
		{catalogPod, dns, "dns", corev1.ProtocolUDP, true},
		{stranger, catalogPod, "grpc", corev1.ProtocolTCP, false},
		{stranger, authPod, "grpc", corev1.ProtocolTCP, false},
		{stranger, catalogPod, "metrics", corev1.ProtocolTCP, false},
		{client, catalogPod, "metrics", corev1.ProtocolTCP, false},
		{client, authPod, "metrics", corev1.ProtocolTCP, false},
	}
	if !db.external {
		flows = append(flows, flow{stranger, db, "postgres", corev1.ProtocolTCP, false}, flow{client, db, "postgres", corev1.ProtocolTCP, false})
	}
	for _, f := range flows {
		port, ok := findPort(f.to.ports, f.port, f.proto)
		if !ok {
			c.errorf("network: %s has no %s port %q", f.to.what, f.proto, f.port)
			continue
		}
		in := allowed(m.netpols, f.to, f.from, port, f.proto, networkingv1.PolicyTypeIngress)
		out := allowed(m.netpols, f.from, f.to, port, f.proto, networkingv1.PolicyTypeEgress)
		if got := in && out; got != f.allow {
			verb := "blocked"
			if got {
				verb = "allowed"
			}
			c.errorf("network: %s -> %s port %s (%d/%s) is %s (ingress allowed %v, egress allowed %v)", f.from.what, f.to.what, f.port, port, f.proto, verb, in, out)
		}
	}
}

// allowed reports whether the NetworkPolicies let traffic into (ingress) or
// out of (egress) the pod self, from or to peer, on port/proto. Policies live
// in the tokencart namespace; a pod no policy of that type selects is not
// isolated for it.
func allowed(pols []networkingv1.NetworkPolicy, self, peer endpoint, port int32, proto corev1.Protocol, typ networkingv1.PolicyType) bool {
	if self.external {
		return true // outside the cluster: not subject to these policies
	}
	isolated := false
	for _, p := range pols {
		if p.Namespace != self.ns || !slices.Contains(policyTypes(&p), typ) || !selectorMatches(&p.Spec.PodSelector, self.labels) {
			continue
		}
		isolated = true
		if typ == networkingv1.PolicyTypeIngress {
			for _, r := range p.Spec.Ingress {
				if peersMatch(p.Namespace, r.From, peer) && portsMatch(r.Ports, self, port, proto) {
					return true
				}
			}
		} else {
			for _, r := range p.Spec.Egress {
				if peersMatch(p.Namespace, r.To, peer) && portsMatch(r.Ports, peer, port, proto) {
					return true
				}
			}
		}
	}
	return !isolated
}

// policyTypes applies the API's default: Ingress, plus Egress when the
// policy has egress rules.
func policyTypes(p *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(p.Spec.PolicyTypes) > 0 {
		return p.Spec.PolicyTypes
	}
	t := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(p.Spec.Egress) > 0 {
		t = append(t, networkingv1.PolicyTypeEgress)
	}
	return t
}

func peersMatch(policyNS string, peers []networkingv1.NetworkPolicyPeer, ep endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if peer.IPBlock != nil {
			// Only addresses outside the cluster are modelled as matching.
			if ep.external {
				return true
			}
			continue
		}
		if ep.external {
			continue
		}
		nsOK := ep.ns == policyNS
		if peer.NamespaceSelector != nil {
			nsOK = selectorMatches(peer.NamespaceSelector, ep.nsLabels)
		}
		podOK := peer.PodSelector == nil || selectorMatches(peer.PodSelector, ep.labels)
		if nsOK && podOK {
			return true
		}
	}
	return false
}

// portsMatch reports whether port/proto of dst is among ports; a named port
// is resolved on dst's containers.
func portsMatch(ports []networkingv1.NetworkPolicyPort, dst endpoint, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		pproto := corev1.ProtocolTCP
		if pp.Protocol != nil {
			pproto = *pp.Protocol
		}
		if pproto != proto {
			continue
		}
		switch {
		case pp.Port == nil:
			return true
		case pp.Port.Type == intstr.Int:
			end := pp.Port.IntVal
			if pp.EndPort != nil {
				end = *pp.EndPort
			}
			if port >= pp.Port.IntVal && port <= end {
				return true
			}
		default:
			if n, ok := findPort(dst.ports, pp.Port.StrVal, proto); ok && n == port {
				return true
			}
		}
	}
	return false
}

func selectorMatches(ls *metav1.LabelSelector, l map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	return err == nil && sel.Matches(labels.Set(l))
}

func findPort(ports []corev1.ContainerPort, name string, proto corev1.Protocol) (int32, bool) {
	for _, p := range ports {
		pp := p.Protocol
		if pp == "" {
			pp = corev1.ProtocolTCP
		}
		if p.Name == name && pp == proto {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func container(pod *corev1.PodSpec, name string) *corev1.Container {
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	return nil
}

func namedPort(ctr *corev1.Container, name string) (int32, bool) {
	return findPort(ctr.Ports, name, corev1.ProtocolTCP)
}

func hasNamedPort(pod *corev1.PodSpec, name string) bool {
	for i := range pod.Containers {
		if _, ok := namedPort(&pod.Containers[i], name); ok {
			return true
		}
	}
	return false
}

// resolvePort turns a probe's or Service's port (a number or a container
// port name) into a number.
func resolvePort(ctr *corev1.Container, p intstr.IntOrString) (int32, error) {
	if p.Type == intstr.Int {
		return p.IntVal, nil
	}
	if ctr == nil {
		return 0, fmt.Errorf("port %q: no container", p.StrVal)
	}
	n, ok := namedPort(ctr, p.StrVal)
	if !ok {
		return 0, fmt.Errorf("port %q is not a container port", p.StrVal)
	}
	return n, nil
}

// imageRepo returns the image reference without its tag or digest.
func imageRepo(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// portOf returns the port of the listen address in flag name.
func portOf(fs *flag.FlagSet, name string) (int32, error) {
	f := fs.Lookup(name)
	if f == nil {
		return 0, fmt.Errorf("the binary has no --%s flag", name)
	}
	_, port, err := net.SplitHostPort(f.Value.String())
	if err != nil {
		return 0, fmt.Errorf("--%s %q: %w", name, f.Value, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("--%s %q: want a fixed port", name, f.Value)
	}
	return int32(n), nil
}

// durationOf returns the value of the duration flag name.
func durationOf(fs *flag.FlagSet, name string) (time.Duration, error) {
	f := fs.Lookup(name)
	if f == nil {
		return 0, fmt.Errorf("the binary has no --%s flag", name)
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return 0, fmt.Errorf("--%s is not a duration flag", name)
	}
	d, ok := g.Get().(time.Duration)
	if !ok {
		return 0, fmt.Errorf("--%s is not a duration flag", name)
	}
	return d, nil
}
