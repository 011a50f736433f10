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
PKI="$STATE/pki"
RUN="$STATE/run"
LOGS="$STATE/logs"
KUBECONFIG_FILE="$STATE/kubeconfig"
BASE=${CLUSTER_SIM_PORT_BASE:-26000}
ETCD_PORT=$((BASE + 79))
ETCD_PEER_PORT=$((BASE + 80))
API_PORT=$((BASE + 443))
KCM_PORT=$((BASE + 257))
SCHED_PORT=$((BASE + 259))
KWOK_PORT=$((BASE + 250))
MS_PORT=$((BASE + 444))
NODES=${CLUSTER_SIM_NODES:-3}
HOST=127.0.0.1
SERVICE_CIDR=10.96.0.0/16
KUBECTL="$ROOT/tools/bin/kubectl"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[cluster-sim] %s\n' "$*"; }
die() { printf '[cluster-sim] ERROR: %s\n' "$*" >&2; exit 1; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# ---------------------------------------------------------------------------------------
# processes: one pid file per component; a pid counts only while /proc/<pid>/exe is our binary
# ---------------------------------------------------------------------------------------
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok metrics-server)

pid_of() { # pid_of NAME: prints the pid when NAME runs (started by us), else fails
  local f="$RUN/$1.pid" pid exe
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ "$(basename "${exe% (deleted)}")" == "$1" ]] || return 1
  echo "$pid"
}

start() { # start NAME ARGS...: starts $BIN/NAME in the background, logs to $LOGS/NAME.log
  local name=$1
  shift
  if pid_of "$name" >/dev/null; then die "$name already runs (pid $(pid_of "$name")): run down first"; fi
  # setsid: its own session, so the caller's terminal signals do not reach it; down stops it.
  setsid "$BIN/$name" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

stop() { # stop NAME: TERM, then KILL after 15 s, only the pid we recorded
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$RUN/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored TERM for 15 s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
  log "stopped $name (pid $pid)"
}

wait_for() { # wait_for NAME SECONDS COMMAND...: until COMMAND succeeds; the log tail on failure
  local name=$1 secs=$2 deadline
  shift 2
  deadline=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    if ! pid_of "$name" >/dev/null; then
      tail -n 30 "$LOGS/$name.log" >&2
      die "$name exited during start-up (log: $LOGS/$name.log)"
    fi
    if (($(date +%s) > deadline)); then
      tail -n 30 "$LOGS/$name.log" >&2
      die "$name not ready after ${secs}s (log: $LOGS/$name.log)"
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------
# certificates (openssl): one CA for the cluster, one for the front proxy (aggregation layer)
# ---------------------------------------------------------------------------------------
cert() { # cert CA NAME SUBJECT [SAN]: a key and a certificate signed by CA
  local ca=$1 name=$2 subj=$3 san=${4:-} ext="$PKI/$2.ext"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n "$san" ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

ca() { # ca NAME CN
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.crt" \
    -days 3650 -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

make_pki() {
  [[ -f "$PKI/.done" ]] && return
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  rm -rf "$PKI" && mkdir -p "$PKI" && chmod 700 "$PKI"
  ca ca nodescale-cluster-sim-ca
  ca front-proxy-ca nodescale-cluster-sim-front-proxy-ca
  cert ca apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert ca admin "/O=system:masters/CN=cluster-sim-admin"
  cert ca controller-manager "/CN=system:kube-controller-manager"
  cert ca scheduler "/CN=system:kube-scheduler"
  # kwok stands in for every kubelet; metrics-server reads nodes and pods cluster-wide.
  cert ca kwok "/O=system:masters/CN=kwok-controller" "IP:127.0.0.1,DNS:localhost"
  cert ca metrics-server "/O=system:masters/CN=metrics-server" \
    "IP:127.0.0.1,DNS:localhost,DNS:metrics-server.kube-system.svc"
  cert front-proxy-ca front-proxy-client "/CN=front-proxy-client"
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  touch "$PKI/.done"
}

kubeconfig() { # kubeconfig FILE CERTNAME
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cluster-sim
  cluster:
    server: https://$HOST:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: cluster-sim
  context: {cluster: cluster-sim, user: $2}
current-context: cluster-sim
EOF
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
  BIN=$(bash "$HERE/build.sh" | tee /dev/stderr | tail -n 1)
  [[ -x "$BIN/kube-apiserver" ]] || die "build failed"
  local build_time
  build_time=$(elapsed "$t")
  log "build: $build_time (binaries in $BIN)"

  t=$(now)
  mkdir -p "$STATE" "$RUN" "$LOGS"
  rm -rf "$STATE/etcd" "$STATE/kube-controller-manager" "$STATE/kube-scheduler"
  : >"$LOGS/.started"
  for c in "${COMPONENTS[@]}"; do : >"$LOGS/$c.log"; done
  make_pki
  for who in admin controller-manager scheduler kwok metrics-server; do
    kubeconfig "$STATE/$who.kubeconfig" "$who"
  done
  cp "$STATE/admin.kubeconfig" "$KUBECONFIG_FILE"

  start etcd --name=cluster-sim --data-dir="$STATE/etcd" \
    --listen-client-urls="http://$HOST:$ETCD_PORT" --advertise-client-urls="http://$HOST:$ETCD_PORT" \
    --listen-peer-urls="http://$HOST:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://$HOST:$ETCD_PEER_PORT" \
    --initial-cluster="cluster-sim=http://$HOST:$ETCD_PEER_PORT" \
    --listen-metrics-urls="" --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) \
    --auto-compaction-retention=1 --unsafe-no-fsync=true --log-level=warn
  wait_for etcd 60 curl -fsS "http://$HOST:$ETCD_PORT/health"
  log "etcd up ($(elapsed "$t"))"

  start kube-apiserver \
    --etcd-servers="http://$HOST:$ETCD_PORT" \
    --bind-address="$HOST" --secure-port="$API_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --allow-privileged=true \
    --enable-admission-plugins=NodeRestriction \
    --profiling=false
  wait_for kube-apiserver 120 kc get --raw /readyz
  log "kube-apiserver up on https://$HOST:$API_PORT ($(elapsed "$t"))"

  start kube-controller-manager \
    --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --bind-address="$HOST" --secure-port="$KCM_PORT" --cert-dir="$STATE/kube-controller-manager" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics \
    --profiling=false
  start kube-scheduler \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address="$HOST" --secure-port="$SCHED_PORT" --cert-dir="$STATE/kube-scheduler" \
    --leader-elect=false \
    --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics \
    --profiling=false
  wait_for kube-controller-manager 60 curl -fsSk "https://$HOST:$KCM_PORT/healthz"
  wait_for kube-scheduler 60 curl -fsSk "https://$HOST:$SCHED_PORT/healthz"
  log "kube-controller-manager and kube-scheduler up ($(elapsed "$t"))"

  # kwok: its CRDs and the Metric that serves kubelet-style /metrics/resource per node
  # (both from the kwok module's source, see build.sh), stages from its config file.
  kc apply --server-side --field-manager=cluster-sim -f "$BIN/../kwok/crds" >/dev/null
  kc wait --for=condition=Established --timeout=60s -f "$BIN/../kwok/crds" >/dev/null
  kc apply --server-side --field-manager=cluster-sim -f "$BIN/../kwok/metrics-resource.yaml" >/dev/null
  start kwok \
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

  start metrics-server \
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
  local c i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    c=${COMPONENTS[$i]}
    [[ -f "$RUN/$c.pid" ]] && stop "$c"
  done
  rm -rf "$STATE/etcd" "$STATE/cluster.env"
  log "down (logs kept in $LOGS)"
}

status() {
  local c pid rc=0
  for c in "${COMPONENTS[@]}"; do
    if pid=$(pid_of "$c"); then
      printf '  %-24s running (pid %s)\n' "$c" "$pid"
    else
      printf '  %-24s stopped\n' "$c"
      rc=1
    fi
  done
  [[ $rc -eq 0 ]] && printf '  readyz: %s\n' "$(kc get --raw /readyz 2>&1)"
  return $rc
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
  *) die "usage: $0 up|down|status|env" ;;
esac
