# nodescale: every entry point. `make help` lists them.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# The app and its tests run on Node 24 LTS, like the image. Where the machine's Node is older,
# the pinned `node` package from the root package.json supplies it (node_modules/.bin/node),
# and it comes first on PATH for every recipe and everything they start.
SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell test "$(SYSTEM_NODE_MAJOR)" -ge 24 2>/dev/null && echo yes),)
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
endif
export PATH := $(CURDIR)/tools/bin:$(PATH)
NODE := node
NODE_TEST := $(NODE) --test --test-reporter=spec

# Local topology settings (see local/README.md); the Makefile only passes them through.
INSTANCES ?= 2
LB_PORT ?= 8080
export INSTANCES LB_PORT STACK_NAME LB_ALGORITHM REDIS_PORT REDIS_CLUSTER PG_PRIMARY_PORT PG_REPLICA_PORT APP_BASE_PORT \
	SHUTDOWN_DRAIN_MS REPLICA_APPLY_DELAY_MS

##@ Getting started

.PHONY: help
help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install system packages (redis, nginx, postgresql) and the pinned npm dependencies
	@bash local/deps.sh
	@$(MAKE) node-deps

.PHONY: node-deps
node-deps: node_modules/.installed app/node_modules/.installed ## Install the pinned npm dependencies (root tooling and app)

node_modules/.installed: package.json package-lock.json
	@echo "npm ci (root tooling: Node 24, TypeScript, Biome)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

app/node_modules/.installed: app/package.json app/package-lock.json
	@echo "npm ci (app)"
	@npm --prefix app ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: tools
tools: ## Install the pinned helper binaries (helm 3 and 4, kubectl, validators) into tools/bin
	@bash tools/install.sh

##@ Develop

.PHONY: build
build: node-deps ## Compile the app to app/dist
	@cd app && tsc -p tsconfig.build.json

.PHONY: lint
lint: node-deps ## Lint and check formatting (Biome)
	@biome check .

.PHONY: format
format: node-deps ## Rewrite files with Biome's formatting and safe fixes
	@biome check --write .

.PHONY: typecheck
typecheck: node-deps ## Type-check the app, the local topology and the tests
	@tsc -p app/tsconfig.json
	@tsc -p app/image
	@tsc -p tsconfig.json

##@ Test

.PHONY: test
test: deps ## Everything CI runs: lint, types, unit, integration, load smoke, chart, kind checks, and the chart on real pods
	@$(MAKE) lint typecheck load-check
	@$(MAKE) unit
	@$(MAKE) integration
	@$(MAKE) load-test
	@# The Bitnami charts cannot be fetched on the build machines (no registry): the full
	@# render is skipped by name, and the contract checks stand in (charts/tests/run.sh).
	@CHECKS_SKIP=bitnami-render $(MAKE) chart-test
	@$(MAKE) k8s-static
	@$(MAKE) cluster-real-test

.PHONY: unit
unit: node-deps ## Unit tests of the app (no services needed)
	@cd app && $(NODE_TEST) 'test/unit/**/*.test.ts'

.PHONY: integration
integration: node-deps tools ## Integration tests on real Redis, PostgreSQL primary + replica and nginx (and the chart's PgBouncer, rendered with helm)
	@$(NODE_TEST) --test-concurrency=1 'local/test/**/*.test.ts' 'app/test/integration/**/*.test.ts' \
		charts/tests/helm-test-script.test.ts charts/tests/pgbouncer-chart.test.ts

.PHONY: test-the-tests
test-the-tests: node-deps tools ## Plant each bug of tools/test-the-tests/bugs.ts in a scratch copy; print bug -> test -> caught/missed
	@$(NODE) tools/test-the-tests/run.ts

.PHONY: test-repeat
test-repeat: ## make test RUNS times (default 5) on a fresh clone with make bench beside it; prints each run's time
	@bash tools/test-repeat/run.sh

.PHONY: mutation
mutation: node-deps ## Mutation score (StrykerJS) of auth, sessions, LSNs, replicas, lifecycle, rate limit, capacity -> .local/mutation/
	@$(NODE) tools/mutation/run.ts

.PHONY: chart-test
chart-test: tools ## Lint (Helm 3 and 4), render, strictly validate and policy-check the chart
	@bash charts/tests/run.sh

.PHONY: chart-docs
chart-docs: tools ## Regenerate the chart README's parameter table from values.yaml
	@bash charts/tests/docs.sh

##@ Load

.PHONY: load-check
load-check: node-deps ## Type-check load/ (k6 scripts with k6 types only) and refuse Node or remote imports in k6 code
	@$(NODE) load/check.ts

.PHONY: load-test
load-test: node-deps ## Shape unit tests and a 10 s sessions smoke through nginx on the local topology
	@$(NODE_TEST) --test-concurrency=1 'load/test/**/*.test.ts'

.PHONY: load
load: node-deps ## Run one k6 (v2) scenario: make load SCENARIO=ramp [BASE_URL=http://127.0.0.1:8080] [TARGET_RPS=1000] [RESULTS_DIR=load/results]
	@SCENARIO='$(SCENARIO)' BASE_URL='$(BASE_URL)' TARGET_RPS='$(TARGET_RPS)' $(NODE) load/k6.ts

.PHONY: load-cluster
load-cluster: node-deps ## Run one k6 scenario over N runners with the k6-operator: make load-cluster SCENARIO=ramp TARGET_RPS=50000 PARALLELISM=10 [DRY_RUN=1] (load/README.md)
	@SCENARIO='$(SCENARIO)' TARGET_RPS='$(TARGET_RPS)' PARALLELISM='$(PARALLELISM)' BASE_URL='$(BASE_URL)' $(NODE) k8s-tests/load-cluster/run.ts

.PHONY: bench
bench: node-deps ## Anchors, every endpoint and every shape on the local topology -> bench/results/<time>.json + .html
	@$(NODE) load/bench.ts

.PHONY: capacity
capacity: node-deps ## Size pods, HPA, Redis and PostgreSQL for TARGET_RPS (default 1000000) from the latest bench
	@TARGET_RPS='$(TARGET_RPS)' $(NODE) load/capacity.ts

##@ Local topology (no Docker needed)

.PHONY: local-up
local-up: node-deps ## Start Redis, PostgreSQL primary + replica, INSTANCES app processes and nginx on loopback
	@$(NODE) local/cli.ts up

.PHONY: local-down
local-down: ## Stop exactly what local-up started
	@$(NODE) local/cli.ts down

.PHONY: local-restart
local-restart: ## Rolling restart of the app instances behind nginx, one at a time
	@$(NODE) local/cli.ts restart

.PHONY: local-env
local-env: ## Print the environment of the first local app instance, as export lines
	@$(NODE) local/cli.ts env

.PHONY: local-status
local-status: ## Show what the local topology runs and where
	@$(NODE) local/cli.ts status

##@ Image

.PHONY: image
image: ## Build the app image nodescale:<version> (docker where an engine runs, else buildah on a local Node base)
	@bash app/image/deps.sh
	@bash app/image/build.sh

.PHONY: image-test
image-test: node-deps image ## Run the image and check it: uid 10001, read-only root, no npm or dev deps, migrate, /readyz, SIGTERM drain
	@bash app/image/test.sh

##@ Kubernetes

.PHONY: kind-up
kind-up: ## Create a kind cluster with the whole bundle (needs Docker; GATEWAY=1: Gateway API; K6_OPERATOR=1: the k6-operator; DRY_RUN=1: print the commands)
	@bash k8s-tests/kind/up.sh

.PHONY: kind-down
kind-down: ## Delete the kind cluster of kind-up
	@bash k8s-tests/kind/down.sh

.PHONY: e2e
e2e: node-deps ## End-to-end checks on the current kubeconfig context (make kind-up first); results in k8s-tests/results/
	@$(NODE_TEST) --test-concurrency=1 --test-timeout=1800000 'k8s-tests/*.test.ts'

##@ Simulated cluster (a real control plane with kwok nodes; no Docker needed)

.PHONY: cluster-sim-up
cluster-sim-up: tools ## Build once (cached in ~/.cache/nodescale) and start a real control plane with kwok nodes on loopback
	@bash k8s-tests/cluster-sim/cluster-sim.sh up

.PHONY: cluster-sim-down
cluster-sim-down: ## Stop exactly what cluster-sim-up started (by pid)
	@bash k8s-tests/cluster-sim/cluster-sim.sh down

.PHONY: cluster-sim-test
cluster-sim-test: node-deps tools ## Before each release: chart install/upgrade/rollback/uninstall and the HPA on the simulated cluster
	@bash k8s-tests/cluster-sim/test.sh

.PHONY: e2e-sim
e2e-sim: node-deps tools ## The e2e suite on the simulated cluster; the checks that need containers are skipped, saying why
	@bash k8s-tests/cluster-sim/e2e.sh

.PHONY: k8s-static
k8s-static: tools node-deps ## Static checks of the kind setup: ShellCheck on every script, strict validation, pins, kind-up dry run
	@bash k8s-tests/static/run.sh
	@$(NODE_TEST) k8s-tests/lib/capabilities.test.ts

##@ Real-node cluster (the control plane with a real node running real containers; no Docker needed)

.PHONY: cluster-real-deps
cluster-real-deps: ## Install containerd, runc, the CNI plugins, iptables and buildah (Debian packages)
	@bash k8s-tests/cluster-real/deps.sh

.PHONY: cluster-real-up
cluster-real-up: tools node-deps cluster-real-deps ## Build once (cached) and start the control plane, a real node, CoreDNS, metrics-server and Redis + PostgreSQL
	@bash k8s-tests/cluster-real/cluster-real.sh up

.PHONY: cluster-real-down
cluster-real-down: node-deps ## Stop exactly what cluster-real-up started and remove every container, mount, interface and rule it made
	@bash k8s-tests/cluster-real/cluster-real.sh down

.PHONY: cluster-real-test
cluster-real-test: tools node-deps cluster-real-deps ## First install, helm test, routing, rollouts, HPA, readiness and faults on real pods (part of make test)
	@bash k8s-tests/cluster-real/test.sh
