#!/usr/bin/env bash
# `make kind-up`: the whole nodescale bundle on a local kind cluster, from nothing.
#
#   bash k8s-tests/kind/up.sh              ingress-nginx in front of the app (the default)
#   GATEWAY=1 bash k8s-tests/kind/up.sh    Gateway API instead: the CRDs (standard channel),
#                                          Envoy Gateway and the chart's HTTPRoute
#   K6_OPERATOR=1 bash k8s-tests/kind/up.sh   also Grafana's k6-operator (TestRun), for
#                                          `make load-cluster` (load/README.md)
#   DRY_RUN=1 bash k8s-tests/kind/up.sh    print the exact, pinned commands and which kind,
#                                          helm and kubectl they use; run or install nothing
#   PREFLIGHT_ONLY=1 bash k8s-tests/kind/up.sh   only the checks below, then stop
#
# Every version comes from tools/versions.env. kind, helm and kubectl are yours when they are
# within the ranges versions.env accepts (tools/install.sh decides); only a missing one is
# installed into tools/bin. Safe to run again: an existing cluster is reused, every release is
# `helm upgrade --install`, every manifest `kubectl apply`, the chart's dependencies are
# fetched once. Each step says what it does and how long it took.
# Before anything is installed or created it stops with one line when: no Docker engine
# answers; `docker` is Podman; Docker runs rootless and may not bind ports below 1024; an
# existing `nodescale` cluster runs another node image; 127.0.0.1:80 or :443 is taken.
# kubectl and helm only ever talk to the kind cluster's context (kind-nodescale).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../tools/versions.env
source "$ROOT/tools/versions.env"
cd "$ROOT"

CLUSTER=nodescale # also `name:` in cluster.yaml (checked by make test)
CONTEXT="kind-$CLUSTER"
NAMESPACE=nodescale
RELEASE=nodescale
URL=http://127.0.0.1
KIND_DIR=k8s-tests/kind
CHART=charts/nodescale
IMAGE="$APP_IMAGE_REPOSITORY:$APP_IMAGE_TAG"
GATEWAY="${GATEWAY:-0}"
K6_OPERATOR="${K6_OPERATOR:-0}"
DRY_RUN="${DRY_RUN:-0}"
PREFLIGHT_ONLY="${PREFLIGHT_ONLY:-0}"

INGRESS_NGINX_REPO=https://kubernetes.github.io/ingress-nginx
METRICS_SERVER_REPO=https://kubernetes-sigs.github.io/metrics-server/
GATEWAY_API_CRDS_URL="https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_CRDS_VERSION/standard-install.yaml"
ENVOY_GATEWAY_CHART=oci://docker.io/envoyproxy/gateway-helm
ENVOY_GATEWAY_CRDS_CHART=oci://docker.io/envoyproxy/gateway-crds-helm
GRAFANA_REPO=https://grafana.github.io/helm-charts

[[ "$GATEWAY" == 0 || "$GATEWAY" == 1 ]] || { echo "kind-up: GATEWAY must be 0 or 1, not '$GATEWAY'" >&2; exit 2; }
[[ "$K6_OPERATOR" == 0 || "$K6_OPERATOR" == 1 ]] || { echo "kind-up: K6_OPERATOR must be 0 or 1, not '$K6_OPERATOR'" >&2; exit 2; }
[[ "$DRY_RUN" == 0 || "$DRY_RUN" == 1 ]] || { echo "kind-up: DRY_RUN must be 0 or 1, not '$DRY_RUN'" >&2; exit 2; }
[[ "$PREFLIGHT_ONLY" == 0 || "$PREFLIGHT_ONLY" == 1 ]] || { echo "kind-up: PREFLIGHT_ONLY must be 0 or 1, not '$PREFLIGHT_ONLY'" >&2; exit 2; }
fail() { echo "kind-up: $*" >&2; exit 1; }

# ---- output ------------------------------------------------------------------------------
STEP=0
STEPS=$((7 + K6_OPERATOR))
STARTED=$SECONDS
STEP_STARTED=$SECONDS
step() { # step TITLE: what the next commands do
  finish_step
  STEP=$((STEP + 1))
  STEP_STARTED=$SECONDS
  if [[ "$DRY_RUN" == 1 ]]; then printf '\n# [%d/%d] %s\n' "$STEP" "$STEPS" "$1"; else printf '\n==> [%d/%d] %s\n' "$STEP" "$STEPS" "$1"; fi
}
finish_step() {
  [[ "$DRY_RUN" == 1 || "$STEP" == 0 ]] && return 0
  printf '    done in %ss\n' "$((SECONDS - STEP_STARTED))"
}
note() { if [[ "$DRY_RUN" == 1 ]]; then printf '# %s\n' "$*"; else printf '    %s\n' "$*"; fi; }

# run CMD...: prints the command; runs it unless DRY_RUN=1.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '%s\n' "$(quote "$@")"
  else
    printf '    $ %s\n' "$(quote "$@")"
    "$@"
  fi
}
# pipe CMD1... '|' CMD2...: CMD1 | CMD2 (printed as one line; run unless DRY_RUN=1).
pipe() {
  local left=() right=() seen=0 a
  for a in "$@"; do
    if [[ "$a" == "|" && "$seen" == 0 ]]; then seen=1; elif [[ "$seen" == 0 ]]; then left+=("$a"); else right+=("$a"); fi
  done
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '%s | %s\n' "$(quote "${left[@]}")" "$(quote "${right[@]}")"
  else
    printf '    $ %s | %s\n' "$(quote "${left[@]}")" "$(quote "${right[@]}")"
    "${left[@]}" | "${right[@]}"
  fi
}
quote() {
  local out=() a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      out+=("$a")
    elif [[ "$a" != *"'"* ]]; then
      out+=("'$a'")
    else
      out+=("$(printf '%q' "$a")")
    fi
  done
  printf '%s' "${out[*]}"
}
# Is it there already? (Never asked in a dry run: the dry run prints the full sequence.)
cluster_exists() { [[ "$DRY_RUN" == 0 ]] && "$KIND" get clusters 2>/dev/null | grep -x "$CLUSTER" >/dev/null; }
release_exists() { [[ "$DRY_RUN" == 0 ]] && "$HELM" status "$1" -n "$2" --kube-context "$CONTEXT" >/dev/null 2>&1; }

# ---- preflight -----------------------------------------------------------------------------
# Every check here is a one-line stop, before anything is installed or created.
preflight() {
  local version security start image taken=()
  if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    fail "no Docker engine answers ('docker info' fails): kind runs its nodes in Docker; without it use 'make local-up'"
  fi
  version=$(docker --version 2>/dev/null || true)
  if [[ "$version" == *[Pp]odman* || "${KIND_EXPERIMENTAL_PROVIDER:-}" == podman ]]; then
    fail "'docker' here is Podman ($version): kind's Podman support is experimental and rootless Podman cannot publish ports 80/443; use Docker (Docker Desktop, Colima, or a rootful Docker Engine)"
  fi
  # A rootless daemon publishes ports as the user: below net.ipv4.ip_unprivileged_port_start
  # (1024 by default) it cannot bind 127.0.0.1:80/443.
  security=$(docker info --format '{{json .SecurityOptions}}' 2>/dev/null || true)
  if [[ "$security" == *name=rootless* ]]; then
    start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)
    if [[ "$start" -gt 80 ]]; then
      fail "Docker runs rootless here and ports below $start are privileged (net.ipv4.ip_unprivileged_port_start=$start): kind cannot publish 127.0.0.1:80/443; use a rootful Docker, or sysctl net.ipv4.ip_unprivileged_port_start=80"
    fi
  fi
  # kind names the control plane's container <cluster>-control-plane and creates it from
  # --image exactly as given (up.sh always passes KIND_NODE_IMAGE).
  image=$(docker inspect --format '{{.Config.Image}}' "$CLUSTER-control-plane" 2>/dev/null || true)
  if [[ -n "$image" && "$image" != "$KIND_NODE_IMAGE" ]]; then
    fail "the existing kind cluster '$CLUSTER' runs node image $image, not the pinned $KIND_NODE_IMAGE: 'make kind-down' deletes it (and everything in it), then run make kind-up again"
  fi
  if [[ -z "$image" ]]; then # a new cluster needs the host ports; an existing one holds them
    port_taken 80 && taken+=("127.0.0.1:80")
    port_taken 443 && taken+=("127.0.0.1:443")
    if [[ ${#taken[@]} -gt 0 ]]; then
      if [[ ${#taken[@]} -eq 1 ]]; then taken[0]+=" is"; else taken=("${taken[0]} and ${taken[1]} are"); fi
      fail "${taken[*]} taken (something listens there): the cluster's ingress needs 127.0.0.1:80 and :443; stop what holds them (lsof -nP -iTCP:80 -iTCP:443 -sTCP:LISTEN names it), then run again"
    fi
  fi
}
# port_taken PORT: something accepts connections on 127.0.0.1:PORT
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ "$DRY_RUN" == 1 ]]; then
  printf '# make kind-up (GATEWAY=%s K6_OPERATOR=%s): the commands it runs, in order, from the repository root.\n' "$GATEWAY" "$K6_OPERATOR"
  printf '# Pins from tools/versions.env. Needs a Docker engine.\n'
else
  preflight
  if [[ "$PREFLIGHT_ONLY" == 1 ]]; then
    echo "kind-up: preflight passed (Docker engine, not Podman, ports 80/443 usable, no cluster '$CLUSTER' of another node image)"
    exit 0
  fi
  printf 'kind-up: cluster %s (%s), %s path\n' "$CLUSTER" "$KIND_NODE_IMAGE" "$([[ "$GATEWAY" == 1 ]] && echo 'Gateway API (Envoy Gateway)' || echo 'ingress-nginx')"
fi

# ---- 1. tools --------------------------------------------------------------------------------
step "tools: kind, helm and kubectl: yours when within the ranges of tools/versions.env, else installed into tools/bin"
if [[ "$DRY_RUN" == 1 ]]; then
  while IFS= read -r line; do note "$line"; done < <(bash tools/install.sh --dry-run kind helm kubectl)
fi
run bash tools/install.sh kind helm kubectl
KIND=$(bash tools/install.sh --which kind)
HELM=$(bash tools/install.sh --which helm)
KUBECTL=$(bash tools/install.sh --which kubectl)

# ---- 2. cluster ------------------------------------------------------------------------------
step "cluster: kind cluster '$CLUSTER' (1 control plane with host ports 80/443 on 127.0.0.1, 2 workers)"
if cluster_exists; then
  note "cluster '$CLUSTER' exists: reusing it (make kind-down removes it)"
  run "$KIND" export kubeconfig --name "$CLUSTER"
else
  [[ "$DRY_RUN" == 1 ]] && note "(skipped when the cluster exists: then 'kind export kubeconfig --name $CLUSTER')"
  run "$KIND" create cluster --name "$CLUSTER" --config "$KIND_DIR/cluster.yaml" --image "$KIND_NODE_IMAGE" --wait 180s
fi
run "$KUBECTL" --context "$CONTEXT" wait --for=condition=Ready nodes --all --timeout=180s

# The two front doors share host port 80 on the control plane: one at a time.
if [[ "$GATEWAY" == 1 ]] && release_exists ingress-nginx ingress-nginx; then
  echo "kind-up: this cluster runs the ingress-nginx path; GATEWAY=1 needs a fresh one: make kind-down first" >&2
  exit 1
elif [[ "$GATEWAY" == 0 ]] && release_exists eg envoy-gateway-system; then
  echo "kind-up: this cluster runs the Gateway API path; without GATEWAY=1 it needs a fresh one: make kind-down first (or GATEWAY=1 make kind-up)" >&2
  exit 1
fi

# ---- 3. image --------------------------------------------------------------------------------
step "image: build $IMAGE from app/Dockerfile with docker, load it onto every node"
run env IMAGE="$IMAGE" IMAGE_BUILDER=docker bash app/image/build.sh
run "$KIND" load docker-image "$IMAGE" --name "$CLUSTER"
# The tag stays $APP_IMAGE_TAG across rebuilds: the image id, as a pod annotation, rolls the
# pods exactly when the image changed.
if [[ "$DRY_RUN" == 1 ]]; then
  image_id="<the image id: docker image inspect --format {{.Id}} $IMAGE>"
else
  image_id=$(docker image inspect --format '{{.Id}}' "$IMAGE")
  note "image id $image_id"
fi

# ---- 4. metrics-server -------------------------------------------------------------------------
step "metrics-server $METRICS_SERVER_VERSION (chart $METRICS_SERVER_CHART_VERSION) with --kubelet-insecure-tls, so the HPA acts"
run "$HELM" upgrade --install metrics-server metrics-server --repo "$METRICS_SERVER_REPO" \
  --version "$METRICS_SERVER_CHART_VERSION" --namespace kube-system --kube-context "$CONTEXT" \
  -f "$KIND_DIR/metrics-server.values.yaml" --set "image.tag=$METRICS_SERVER_VERSION" --wait --timeout 5m

# support_note WHAT MIN..MAX: says so when the cluster's Kubernetes minor is not one that WHAT's
# project lists as supported (versions.env records those lists and where they come from).
support_note() {
  local minor=${KUBE_VERSION%.*} min=${2%%..*} max=${2##*..}
  if [[ "${minor#1.}" -lt "${min#1.}" || "${minor#1.}" -gt "${max#1.}" ]]; then
    note "note: $1 lists Kubernetes $min to $max as supported; this cluster is $minor (it runs, untested upstream: see k8s-tests/README.md)"
  fi
}

# ---- 5. front door ---------------------------------------------------------------------------------
if [[ "$GATEWAY" == 1 ]]; then
  step "Gateway API: CRDs $GATEWAY_API_CRDS_VERSION (standard channel), Envoy Gateway $ENVOY_GATEWAY_VERSION, Gateway 'eg' on host port 80"
  run "$KUBECTL" --context "$CONTEXT" apply --server-side -f "$GATEWAY_API_CRDS_URL"
  pipe "$HELM" template eg-crds "$ENVOY_GATEWAY_CRDS_CHART" --version "$ENVOY_GATEWAY_VERSION" \
    -f "$KIND_DIR/envoy-gateway-crds.values.yaml" '|' "$KUBECTL" --context "$CONTEXT" apply --server-side -f -
  run "$HELM" upgrade --install eg "$ENVOY_GATEWAY_CHART" --version "$ENVOY_GATEWAY_VERSION" \
    --namespace envoy-gateway-system --create-namespace --kube-context "$CONTEXT" \
    -f "$KIND_DIR/envoy-gateway.values.yaml" --wait --timeout 5m
  run "$KUBECTL" --context "$CONTEXT" apply -f "$KIND_DIR/gateway.yaml"
  run "$KUBECTL" --context "$CONTEXT" -n envoy-gateway-system wait gateway/eg --for=condition=Programmed --timeout=180s
  support_note "Envoy Gateway $ENVOY_GATEWAY_VERSION" "$ENVOY_GATEWAY_KUBE_SUPPORTED"
else
  step "ingress-nginx $INGRESS_NGINX_CONTROLLER_VERSION (chart $INGRESS_NGINX_CHART_VERSION, the retired project's last release) on host ports 80/443"
  support_note "ingress-nginx $INGRESS_NGINX_CONTROLLER_VERSION" "$INGRESS_NGINX_KUBE_SUPPORTED"
  run "$HELM" upgrade --install ingress-nginx ingress-nginx --repo "$INGRESS_NGINX_REPO" \
    --version "$INGRESS_NGINX_CHART_VERSION" --namespace ingress-nginx --create-namespace --kube-context "$CONTEXT" \
    -f "$KIND_DIR/ingress-nginx.values.yaml" --wait --timeout 5m
fi

# ---- 6. the app ----------------------------------------------------------------------------------
values=(-f "$KIND_DIR/values-kind.yaml")
[[ "$GATEWAY" == 1 ]] && values+=(-f "$KIND_DIR/values-kind-gateway.yaml")
step "nodescale: the chart's Bitnami dependencies (fetched once), then the release '$RELEASE' in namespace '$NAMESPACE'"
[[ "$DRY_RUN" == 1 ]] && note "(runs '$HELM dependency build $CHART' only when $CHART/charts lacks a dependency at its version)"
run bash "$KIND_DIR/chart-deps.sh" "$HELM" "$CHART"
run "$HELM" upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" --create-namespace \
  --kube-context "$CONTEXT" "${values[@]}" --set "image.tag=$APP_IMAGE_TAG" \
  --set-string "podAnnotations.nodescale-image-id=$image_id" --wait --timeout 10m

# ---- k6-operator (K6_OPERATOR=1) ------------------------------------------------------------------
if [[ "$K6_OPERATOR" == 1 ]]; then
  step "k6-operator $K6_OPERATOR_VERSION (chart $K6_OPERATOR_CHART_VERSION, its CRDs included): TestRun for make load-cluster"
  run "$HELM" upgrade --install k6-operator k6-operator --repo "$GRAFANA_REPO" \
    --version "$K6_OPERATOR_CHART_VERSION" --namespace k6-operator-system --create-namespace --kube-context "$CONTEXT" \
    --wait --timeout 5m
  run "$KUBECTL" --context "$CONTEXT" wait crd/testruns.k6.io --for=condition=Established --timeout=60s
fi

# ---- 7. ready ------------------------------------------------------------------------------------
step "ready: the rollout, the metrics API, and GET /readyz through the front door"
run "$KUBECTL" --context "$CONTEXT" -n "$NAMESPACE" rollout status "deployment/$RELEASE" --timeout=5m
run "$KUBECTL" --context "$CONTEXT" wait apiservice/v1beta1.metrics.k8s.io --for=condition=Available --timeout=3m
run curl --fail --silent --show-error --retry 30 --retry-delay 2 --retry-all-errors --max-time 5 \
  -o /dev/null -w 'GET /readyz: HTTP %{http_code}\n' "$URL/readyz"
finish_step

if [[ "$DRY_RUN" == 1 ]]; then
  printf '\n# then: make e2e   (make kind-down: %s delete cluster --name %s)\n' "$KIND" "$CLUSTER"
  exit 0
fi
cat <<EOF

nodescale is up in $((SECONDS - STARTED))s at $URL (kubectl context $CONTEXT)
  curl $URL/readyz
  make e2e                                   # the end-to-end checks on this cluster
  $HELM test $RELEASE -n $NAMESPACE --kube-context $CONTEXT --logs
  make load SCENARIO=ramp BASE_URL=$URL      # or: k6 run -e BASE_URL=$URL load/scenarios/ramp.ts
$([[ "$K6_OPERATOR" == 1 ]] && echo "  make load-cluster SCENARIO=ramp TARGET_RPS=2000 PARALLELISM=2 KUBE_CONTEXT=$CONTEXT   # k6 runners in the cluster")
  make kind-down                             # remove the cluster
EOF
