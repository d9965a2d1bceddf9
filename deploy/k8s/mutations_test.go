package k8s_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The invariants are only worth having if they catch a broken manifest:
// break one thing at a time in a copy of each rendered overlay and check
// that check reports it.
func TestCheckCatchesBrokenManifests(t *testing.T) {
	t.Parallel()
	examples, err := loadExampleSecrets(devDir)
	if err != nil {
		t.Fatal(err)
	}
	bins := binaries(t)
	rendered := map[string]*manifests{devDir: renderT(t, devDir), prodDir: renderT(t, prodDir)}
	for dir, m := range rendered {
		if errs := check(m, bins, examples); len(errs) > 0 {
			t.Fatalf("%s does not pass before any mutation: %v", dir, errs)
		}
	}

	tests := []struct {
		name    string
		devOnly bool // it changes something only the dev overlay renders
		mutate  func(m *manifests)
		want    string // a substring of the error that must be reported
	}{
		// Probes.
		{
			name:   "readiness probe on the wrong port",
			mutate: func(m *manifests) { ctr(m, "catalogsvc").ReadinessProbe.GRPC.Port = 8083 },
			want:   "catalogsvc: readinessProbe: gRPC port 8083",
		},
		{
			name:   "readiness probe on the admin port",
			mutate: func(m *manifests) { ctr(m, "authsvc").ReadinessProbe.GRPC.Port = 9081 },
			want:   "authsvc: readinessProbe: gRPC port 9081",
		},
		{
			name: "readiness probe names a service the binary does not serve",
			mutate: func(m *manifests) {
				*ctr(m, "authsvc").ReadinessProbe.GRPC.Service = "tokencart.catalog.v1.CatalogService"
			},
			want: `authsvc: readinessProbe: gRPC health service "tokencart.catalog.v1.CatalogService" is not served`,
		},
		{
			name:   "readiness probe service name misspelt",
			mutate: func(m *manifests) { *ctr(m, "catalogsvc").ReadinessProbe.GRPC.Service = "tokencart.catalog.v1.Catalog" },
			want:   "is not served by catalogsvc",
		},
		{
			name: "liveness probe through gRPC health, which follows the database",
			mutate: func(m *manifests) {
				ctr(m, "catalogsvc").LivenessProbe.ProbeHandler = corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 8082}}
			},
			want: "catalogsvc: livenessProbe: want httpGet /healthz",
		},
		{
			name:   "liveness probe on /readyz",
			mutate: func(m *manifests) { ctr(m, "authsvc").LivenessProbe.HTTPGet.Path = "/readyz" },
			want:   `authsvc: livenessProbe: path "/readyz"`,
		},
		{
			name:   "startup probe on the gRPC port",
			mutate: func(m *manifests) { ctr(m, "catalogsvc").StartupProbe.HTTPGet.Port = intstr.FromString("grpc") },
			want:   "catalogsvc: startupProbe: port 8082",
		},
		{
			name:   "liveness probe on a port name that does not exist",
			mutate: func(m *manifests) { ctr(m, "authsvc").LivenessProbe.HTTPGet.Port = intstr.FromString("admin") },
			want:   `authsvc: livenessProbe: port "admin" is not a container port`,
		},
		{
			name: "TLS on the gRPC port with a gRPC readiness probe",
			mutate: func(m *manifests) {
				addEnv(m, "catalogsvc", corev1.EnvVar{Name: "CATALOGSVC_TLS_CERT", Value: "/etc/tls/tls.crt"})
				addEnv(m, "catalogsvc", corev1.EnvVar{Name: "CATALOGSVC_TLS_KEY", Value: "/etc/tls/tls.key"})
			},
			want: "catalogsvc: readinessProbe: the gRPC port serves TLS",
		},
		{
			name:   "readiness probe removed",
			mutate: func(m *manifests) { ctr(m, "authsvc").ReadinessProbe = nil },
			want:   "authsvc: readinessProbe: want a native gRPC health probe",
		},
		// Ports.
		{
			name:   "container gRPC port renumbered",
			mutate: func(m *manifests) { port(m, "catalogsvc", "grpc").ContainerPort = 8083 },
			want:   `catalogsvc: ports: container port "grpc" is 8083, but the binary listens on 8082`,
		},
		{
			name:   "metrics port renamed",
			mutate: func(m *manifests) { port(m, "authsvc", "metrics").Name = "admin" },
			want:   `authsvc: ports: no container port named "metrics"`,
		},
		{
			name:   "listen address changed without the container port",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "CATALOGSVC_GRPC_ADDR", ":9000") },
			want:   `container port "grpc" is 8082, but the binary listens on 9000`,
		},
		// Environment.
		{
			name:   "env var misspelt",
			mutate: func(m *manifests) { renameEnv(m, "catalogsvc", "CATALOGSVC_AUTH_ADDR", "CATALOGSVC_AUTH_ADDRESS") },
			want:   "catalogsvc: env: CATALOGSVC_AUTH_ADDRESS is not a configuration variable",
		},
		{
			name:   "env var with the other service's prefix",
			mutate: func(m *manifests) { renameEnv(m, "authsvc", "AUTHSVC_LOG_FORMAT", "CATALOGSVC_LOG_FORMAT") },
			want:   "authsvc: env: CATALOGSVC_LOG_FORMAT is not a configuration variable",
		},
		{
			name:   "required env var removed",
			mutate: func(m *manifests) { removeEnv(m, "authsvc", "AUTHSVC_KEY_ENCRYPTION_KEY") },
			want:   "authsvc: env: required AUTHSVC_KEY_ENCRYPTION_KEY (--key-encryption-key) is not set",
		},
		{
			name:   "auth address removed",
			mutate: func(m *manifests) { removeEnv(m, "catalogsvc", "CATALOGSVC_AUTH_ADDR") },
			want:   "catalogsvc: env: required CATALOGSVC_AUTH_ADDR",
		},
		{
			name:   "duration without a unit",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "CATALOGSVC_DRAIN_DELAY", "5") },
			want:   `catalogsvc: env: CATALOGSVC_DRAIN_DELAY="5" is invalid for --drain-delay`,
		},
		{
			name:   "env var set twice",
			mutate: func(m *manifests) { addEnv(m, "authsvc", corev1.EnvVar{Name: "AUTHSVC_LOG_LEVEL", Value: "debug"}) },
			want:   "authsvc: env: AUTHSVC_LOG_LEVEL is set twice",
		},
		{
			name:    "DSN of a per-pod SQLite file",
			devOnly: true,
			mutate:  func(m *manifests) { secret(m, "catalogsvc-secrets").Data["dsn"] = []byte("/tmp/catalog.db") },
			want:    "catalogsvc: env: the DSN is not a postgres:// URL",
		},
		{
			name:   "issuer differs between the services",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "CATALOGSVC_ISSUER", "https://auth.example.com") },
			want:   `agreement: authsvc mints tokens with --issuer "http://authsvc.tokencart.svc.cluster.local:8080" but catalogsvc accepts only "https://auth.example.com"`,
		},
		{
			name: "issuer names no Service",
			mutate: func(m *manifests) {
				setEnv(m, "authsvc", "AUTHSVC_ISSUER", "http://auth.example.com:8080")
				setEnv(m, "catalogsvc", "CATALOGSVC_ISSUER", "http://auth.example.com:8080")
			},
			want: `agreement: authsvc --issuer "http://auth.example.com:8080" does not name the authsvc Service`,
		},
		{
			name: "issuer on the gRPC port",
			mutate: func(m *manifests) {
				setEnv(m, "authsvc", "AUTHSVC_ISSUER", "http://authsvc.tokencart.svc:8081")
				setEnv(m, "catalogsvc", "CATALOGSVC_ISSUER", "http://authsvc.tokencart.svc:8081")
			},
			want: `port "8081" is not the authsvc Service's public port`,
		},
		{
			name:   "http issuer without --issuer-allow-http",
			mutate: func(m *manifests) { setEnv(m, "authsvc", "AUTHSVC_ISSUER_ALLOW_HTTP", "false") },
			want:   "--issuer-allow-http",
		},
		{
			name:   "public port not exposed by the Service",
			mutate: func(m *manifests) { svc := m.service("authsvc"); svc.Spec.Ports = svc.Spec.Ports[:1] },
			want:   "authsvc: Service authsvc: no port named public",
		},
		{
			name:   "public listener moved, container port not",
			mutate: func(m *manifests) { setEnv(m, "authsvc", "AUTHSVC_PUBLIC_ADDR", ":8443") },
			want:   `authsvc: ports: container port "public" is 8080`,
		},
		{
			name: "JWKS consumers cut off",
			mutate: func(m *manifests) {
				np := m.netpol("authsvc-ingress")
				np.Spec.Ingress = slices.Delete(np.Spec.Ingress, 1, 2)
			},
			want: "network: istiod -> authsvc port public",
		},
		{
			name: "catalogsvc refreshes the key set slower than keys are published",
			mutate: func(m *manifests) {
				addEnv(m, "catalogsvc", corev1.EnvVar{Name: "CATALOGSVC_KEYSET_REFRESH", Value: "30m"})
			},
			want: "agreement: catalogsvc --keyset-refresh 30m0s",
		},
		{
			name: "revocation heartbeat slower than the staleness bound",
			mutate: func(m *manifests) {
				addEnv(m, "authsvc", corev1.EnvVar{Name: "AUTHSVC_REVOCATION_HEARTBEAT", Value: "30s"})
			},
			want: "agreement: authsvc --revocation-heartbeat 30s must be below catalogsvc --revocation-staleness 15s",
		},
		{
			name:   "catalogsvc dials authsvc on the admin port",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "CATALOGSVC_AUTH_ADDR", "authsvc:9081") },
			want:   `agreement: catalogsvc --auth-addr "authsvc:9081": port 9081 is not the authsvc Service's grpc port`,
		},
		{
			name:   "catalogsvc dials authsvc on loopback (the binary's default)",
			mutate: func(m *manifests) { removeEnv(m, "catalogsvc", "CATALOGSVC_AUTH_ADDR") },
			want:   `agreement: catalogsvc --auth-addr "127.0.0.1:8081" does not name the authsvc Service`,
		},
		{
			name: "request-mode carts without a valid key",
			mutate: func(m *manifests) {
				setEnv(m, "catalogsvc", "CATALOGSVC_CART_MODE", "request")
				removeEnv(m, "catalogsvc", "CATALOGSVC_CART_KEY")
			},
			want: "catalogsvc: env: required CATALOGSVC_CART_KEY (--cart-key) is not set",
		},
		{
			name:   "unknown cart mode",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "CATALOGSVC_CART_MODE", "cookie") },
			want:   "catalogsvc: env: the binary would refuse this configuration",
		},
		// Go runtime: a GOMEMLIMIT or GOGC that overrides the binaries'
		// own (80% of the memory limit, 400) must be sane.
		{
			name:   "GOMEMLIMIT above the memory limit",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "GOMEMLIMIT", "300MiB") },
			want:   "catalogsvc: env: GOMEMLIMIT=300MiB is 117.2% of the container's memory limit 256Mi, want 50% to 90%",
		},
		{
			name:   "GOMEMLIMIT equal to the memory limit",
			mutate: func(m *manifests) { setEnv(m, "authsvc", "GOMEMLIMIT", "256MiB") },
			want:   "authsvc: env: GOMEMLIMIT=256MiB is 100.0% of the container's memory limit 256Mi",
		},
		{
			name:   "GOMEMLIMIT far below the memory limit",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "GOMEMLIMIT", "64MiB") },
			want:   "catalogsvc: env: GOMEMLIMIT=64MiB is 25.0% of the container's memory limit 256Mi",
		},
		{
			name:   "GOMEMLIMIT in Kubernetes' quantity syntax",
			mutate: func(m *manifests) { setEnv(m, "authsvc", "GOMEMLIMIT", "200Mi") },
			want:   `authsvc: env: GOMEMLIMIT="200Mi" is not a Go byte count`,
		},
		{
			name:   "GOMEMLIMIT with a decimal unit",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "GOMEMLIMIT", "200MB") },
			want:   `catalogsvc: env: GOMEMLIMIT="200MB" is not a Go byte count`,
		},
		{
			name:   "GOMEMLIMIT not a number",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "GOMEMLIMIT", "0.8GiB") },
			want:   `catalogsvc: env: GOMEMLIMIT="0.8GiB" is not a Go byte count`,
		},
		{
			name:   "GOMEMLIMIT off",
			mutate: func(m *manifests) { setEnv(m, "authsvc", "GOMEMLIMIT", "off") },
			want:   `authsvc: env: GOMEMLIMIT="off" sets no limit`,
		},
		{
			name: "GOMEMLIMIT from the downward API (the whole limit)",
			mutate: func(m *manifests) {
				addEnv(m, "catalogsvc", corev1.EnvVar{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{
					ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"},
				}})
			},
			want: "catalogsvc: env: GOMEMLIMIT must be a literal value",
		},
		{
			name: "memory limit lowered under a GOMEMLIMIT override",
			mutate: func(m *manifests) {
				setEnv(m, "catalogsvc", "GOMEMLIMIT", "200MiB")
				setMemoryLimit(m, "catalogsvc", "128Mi")
			},
			want: "catalogsvc: env: GOMEMLIMIT=200MiB is 156.2% of the container's memory limit 128Mi",
		},
		{
			name: "memory limit raised above a GOMEMLIMIT override",
			mutate: func(m *manifests) {
				setEnv(m, "authsvc", "GOMEMLIMIT", "200MiB")
				setMemoryLimit(m, "authsvc", "512Mi")
			},
			want: "authsvc: env: GOMEMLIMIT=200MiB is 39.1% of the container's memory limit 512Mi",
		},
		{
			name: "memory limit raised slightly past a GOMEMLIMIT override's range",
			mutate: func(m *manifests) {
				setEnv(m, "catalogsvc", "GOMEMLIMIT", "200MiB")
				setMemoryLimit(m, "catalogsvc", "210Mi")
			},
			want: "catalogsvc: env: GOMEMLIMIT=200MiB is 95.2% of the container's memory limit 210Mi",
		},
		{
			name:   "memory limit removed (the binaries derive GOMEMLIMIT from it)",
			mutate: func(m *manifests) { delete(ctr(m, "authsvc").Resources.Limits, corev1.ResourceMemory) },
			want:   "container authsvc: resources: want cpu and memory requests and a memory limit",
		},
		{
			name: "memory limit removed under a GOMEMLIMIT override",
			mutate: func(m *manifests) {
				setEnv(m, "authsvc", "GOMEMLIMIT", "200MiB")
				delete(ctr(m, "authsvc").Resources.Limits, corev1.ResourceMemory)
			},
			want: "authsvc: env: GOMEMLIMIT=200MiB, but the container has no memory limit",
		},
		{
			name:   "GOGC off",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "GOGC", "off") },
			want:   "catalogsvc: env: GOGC=off turns the proportional collector off",
		},
		{
			name:   "GOGC negative (also off)",
			mutate: func(m *manifests) { setEnv(m, "authsvc", "GOGC", "-1") },
			want:   "authsvc: env: GOGC=-1 turns the proportional collector off",
		},
		{
			name:   "GOGC not an integer",
			mutate: func(m *manifests) { setEnv(m, "authsvc", "GOGC", "abc") },
			want:   `authsvc: env: GOGC="abc" is not an integer: the Go runtime would silently use 100`,
		},
		{
			name:   "GOGC below the default",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "GOGC", "50") },
			want:   "catalogsvc: env: GOGC=50 is outside 100 to 1000",
		},
		{
			name:   "GOGC far above the measured 400",
			mutate: func(m *manifests) { setEnv(m, "authsvc", "GOGC", "5000") },
			want:   "authsvc: env: GOGC=5000 is outside 100 to 1000",
		},
		{
			name:   "GOGC misspelt",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "GO_GC", "400") },
			want:   "catalogsvc: env: GO_GC is not a configuration variable",
		},
		// Secrets.
		{
			name:   "secret key misspelt",
			mutate: func(m *manifests) { envVar(m, "authsvc", "AUTHSVC_DSN").ValueFrom.SecretKeyRef.Key = "dns" },
			want:   `env AUTHSVC_DSN reads key "dns" of Secret`,
		},
		{
			name: "secret name misspelt",
			mutate: func(m *manifests) {
				envVar(m, "catalogsvc", "CATALOGSVC_DSN").ValueFrom.SecretKeyRef.Name = "catalog-secrets"
			},
			want: `env CATALOGSVC_DSN reads key "dsn" of Secret catalog-secrets`,
		},
		// Termination.
		{
			name: "grace period shorter than the drain",
			mutate: func(m *manifests) {
				deploy(m, "catalogsvc").Spec.Template.Spec.TerminationGracePeriodSeconds = ptr[int64](20)
			},
			want: "catalogsvc: terminationGracePeriodSeconds 20s must exceed",
		},
		{
			name:   "grace period left at the default",
			mutate: func(m *manifests) { deploy(m, "authsvc").Spec.Template.Spec.TerminationGracePeriodSeconds = nil },
			want:   "authsvc: terminationGracePeriodSeconds 30s must exceed",
		},
		{
			name:   "shutdown timeout raised past the grace period",
			mutate: func(m *manifests) { setEnv(m, "catalogsvc", "CATALOGSVC_SHUTDOWN_TIMEOUT", "60s") },
			want:   "catalogsvc: terminationGracePeriodSeconds 45s must exceed",
		},
		{
			name:   "preStop removed",
			mutate: func(m *manifests) { ctr(m, "authsvc").Lifecycle = nil },
			want:   "authsvc: preStop: missing",
		},
		{
			name: "preStop through a shell the image does not have",
			mutate: func(m *manifests) {
				ctr(m, "catalogsvc").Lifecycle.PreStop = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "sleep 5"}}}
			},
			want: "catalogsvc: preStop: want the native sleep action",
		},
		// Selectors and scaling.
		{
			name: "Deployment selector does not match its pods",
			mutate: func(m *manifests) {
				deploy(m, "catalogsvc").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "catalog"
			},
			want: "catalogsvc: selector app.kubernetes.io/name=catalog does not match",
		},
		{
			name: "pod labels changed under the Services",
			mutate: func(m *manifests) {
				d := deploy(m, "catalogsvc")
				d.Spec.Template.Labels["app.kubernetes.io/name"] = "catalog"
				d.Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "catalog"
			},
			want: "Service catalogsvc-headless: selector app.kubernetes.io/name=catalogsvc selects no pods",
		},
		{
			name:   "Service selector misspelt",
			mutate: func(m *manifests) { m.service("authsvc").Spec.Selector["app.kubernetes.io/name"] = "auth" },
			want:   "authsvc: Service authsvc: selector app.kubernetes.io/name=auth does not select its pods",
		},
		{
			name:   "headless Service given a cluster IP",
			mutate: func(m *manifests) { m.service("catalogsvc-headless").Spec.ClusterIP = "" },
			want:   "catalogsvc: Service catalogsvc-headless: clusterIP \"\", headless must be true",
		},
		{
			name:   "Service targets the admin port",
			mutate: func(m *manifests) { m.service("catalogsvc").Spec.Ports[0].TargetPort = intstr.FromString("metrics") },
			want:   "catalogsvc: Service catalogsvc: targets port 9082",
		},
		{
			name:   "Service targets a port name the pods lack",
			mutate: func(m *manifests) { m.service("authsvc").Spec.Ports[0].TargetPort = intstr.FromString("rpc") },
			want:   `Service authsvc: target port "rpc" is not a port of Deployment authsvc`,
		},
		{
			name: "PDB selector misspelt",
			mutate: func(m *manifests) {
				pdb(m, "catalogsvc").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "catalog"
			},
			want: "PodDisruptionBudget catalogsvc: selector selects no pods",
		},
		{
			name:   "PDB allows two pods down",
			mutate: func(m *manifests) { pdb(m, "authsvc").Spec.MaxUnavailable = ptr(intstr.FromInt32(2)) },
			want:   "authsvc: PodDisruptionBudget authsvc: want maxUnavailable 1",
		},
		{
			name: "two PDBs cover the same pods",
			mutate: func(m *manifests) {
				p := pdb(m, "authsvc").DeepCopy()
				p.Name = "authsvc-extra"
				m.pdbs = append(m.pdbs, *p)
			},
			want: "authsvc: PodDisruptionBudgets selecting its pods: [authsvc authsvc-extra], want exactly one",
		},
		{
			name:   "HPA targets a Deployment that does not exist",
			mutate: func(m *manifests) { m.hpas[0].Spec.ScaleTargetRef.Name = "catalog" },
			want:   "HorizontalPodAutoscaler catalogsvc: scaleTargetRef apps/v1 Deployment/catalog is not a Deployment here",
		},
		{
			name:   "HPA minimum below 3",
			mutate: func(m *manifests) { m.hpas[0].Spec.MinReplicas = ptr[int32](2) },
			want:   "catalogsvc: HPA catalogsvc: replicas 2 to 20, want 3 to 20",
		},
		{
			name:   "HPA without a CPU target",
			mutate: func(m *manifests) { m.hpas[0].Spec.Metrics = nil },
			want:   "catalogsvc: HPA catalogsvc: want a CPU utilisation target",
		},
		{
			name:   "authsvc down to one replica",
			mutate: func(m *manifests) { deploy(m, "authsvc").Spec.Replicas = ptr[int32](1) },
			want:   "authsvc: runs as few as 1 replicas, want at least 2",
		},
		{
			name: "rolling update may take a pod down first",
			mutate: func(m *manifests) {
				deploy(m, "catalogsvc").Spec.Strategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromInt32(1))
			},
			want: "catalogsvc: strategy: want RollingUpdate with maxSurge 1 and maxUnavailable 0",
		},
		{
			name: "Recreate strategy",
			mutate: func(m *manifests) {
				deploy(m, "authsvc").Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
			},
			want: "authsvc: strategy",
		},
		{
			name:   "no topology spread",
			mutate: func(m *manifests) { deploy(m, "catalogsvc").Spec.Template.Spec.TopologySpreadConstraints = nil },
			want:   "catalogsvc: topologySpreadConstraints: none spreads its pods across kubernetes.io/hostname",
		},
		// Security and resources.
		{
			name:   "may run as root",
			mutate: func(m *manifests) { deploy(m, "authsvc").Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil },
			want:   "Deployment authsvc: securityContext: pod must set runAsNonRoot: true",
		},
		{
			name:   "writable root filesystem",
			mutate: func(m *manifests) { ctr(m, "catalogsvc").SecurityContext.ReadOnlyRootFilesystem = ptr(false) },
			want:   "Deployment catalogsvc container catalogsvc: securityContext: want readOnlyRootFilesystem: true",
		},
		{
			name:   "privilege escalation allowed",
			mutate: func(m *manifests) { ctr(m, "authsvc").SecurityContext.AllowPrivilegeEscalation = ptr(true) },
			want:   "want allowPrivilegeEscalation: false",
		},
		{
			name:   "capabilities kept",
			mutate: func(m *manifests) { ctr(m, "catalogsvc").SecurityContext.Capabilities = nil },
			want:   "want capabilities drop [ALL]",
		},
		{
			name: "no seccomp profile",
			mutate: func(m *manifests) {
				deploy(m, "catalogsvc").Spec.Template.Spec.SecurityContext.SeccompProfile = nil
			},
			want: "Deployment catalogsvc: securityContext: pod must use seccompProfile RuntimeDefault",
		},
		{
			name:   "no CPU request (the HPA's target is a share of it)",
			mutate: func(m *manifests) { delete(ctr(m, "catalogsvc").Resources.Requests, corev1.ResourceCPU) },
			want:   "Deployment catalogsvc container catalogsvc: resources",
		},
		{
			name:    "dev PostgreSQL with a writable root filesystem",
			devOnly: true,
			mutate: func(m *manifests) {
				m.statefulSets[0].Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil
			},
			want: "StatefulSet postgres container postgres: securityContext: want readOnlyRootFilesystem: true",
		},
		// Monitoring.
		{
			name:   "scrape annotation names the gRPC port",
			mutate: func(m *manifests) { deploy(m, "catalogsvc").Spec.Template.Annotations["prometheus.io/port"] = "8082" },
			want:   `catalogsvc: pod annotation prometheus.io/port = "8082", want "9082"`,
		},
		{
			name:   "scraping switched off",
			mutate: func(m *manifests) { delete(deploy(m, "authsvc").Spec.Template.Annotations, "prometheus.io/scrape") },
			want:   `authsvc: pod annotation prometheus.io/scrape = "", want "true"`,
		},
		// Network.
		{
			name: "catalogsvc may no longer reach authsvc",
			mutate: func(m *manifests) {
				r := &m.netpol("authsvc-ingress").Spec.Ingress[0]
				r.From = slices.DeleteFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool { return p.NamespaceSelector == nil })
			},
			want: "network: catalogsvc -> authsvc port grpc (8081/TCP) is blocked",
		},
		{
			name: "catalogsvc open to every pod",
			mutate: func(m *manifests) {
				m.netpol("catalogsvc-ingress").Spec.Ingress[0].From = nil
			},
			want: "network: an unlabelled pod in another namespace -> catalogsvc port grpc (8082/TCP) is allowed",
		},
		{
			name: "metrics open to clients",
			mutate: func(m *manifests) {
				m.netpol("authsvc-ingress").Spec.Ingress[2].From = nil
			},
			want: "network: a client pod (tokencart.io/client=true) in another namespace -> authsvc port metrics (9081/TCP) is allowed",
		},
		{
			name: "Prometheus shut out",
			mutate: func(m *manifests) {
				np := m.netpol("catalogsvc-ingress")
				np.Spec.Ingress = np.Spec.Ingress[:1]
			},
			want: "network: Prometheus -> catalogsvc port metrics (9082/TCP) is blocked",
		},
		{
			name: "catalogsvc egress to PostgreSQL removed",
			mutate: func(m *manifests) {
				np := m.netpol("catalogsvc-egress")
				np.Spec.Egress = np.Spec.Egress[:2]
			},
			want: "PostgreSQL port postgres (5432/TCP) is blocked",
		},
		{
			name: "authsvc egress without DNS",
			mutate: func(m *manifests) {
				np := m.netpol("authsvc-egress")
				np.Spec.Egress = np.Spec.Egress[1:]
			},
			want: "network: authsvc -> cluster DNS port dns (53/UDP) is blocked",
		},
		{
			name: "no default deny",
			mutate: func(m *manifests) {
				m.netpols = slices.DeleteFunc(m.netpols, func(p networkingv1.NetworkPolicy) bool { return p.Name == "default-deny-ingress" })
			},
			want: "network: no default-deny ingress NetworkPolicy",
		},
		{
			name:   "object outside the namespace",
			mutate: func(m *manifests) { m.services[0].Namespace = "default" },
			want:   `is in namespace "default"`,
		},
		{
			name:   "image of the other service",
			mutate: func(m *manifests) { ctr(m, "authsvc").Image = "tokencart/catalogsvc:dev" },
			want:   `authsvc: image "tokencart/catalogsvc:dev", want tokencart/authsvc`,
		},
	}
	for _, tt := range tests {
		for _, dir := range []string{devDir, prodDir} {
			if tt.devOnly && dir != devDir {
				continue
			}
			t.Run(dir+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				m := rendered[dir].clone()
				tt.mutate(m)
				errs := check(m, bins, examples)
				for _, err := range errs {
					if strings.Contains(err.Error(), tt.want) {
						return
					}
				}
				t.Errorf("check reported %d errors, none containing %q:", len(errs), tt.want)
				for _, err := range errs {
					t.Log(err)
				}
			})
		}
	}
}

// The GC checks must not refuse consistent changes: a memory limit moved
// alone (the binaries follow it) or together with a GOMEMLIMIT override,
// other valid values.
func TestCheckAcceptsConsistentGoRuntimeChanges(t *testing.T) {
	t.Parallel()
	examples, err := loadExampleSecrets(devDir)
	if err != nil {
		t.Fatal(err)
	}
	bins := binaries(t)
	rendered := map[string]*manifests{devDir: renderT(t, devDir), prodDir: renderT(t, prodDir)}
	tests := []struct {
		name   string
		mutate func(m *manifests)
	}{
		{"memory limit and GOMEMLIMIT raised together", func(m *manifests) {
			setMemoryLimit(m, "catalogsvc", "512Mi")
			setEnv(m, "catalogsvc", "GOMEMLIMIT", "400MiB")
		}},
		{"memory limit and GOMEMLIMIT lowered together", func(m *manifests) {
			setMemoryLimit(m, "authsvc", "128Mi")
			setEnv(m, "authsvc", "GOMEMLIMIT", "100MiB")
		}},
		{"memory limit in GiB, GOMEMLIMIT in MiB", func(m *manifests) {
			setMemoryLimit(m, "catalogsvc", "1Gi")
			setEnv(m, "catalogsvc", "GOMEMLIMIT", "800MiB")
		}},
		{"GOMEMLIMIT in plain bytes", func(m *manifests) { setEnv(m, "authsvc", "GOMEMLIMIT", "214748364") }},
		{"GOMEMLIMIT at the 90% bound", func(m *manifests) { setEnv(m, "authsvc", "GOMEMLIMIT", "241591910") }},
		{"GOMEMLIMIT at the 50% bound", func(m *manifests) { setEnv(m, "catalogsvc", "GOMEMLIMIT", "128MiB") }},
		{"memory limit raised alone", func(m *manifests) { setMemoryLimit(m, "catalogsvc", "1Gi") }},
		{"memory limit lowered alone", func(m *manifests) { setMemoryLimit(m, "authsvc", "128Mi") }},
		{"GOGC 100", func(m *manifests) { setEnv(m, "authsvc", "GOGC", "100") }},
		{"GOGC 1000", func(m *manifests) { setEnv(m, "catalogsvc", "GOGC", "1000") }},
	}
	for _, tt := range tests {
		for _, dir := range []string{devDir, prodDir} {
			t.Run(dir+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				m := rendered[dir].clone()
				tt.mutate(m)
				for _, err := range check(m, bins, examples) {
					t.Error(err)
				}
			})
		}
	}
}

// The clone the mutations change must not share memory with the original.
func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	m := renderT(t, devDir)
	c := m.clone()
	ctr(c, "catalogsvc").ReadinessProbe.GRPC.Port = 1
	deploy(c, "catalogsvc").Spec.Template.Labels["x"] = "y"
	if ctr(m, "catalogsvc").ReadinessProbe.GRPC.Port == 1 || deploy(m, "catalogsvc").Spec.Template.Labels["x"] == "y" {
		t.Fatal("changing the clone changed the original")
	}
}

func ptr[T any](v T) *T { return &v }

func deploy(m *manifests, name string) *appsv1.Deployment {
	d := m.deployment(name)
	if d == nil {
		panic("no Deployment " + name)
	}
	return d
}

func ctr(m *manifests, name string) *corev1.Container {
	c := container(&deploy(m, name).Spec.Template.Spec, name)
	if c == nil {
		panic("no container " + name)
	}
	return c
}

func port(m *manifests, name, portName string) *corev1.ContainerPort {
	c := ctr(m, name)
	for i := range c.Ports {
		if c.Ports[i].Name == portName {
			return &c.Ports[i]
		}
	}
	panic("no port " + portName)
}

func envVar(m *manifests, name, env string) *corev1.EnvVar {
	c := ctr(m, name)
	for i := range c.Env {
		if c.Env[i].Name == env {
			return &c.Env[i]
		}
	}
	panic("no env " + env)
}

// setEnv sets env in container name, adding it if it is not there.
func setEnv(m *manifests, name, env, value string) {
	c := ctr(m, name)
	for i := range c.Env {
		if c.Env[i].Name == env {
			c.Env[i].Value = value
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: env, Value: value})
}

func renameEnv(m *manifests, name, env, to string) { envVar(m, name, env).Name = to }

func addEnv(m *manifests, name string, e corev1.EnvVar) {
	c := ctr(m, name)
	c.Env = append(c.Env, e)
}

func removeEnv(m *manifests, name, env string) {
	c := ctr(m, name)
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == env })
}

func setMemoryLimit(m *manifests, name, limit string) {
	ctr(m, name).Resources.Limits[corev1.ResourceMemory] = resource.MustParse(limit)
}

func secret(m *manifests, prefix string) *corev1.Secret {
	for i := range m.secrets {
		if strings.HasPrefix(m.secrets[i].Name, prefix+"-") {
			return &m.secrets[i]
		}
	}
	panic("no Secret " + prefix)
}

func pdb(m *manifests, name string) *policyv1.PodDisruptionBudget {
	for i := range m.pdbs {
		if m.pdbs[i].Name == name {
			return &m.pdbs[i]
		}
	}
	panic("no PodDisruptionBudget " + name)
}
