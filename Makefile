# tokencart build, test and run targets. `make help` lists them.
#
# Every Go command runs on the toolchain named in go.mod; these machines
# default to GOTOOLCHAIN=local, so it is exported here.
export GOTOOLCHAIN := go1.27.3
export GOFLAGS := -buildvcs=false

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

TOOLS_DIR := $(CURDIR)/.tools
BIN_DIR := $(CURDIR)/bin

# Pinned tool versions; `make tools` installs them into .tools/.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GOLANGCI_LINT_VERSION := v2.15.0
GRPCURL_VERSION := v1.9.3
# promtool checks and unit-tests the alert rules of deploy/k8s/components/monitoring.
PROMTOOL_VERSION := v0.316.0

BUF := $(TOOLS_DIR)/buf
GOLANGCI_LINT := $(TOOLS_DIR)/golangci-lint
GRPCURL := $(TOOLS_DIR)/grpcurl

TEST_TIMEOUT ?= 9m

# The repository's other Go modules, each with a go.mod of its own so that
# what only it needs stays out of the services' go.mod: gen (the API module:
# the generated stubs, for clients to import without the services'
# dependencies; the root requires it through a replace), deploy/k8s (the
# manifest tests: k8s.io, kustomize; it reaches the services through a
# replace), deploy/k8s/components/monitoring (the alert rule and dashboard
# checks: Prometheus' PromQL parser) and bench/jwtbench (the JWT library
# benchmark: golang-jwt). The root's ./... does not enter them, so test,
# lint and CI's govulncheck run in each from its own directory. Found, not
# listed, so none is missed.
NESTED_MODULES := $(sort $(patsubst ./%/go.mod,%,$(shell find . -mindepth 2 -name go.mod \
	-not -path './.*' -not -path './bin/*' -not -path './var/*' -not -path '*/testdata/*')))

# A stamp file per tool and version: changing a version reinstalls that tool.
define install_tool
$(TOOLS_DIR)/.$(1)-$(2):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) go install $(3)@$(2)
	@touch $$@
endef
$(eval $(call install_tool,buf,$(BUF_VERSION),github.com/bufbuild/buf/cmd/buf))
$(eval $(call install_tool,protoc-gen-go,$(PROTOC_GEN_GO_VERSION),google.golang.org/protobuf/cmd/protoc-gen-go))
$(eval $(call install_tool,protoc-gen-go-grpc,$(PROTOC_GEN_GO_GRPC_VERSION),google.golang.org/grpc/cmd/protoc-gen-go-grpc))
$(eval $(call install_tool,golangci-lint,$(GOLANGCI_LINT_VERSION),github.com/golangci/golangci-lint/v2/cmd/golangci-lint))
$(eval $(call install_tool,grpcurl,$(GRPCURL_VERSION),github.com/fullstorydev/grpcurl/cmd/grpcurl))

# promtool without Prometheus' service discovery plugins (remove_all_sd),
# which checking and unit-testing rules never uses: a fraction of the build.
$(TOOLS_DIR)/.promtool-$(PROMTOOL_VERSION):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	@touch $@

GEN_TOOLS := $(TOOLS_DIR)/.buf-$(BUF_VERSION) $(TOOLS_DIR)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
	$(TOOLS_DIR)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
LINT_TOOLS := $(TOOLS_DIR)/.golangci-lint-$(GOLANGCI_LINT_VERSION)
RUN_TOOLS := $(TOOLS_DIR)/.grpcurl-$(GRPCURL_VERSION)
TEST_TOOLS := $(RUN_TOOLS) $(TOOLS_DIR)/.promtool-$(PROMTOOL_VERSION)

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# The repository's npm packages (a package-lock.json each, committed):
# independent implementations the tests run against ours. `make tools`
# installs them with `npm ci`; without Node.js the tests that need them
# skip (and fail under CI=true).
NODE_PACKAGES := $(sort $(patsubst ./%/package-lock.json,%,$(shell find . -name package-lock.json \
	-not -path './.*' -not -path '*/node_modules/*' -not -path './bin/*' -not -path './var/*')))

.PHONY: tools
tools: $(GEN_TOOLS) $(LINT_TOOLS) $(TEST_TOOLS) node ## Install the pinned tools into .tools/ and the npm packages.

.PHONY: node
node: ## npm ci in every npm package of the repository (needs Node.js and npm).
	@if ! command -v npm >/dev/null; then echo "npm not found: the tests that run Node.js programs will skip"; exit 0; fi; \
	for dir in $(NODE_PACKAGES); do \
		echo "== npm ci $$dir"; \
		npm ci --prefix "$$dir" --no-audit --no-fund --loglevel=error || exit 1; \
		touch "$$dir/node_modules/.npm-ci"; \
	done

# The TypeScript client (clients/ts): buf generate runs its pinned
# protoc-gen-es from its node_modules, installed by make node or here.
TS_CLIENT := clients/ts
TS_CLIENT_STAMP := $(TS_CLIENT)/node_modules/.npm-ci

$(TS_CLIENT_STAMP): $(TS_CLIENT)/package-lock.json
	@command -v npm >/dev/null || { echo "make generate needs Node.js and npm for $(TS_CLIENT)'s protoc-gen-es" >&2; exit 1; }
	npm ci --prefix $(TS_CLIENT) --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: generate
generate: $(GEN_TOOLS) $(TS_CLIENT_STAMP) ## Regenerate the stubs in gen/ (Go) and clients/ts/gen (TypeScript) from proto/.
	$(BUF) format -w
	$(BUF) generate

.PHONY: checkgenerate
checkgenerate: generate ## Fail when regenerating changes the tree.
	@if [ -n "$$(git status --porcelain -- gen proto $(TS_CLIENT)/gen)" ]; then \
		echo "generated code is out of date; run 'make generate' and commit:"; \
		git status --porcelain -- gen proto $(TS_CLIENT)/gen; git diff --stat -- gen proto $(TS_CLIENT)/gen; exit 1; fi

# What `make breaking` compares the protos with: the main branch, or in a
# clone without a local one, the remote's.
BREAKING_AGAINST ?= .git\#ref=$(shell git rev-parse -q --verify refs/heads/main >/dev/null && echo main || echo origin/main)

.PHONY: breaking
breaking: $(GEN_TOOLS) ## buf breaking (WIRE_JSON) against BREAKING_AGAINST (default: the main branch).
	$(BUF) breaking --against '$(BREAKING_AGAINST)'

.PHONY: lint
lint: $(GEN_TOOLS) $(LINT_TOOLS) ## buf lint, buf format, go vet and golangci-lint (in every module).
	$(BUF) lint
	$(BUF) format -d --exit-code
	go vet ./...
	$(GOLANGCI_LINT) run ./...
	for dir in $(NESTED_MODULES); do \
		echo "== lint $$dir"; \
		(cd $$dir && go vet ./... && $(GOLANGCI_LINT) run ./...) || exit 1; \
	done

.PHONY: tidy
tidy: ## go mod tidy in every module; the nested ones follow a change to the root's go.mod.
	go mod tidy
	for dir in $(NESTED_MODULES); do (cd $$dir && go mod tidy) || exit 1; done

.PHONY: build
build: ## Build the binaries into bin/.
	@mkdir -p $(BIN_DIR)
	go build -o $(BIN_DIR)/ ./cmd/...

.PHONY: test
test: $(TEST_TOOLS) ## Run every test, in every module, with the race detector.
	PATH="$(TOOLS_DIR):$$PATH" go test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	for dir in $(NESTED_MODULES); do \
		PATH="$(TOOLS_DIR):$$PATH" go test -C $$dir -race -count=1 -timeout $(TEST_TIMEOUT) ./... || exit 1; \
	done

# VULNCHECK is the offline govulncheck runner beside the repository;
# .ci/run passes the one it finds. It runs from each module's directory,
# with -test in the nested modules: their code is all tests, of which
# govulncheck would otherwise see none.
VULNCHECK ?= $(abspath ../shared/tools/govulncheck-offline)

.PHONY: vulncheck
vulncheck: ## govulncheck every module, offline (CI runs it).
	@if [[ ! -x "$(VULNCHECK)" ]]; then echo "$(VULNCHECK) not found; set VULNCHECK to govulncheck-offline" >&2; exit 1; fi
	"$(VULNCHECK)" ./...
	for dir in $(NESTED_MODULES); do \
		echo "== govulncheck $$dir"; \
		(cd $$dir && "$(VULNCHECK)" -test ./...) || exit 1; \
	done

BENCH_FLAGS ?=

# The load benchmark as make bench and make bench-ab run it.
BENCH = go run ./bench/cmd/tokencart-bench -capacity-plot bench/capacity.svg

.PHONY: bench
bench: ## Load benchmarks against real processes (about 4 minutes); bench/RESULTS.md records a run.
	$(BENCH) $(BENCH_FLAGS)

# The A/B run of issue 13: the whole bench plus floor-b, getcart-b and
# getproduct-b on catalogsvc built at AB_BASE, with bench/ab/AB_BASE.patch
# applied (the service credential the current authsvc's revocation feed
# requires, and nothing else).
AB_BASE ?= b6d436e

.PHONY: bench-ab
bench-ab: ## make bench plus an A/B of catalogsvc against the build at AB_BASE (about 5 minutes).
	@set -e; tmp=$$(mktemp -d); trap 'git worktree remove --force '$$tmp'/src 2>/dev/null || true; rm -rf '$$tmp EXIT; \
	git worktree add --quiet --detach $$tmp/src $(AB_BASE); \
	git -C $$tmp/src apply $(CURDIR)/bench/ab/$(AB_BASE).patch; \
	(cd $$tmp/src && go build -o $$tmp/bin/ ./cmd/catalogsvc); \
	$(BENCH) -variant-bin $$tmp/bin -variant-env CATALOGSVC_ISSUER=http://127.0.0.1:8080 $(BENCH_FLAGS)

.PHONY: abuse
abuse: ## Abuse scenario (about 2 minutes): refresh churn, anonymous feed calls, forged tokens vs memory, store and latency goals.
	go run ./bench/cmd/tokencart-abuse $(ABUSE_FLAGS)

.PHONY: chaos
chaos: ## The long chaos run: minutes of kills, scaling, rotation and revocation, then a minute of each network fault, per cart mode.
	TOKENCART_CHAOS=long go test -count=1 -timeout 45m -run 'TestChaos|TestNetworkFaults' -v ./e2e/

FUZZTIME ?= 1m

# Launcher flags for make run, e.g. RUN_FLAGS='--log-level info'.
RUN_FLAGS ?=

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 1m); CI runs them briefly.
	@for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for target in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== fuzz $$dir $$target for $(FUZZTIME)"; \
			go test -C $$dir -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) . || exit 1; \
		done; \
	done

.PHONY: run
run: build $(RUN_TOOLS) ## Start authsvc and three catalogsvc replicas on SQLite; Ctrl-C stops them.
	$(BIN_DIR)/tokencart-run --bin $(BIN_DIR) --data ./var --grpcurl $(GRPCURL) $(RUN_FLAGS)

# IMAGE_TAG is the tag make image gives both images: dev, which the dev
# overlay (deploy/k8s/overlays/dev) runs; set it to a release for others.
IMAGE_TAG ?= dev

.PHONY: image
image: ## Build the container images tokencart/authsvc and tokencart/catalogsvc, tagged IMAGE_TAG (dev; needs a Docker engine).
	docker build --build-arg SERVICE=authsvc -t tokencart/authsvc:$(IMAGE_TAG) .
	docker build --build-arg SERVICE=catalogsvc -t tokencart/catalogsvc:$(IMAGE_TAG) .

.PHONY: clean
clean: ## Remove build output and installed tools.
	rm -rf $(BIN_DIR) $(TOOLS_DIR)
