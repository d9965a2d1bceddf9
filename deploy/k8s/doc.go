// Package k8s holds tokencart's Kubernetes manifests (a kustomize base and
// the dev and prod overlays) and the tests that render them and check the
// invariants that make scaling the services safe. It has no Go API, and is a
// module of its own so that k8s.io and kustomize stay out of the services' go.mod.
package k8s
