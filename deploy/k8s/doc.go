// Package k8s holds tokencart's Kubernetes manifests (a kustomize base and
// the dev and prod overlays) and the tests that render them and check the
// invariants that make scaling the services safe. It has no Go API.
package k8s
