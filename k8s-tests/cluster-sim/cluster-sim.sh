#!/usr/bin/env bash
# The simulated cluster: a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) as local processes on loopback, kwok for fake
# nodes and pods, and metrics-server reading kwok's simulated resource usage, so the real
# HPA controller can act. See README.md beside this script.
#
# Usage: bash k8s-tests/cluster-sim/cluster-sim.sh up|down|status|env
#   up      build once (cached outside the repo), generate certificates, start everything,
#           write the kubeconfig, print build and start times
#   down    stop exactly the processes `up` started (by their pid files), wipe etcd's data
#   status  what runs, by pid
#   env     `export KUBECONFIG=...` for a shell
# State (pids, logs, certificates, etcd data, kubeconfig): .local/cluster-sim/ (gitignored).
# Env: CLUSTER_SIM_STATE (state folder), CLUSTER_SIM_PORT_BASE (default 26000: etcd +79/+80,
#      apiserver +443, controller-manager +257, scheduler +259, kwok +250, metrics-server +444),
#      CLUSTER_SIM_NODES (fake nodes, default 3, spread over 3 zones)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../tools/versions.env
source "$ROOT/tools/versions.env"
STATE=${CLUSTER_SIM_STATE:-$ROOT/.local/cluster-sim}
TAG=cluster-sim
PORT_BASE=${CLUSTER_SIM_PORT_BASE:-26000}
KWOK_PORT=$((PORT_BASE + 250))
MS_PORT=$((PORT_BASE + 444))
NODES=${CLUSTER_SIM_NODES:-3}
HOST=127.0.0.1
SERVICE_CIDR=10.96.0.0/16
KUBECTL="$ROOT/tools/bin/kubectl"
BIN=""
APISERVER_EXTRA_ARGS=()
# shellcheck source=../lib/control-plane.sh
source "$ROOT/k8s-tests/lib/control-plane.sh"

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server)

# kwok stands in for every kubelet; metrics-server reads nodes and pods cluster-wide.
sim_certs() {
  [[ -f "$PKI/kwok.crt" ]] || cert ca kwok "/O=system:masters/CN=kwok-controller" "IP:127.0.0.1,DNS:localhost"
  [[ -f "$PKI/metrics-server.crt" ]] || cert ca metrics-server "/O=system:masters/CN=metrics-server" \
    "IP:127.0.0.1,DNS:localhost,DNS:metrics-server.kube-system.svc"
}

# ---------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------
up() {
  local t_all t
  t_all=$(now)
  [[ -x "$KUBECTL" ]] || die "tools/bin/kubectl is missing: run make tools"
  for c in "${COMPONENTS[@]}"; do
    if pid_of "$c" >/dev/null; then die "$c already runs (pid $(pid_of "$c")): run 'make cluster-sim-down' first"; fi
  done

  t=$(now)
  # Its log is on stderr; the last line of stdout is the binaries' folder.
  BIN=$(bash "$HERE/build.sh" | tail -n 1)
  [[ -x "$BIN/kube-apiserver" ]] || die "build failed"
  local build_time
  build_time=$(elapsed "$t")
  log "build: $build_time (binaries in $BIN)"

  t=$(now)
  start_control_plane
  sim_certs
  for c in kwok metrics-server; do
    : >"$LOGS/$c.log"
    kubeconfig "$STATE/$c.kubeconfig" "$c"
  done

  # kwok: its CRDs and the Metric that serves kubelet-style /metrics/resource per node
  # (both from the kwok module's source, see build.sh), stages from its config file.
  kc apply --server-side --field-manager=cluster-sim -f "$BIN/../kwok/crds" >/dev/null
  kc wait --for=condition=Established --timeout=60s -f "$BIN/../kwok/crds" >/dev/null
  kc apply --server-side --field-manager=cluster-sim -f "$BIN/../kwok/metrics-resource.yaml" >/dev/null
  start kwok "$BIN/kwok" \
    --kubeconfig="$STATE/kwok.kubeconfig" --config="$BIN/../kwok/kwok.yaml" \
    --manage-all-nodes=true \
    --node-ip="$HOST" --node-name=localhost --node-port="$KWOK_PORT" \
    --server-address="$HOST:$KWOK_PORT" \
    --tls-cert-file="$PKI/kwok.crt" --tls-private-key-file="$PKI/kwok.key" \
    --node-lease-duration-seconds=40 \
    --enable-crds=Metric,ClusterResourceUsage,ResourceUsage
  wait_for kwok 60 curl -fsSk "https://$HOST:$KWOK_PORT/healthz"
  local i zone
  for ((i = 0; i < NODES; i++)); do
    zone="zone-$((i % 3))"
    kc apply --server-side --field-manager=cluster-sim -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: sim-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/sim-node-$i/metrics/resource
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: sim-node-$i
    topology.kubernetes.io/zone: $zone
    type: kwok
spec:
  podCIDR: 10.244.$i.0/24
  podCIDRs: [10.244.$i.0/24]
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "16", memory: 64Gi, pods: "110", ephemeral-storage: 100Gi}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake}
EOF
  done
  kc wait --for=condition=Ready --timeout=60s node --all >/dev/null
  log "kwok up, $NODES fake nodes Ready ($(elapsed "$t"))"

  start metrics-server "$BIN/metrics-server" \
    --kubeconfig="$STATE/metrics-server.kubeconfig" \
    --authentication-kubeconfig="$STATE/metrics-server.kubeconfig" \
    --authorization-kubeconfig="$STATE/metrics-server.kubeconfig" \
    --bind-address="$HOST" --secure-port="$MS_PORT" \
    --tls-cert-file="$PKI/metrics-server.crt" --tls-private-key-file="$PKI/metrics-server.key" \
    --kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --metric-resolution=15s
  # The aggregator reaches an APIService through its Service; with no kube-proxy here, an
  # ExternalName Service is the one kind it resolves without a ClusterIP route.
  local cabundle
  cabundle=$(base64 -w0 <"$PKI/ca.crt")
  kc apply --server-side --field-manager=cluster-sim -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  type: ExternalName
  externalName: $HOST
  ports: [{name: https, port: $MS_PORT, protocol: TCP}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {name: metrics-server, namespace: kube-system, port: $MS_PORT}
  caBundle: $cabundle
EOF
  wait_for metrics-server 90 kc wait --for=condition=Available --timeout=5s apiservice/v1beta1.metrics.k8s.io
  log "metrics-server up, metrics.k8s.io available ($(elapsed "$t"))"

  local start_time
  start_time=$(elapsed "$t")
  echo
  log "readyz: $(kc get --raw /readyz)"
  log "server: $(kc version -o json 2>/dev/null | sed -n '/serverVersion/,/}/s/.*"gitVersion": "\(.*\)".*/\1/p')"
  log "build $build_time, start $start_time, total $(elapsed "$t_all")"
  log "export KUBECONFIG=$KUBECONFIG_FILE"
  # What the tests read (k8s-tests/cluster-sim/lib.ts): where things are, how long they took.
  local out
  out=$(dirname "$BIN")
  cat >"$STATE/cluster.env" <<EOF
KUBECONFIG=$KUBECONFIG_FILE
CLUSTER_SIM_SERVER=https://$HOST:$API_PORT
CLUSTER_SIM_BIN=$BIN
CLUSTER_SIM_GATEWAY_API_CRDS=$(readlink -f "$out/crds/gateway-api-$GATEWAY_API_CRDS_VERSION")
CLUSTER_SIM_SERVICEMONITOR_CRDS=$(readlink -f "$out/crds/servicemonitor-$PROMETHEUS_OPERATOR_VERSION")
CLUSTER_SIM_KUBERNETES_VERSION=$CLUSTER_SIM_KUBERNETES_VERSION
CLUSTER_SIM_NODES=$NODES
CLUSTER_SIM_BUILD_SECONDS=${build_time%s}
CLUSTER_SIM_START_SECONDS=${start_time%s}
EOF
}

down() {
  local i reversed=()
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do reversed+=("${COMPONENTS[$i]}"); done
  stop_all "${reversed[@]}"
  rm -rf "$STATE/etcd" "$STATE/cluster.env"
  log "down (logs kept in $LOGS)"
}

status() {
  status_of "${COMPONENTS[@]}" || return 1
  printf '  readyz: %s\n' "$(kc get --raw /readyz 2>&1)"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
  *) die "usage: $0 up|down|status|env" ;;
esac
