# syntax=docker/dockerfile:1
#
# One image per tokencart service, from one Dockerfile:
#
#   docker build --build-arg SERVICE=authsvc    -t tokencart/authsvc .
#   docker build --build-arg SERVICE=catalogsvc -t tokencart/catalogsvc .
#
# (`--target authsvc` / `--target catalogsvc` do the same.) Each image holds
# one static binary (CGO_ENABLED=0: the SQLite driver is pure Go) on
# distroless/static: no shell, no package manager, CA certificates and
# tzdata only, running as the non-root user 65532. The manifest tests in
# deploy/k8s check the stages, ports and user against the binaries and the
# Kubernetes manifests.

# Go version of the builder; the project's toolchain is go1.27.3 (go.mod).
ARG GO_VERSION=1.27.3
# Which service's image to build: authsvc or catalogsvc. Required; the
# default names a stage that fails with a message saying so.
ARG SERVICE=unset

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Build with exactly the toolchain go.mod names; no VCS stamping (the build
# context has no .git).
ENV GOTOOLCHAIN=go1.27.3 \
    GOFLAGS=-buildvcs=false \
    CGO_ENABLED=0
COPY go.mod go.sum ./
# The API module, which go.mod replaces with this directory.
COPY gen/go.mod gen/go.sum ./gen/
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .

FROM build AS build-authsvc
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/authsvc ./cmd/authsvc

FROM build AS build-catalogsvc
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/catalogsvc ./cmd/catalogsvc

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
USER 65532:65532

# authsvc: gRPC on 8081; admin HTTP (/metrics, /healthz, /readyz,
# /.well-known/jwks.json) on 9081.
FROM runtime AS authsvc
COPY --from=build-authsvc /out/authsvc /usr/local/bin/authsvc
EXPOSE 8081 9081
ENTRYPOINT ["/usr/local/bin/authsvc"]

# catalogsvc: gRPC on 8082; admin HTTP (/metrics, /healthz, /readyz) on 9082.
FROM runtime AS catalogsvc
COPY --from=build-catalogsvc /out/catalogsvc /usr/local/bin/catalogsvc
EXPOSE 8082 9082
ENTRYPOINT ["/usr/local/bin/catalogsvc"]

FROM build AS unset
RUN echo "choose the image: docker build --build-arg SERVICE=authsvc (or catalogsvc) ..." >&2 && exit 1

# The image selected by --build-arg SERVICE (the last stage is the default
# target).
FROM ${SERVICE}
