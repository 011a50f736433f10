#!/usr/bin/env bash
# The real-node cluster: the simulated cluster's control plane (k8s-tests/lib/control-plane.sh)
# with one real node on this host instead of kwok's fake ones: containerd, runc and the CNI
# bridge from Debian, kubelet and kube-proxy (iptables mode) built from the same Kubernetes
# source, CoreDNS and metrics-server as pods, from images built here. Redis and PostgreSQL
# (primary + streaming replica) run on the host from local/, where the pods reach them.
# No Docker, no registry: nothing is pulled. See README.md beside this script.
#
# Usage: bash k8s-tests/cluster-real/cluster-real.sh up|down|status|env
#   up      build once (cached), start everything, wait for the node and the add-ons, write
#           the kubeconfig and the chart's external-services values, print times
#   down    stop exactly what up started, and remove every container, mount, network
#           interface and iptables rule it made; fails when anything is left
#   status  what runs, by pid
#   env     `export KUBECONFIG=...` for a shell
#
# Addresses (inside 198.18.0.0/15, the range reserved for benchmarking): the node is
# 198.18.0.1 on a bridge of its own (nsreal0), pods get 198.18.0.0/24 with no default route
# (nothing they send can leave the machine), Services 198.19.0.0/16, cluster DNS 198.19.0.10.
# State: .local/cluster-real/ (gitignored). Env: CLUSTER_REAL_STATE, CLUSTER_REAL_PORT_BASE
# (default 27000: the control plane as in cluster-sim, Redis +379, PostgreSQL +432/+433).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../tools/versions.env
source "$ROOT/tools/versions.env"
STATE=${CLUSTER_REAL_STATE:-$ROOT/.local/cluster-real}
TAG=cluster-real
PORT_BASE=${CLUSTER_REAL_PORT_BASE:-27000}
NODE_NAME=real-0
# How the e2e suite tells this cluster apart (k8s-tests/lib/capabilities.ts, REAL_NODE_LABEL).
NODE_LABEL=nodescale.dev/cluster
BRIDGE=nsreal0
HOST=198.18.0.1
POD_CIDR=198.18.0.0/24
CLUSTER_CIDR=198.18.0.0/16
SERVICE_CIDR=198.19.0.0/16
DNS_IP=198.19.0.10
KUBELET_HEALTHZ_PORT=$((PORT_BASE + 248))
PROXY_HEALTHZ_PORT=$((PORT_BASE + 256))
PROXY_METRICS_PORT=$((PORT_BASE + 249))
REDIS_PORT=$((PORT_BASE + 379))
PG_PRIMARY_PORT=$((PORT_BASE + 432))
PG_REPLICA_PORT=$((PORT_BASE + 433))
STACK=cluster-real
KUBECTL="$ROOT/tools/bin/kubectl"
NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || NODE=$(command -v node || echo node)
CTRD="$STATE/containerd"
SOCK="$CTRD/containerd.sock"
BIN=""
APISERVER_EXTRA_ARGS=(
  --advertise-address="$HOST"
  --kubelet-client-certificate="$STATE/pki/apiserver-kubelet-client.crt"
  --kubelet-client-key="$STATE/pki/apiserver-kubelet-client.key"
  # The node has no DNS name: reach its kubelet (logs, exec) by its InternalIP.
  "--kubelet-preferred-address-types=InternalIP,Hostname"
  # The aggregator dials metrics-server's pod IP directly, not through kube-proxy.
  --enable-aggregator-routing=true
)
# shellcheck source=../lib/control-plane.sh
source "$ROOT/k8s-tests/lib/control-plane.sh"

# In stop order's reverse: down stops them from the end.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
# Host settings up changes, restored by down (recorded in $STATE/sysctl.saved).
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables)

ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# ---------------------------------------------------------------------------------------
# host network: the node's bridge and the sysctls pods need
# ---------------------------------------------------------------------------------------

sysctl_path() { printf '/proc/sys/%s' "${1//./\/}"; }

host_network_up() {
  [[ -d /proc/sys/net/bridge ]] || die "br_netfilter is not loaded (no /proc/sys/net/bridge): kube-proxy cannot see bridged traffic"
  if [[ ! -f "$STATE/sysctl.saved" ]]; then
    local k
    for k in "${SYSCTLS[@]}"; do printf '%s=%s\n' "$k" "$(cat "$(sysctl_path "$k")")"; done >"$STATE/sysctl.saved"
  fi
  # A pod that reaches a Service is DNATed by the host and routed back onto the bridge.
  echo 1 >"$(sysctl_path net.ipv4.ip_forward)"
  echo 1 >"$(sysctl_path net.bridge.bridge-nf-call-iptables)"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$HOST/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

host_network_down() {
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE"
    log "removed the bridge $BRIDGE"
  fi
  if [[ -f "$STATE/sysctl.saved" ]]; then
    local k v
    while IFS='=' read -r k v; do echo "$v" >"$(sysctl_path "$k")"; done <"$STATE/sysctl.saved"
    rm -f "$STATE/sysctl.saved"
    log "restored ${SYSCTLS[*]}"
  fi
}

# ---------------------------------------------------------------------------------------
# the node's certificates, kubeconfigs and configs
# ---------------------------------------------------------------------------------------

node_certs() {
  [[ -f "$PKI/kubelet.crt" ]] || cert ca kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  [[ -f "$PKI/kube-proxy.crt" ]] || cert ca kube-proxy "/CN=system:kube-proxy"
  [[ -f "$PKI/apiserver-kubelet-client.crt" ]] ||
    cert ca apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  return 0
}

write_configs() {
  local pause_image=$1
  mkdir -p "$CTRD" "$STATE/cni/net.d" "$STATE/cni/ipam" "$STATE/kubelet" "$STATE/kubelet-pki"
  kubeconfig "$STATE/kubelet.kubeconfig" kubelet
  kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy

  cat >"$CTRD/config.toml" <<EOF
# containerd of the real-node cluster (cluster-real.sh): its own root, state and socket.
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # Never pulled: build.sh makes it and up imports it under this name.
  sandbox_image = "$pause_image"
  # Processes here lack CAP_SYS_RESOURCE: without this every sandbox fails to start
  # ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # The host mounts cgroup v1 hierarchies and has no systemd: cgroupfs, as the kubelet.
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF

  # No default route in the pods: the pod range, the Service range (through the host, where
  # kube-proxy's rules are) and the node itself (the gateway) are all they can reach.
  cat >"$STATE/cni/net.d/10-nodescale.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "nodescale-real",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$HOST", "rangeStart": "${HOST%.*}.10" }]],
        "routes": [{ "dst": "$SERVICE_CIDR" }]
      }
    },
    { "type": "loopback" }
  ]
}
EOF

  cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$SOCK
# The host mounts cgroup v1 hierarchies and has no systemd; there is no swap.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# A test node on a shared disk: evict only when it is truly short.
evictionHard: {memory.available: 200Mi, nodefs.available: 5%, imagefs.available: 5%}
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
maxPods: 60
podLogsDir: $STATE/pod-logs
EOF

  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $CLUSTER_CIDR
bindAddress: $HOST
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
# NodePorts on the node's bridge address only, never on the host's other interfaces, and
# never on localhost (that would set route_localnet on the host).
nodePortAddresses: [$HOST/32]
iptables: {localhostNodePorts: false}
# Leave the host's conntrack table size alone.
conntrack: {maxPerCore: 0}
EOF
}

# ---------------------------------------------------------------------------------------
# images: docker-archives imported into containerd's k8s.io namespace (what the CRI sees)
# ---------------------------------------------------------------------------------------

# import_image ARCHIVE NAME: unless containerd already holds NAME from that archive
import_image() {
  local archive=$1 name=$2 stamp
  stamp="$CTRD/imported/$(basename "$archive").$(stat -c %Y-%s "$archive")"
  if [[ -f "$stamp" ]] && ctr_ images ls -q | grep -x "$name" >/dev/null; then return; fi
  ctr_ images import "$archive" >/dev/null || die "ctr images import $archive failed"
  ctr_ images ls -q | grep -x "$name" >/dev/null || die "$archive did not give the image $name"
  mkdir -p "$CTRD/imported" && rm -f "$CTRD/imported/$(basename "$archive")".* && : >"$stamp"
  log "image $name imported"
}

# The app image (make image) from buildah's store, as a docker-archive named as the chart
# asks for it (nodescale:<appVersion>, which containerd knows as docker.io/library/...).
app_image() {
  local ref="nodescale:$APP_IMAGE_TAG" full="docker.io/library/nodescale:$APP_IMAGE_TAG" id archive
  bash "$ROOT/app/image/deps.sh" >&2
  bash "$ROOT/app/image/build.sh" >&2 || die "make image failed"
  id=$(buildah --storage-driver "${STORAGE_DRIVER:-vfs}" inspect --type image --format '{{.FromImageID}}' "$ref")
  archive="$STATE/images/app-${id:0:12}.tar"
  if [[ ! -s "$archive" ]]; then
    rm -rf "$STATE/images" && mkdir -p "$STATE/images"
    buildah --storage-driver "${STORAGE_DRIVER:-vfs}" push --quiet "$ref" "docker-archive:$archive.tmp:$full" >/dev/null
    mv "$archive.tmp" "$archive"
  fi
  APP_ARCHIVE=$archive
  APP_IMAGE=$full
}

# ---------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------

up() {
  local t_all t build_time
  t_all=$(now)
  [[ "$(id -u)" == 0 ]] || die "must run as root (containerd, kubelet, iptables, network interfaces)"
  [[ -x "$KUBECTL" ]] || die "tools/bin/kubectl is missing: run make tools"
  local c
  for c in "${COMPONENTS[@]}"; do
    if pid_of "$c" >/dev/null; then die "$c already runs (pid $(pid_of "$c")): run 'make cluster-real-down' first"; fi
  done
  bash "$HERE/deps.sh"

  t=$(now)
  local env_file
  env_file=$(bash "$HERE/build.sh" | tail -n 1)
  # shellcheck disable=SC1090 # written by build.sh
  source "$env_file"
  BIN=$CLUSTER_REAL_BIN
  app_image
  build_time=$(elapsed "$t")
  log "build: $build_time (binaries in $BIN)"

  t=$(now)
  mkdir -p "$STATE" "$RUN" "$LOGS"
  ip netns list 2>/dev/null | awk '{print $1}' >"$STATE/netns.before" || true
  host_network_up
  log "node address $HOST on $BRIDGE ($(elapsed "$t"))"

  STACK_NAME=$STACK INSTANCES=0 LB_PORT=$((PORT_BASE + 80)) REDIS_PORT=$REDIS_PORT \
    PG_PRIMARY_PORT=$PG_PRIMARY_PORT PG_REPLICA_PORT=$PG_REPLICA_PORT \
    EXPOSE_ADDRESS=$HOST EXPOSE_CLIENTS=$CLUSTER_CIDR \
    "$NODE" "$ROOT/local/cli.ts" up | sed 's/^/  /'
  log "Redis and PostgreSQL (primary + replica) on $HOST ($(elapsed "$t"))"

  # The API server reads its kubelet client certificate at start: the node's certificates first.
  make_pki
  node_certs
  start_control_plane
  write_configs "$PAUSE_IMAGE"

  : >"$LOGS/containerd.log"
  start containerd "$(command -v containerd)" --config "$CTRD/config.toml" --log-level warn
  wait_for containerd 60 ctr --address "$SOCK" version
  import_image "$PAUSE_ARCHIVE" "$PAUSE_IMAGE"
  import_image "$COREDNS_ARCHIVE" "$COREDNS_IMAGE"
  import_image "$METRICS_SERVER_ARCHIVE" "$METRICS_SERVER_IMAGE"
  import_image "$APP_ARCHIVE" "$APP_IMAGE"
  log "containerd up, images imported ($(elapsed "$t"))"

  : >"$LOGS/kubelet.log"
  start kubelet "$BIN/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$STATE/kubelet" --cert-dir="$STATE/kubelet-pki" \
    --hostname-override="$NODE_NAME" --node-ip="$HOST" --node-labels="$NODE_LABEL=$TAG" --v=1
  wait_for kubelet 120 kc wait --for=condition=Ready --timeout=5s "node/$NODE_NAME"
  log "kubelet up, node $NODE_NAME Ready ($(elapsed "$t"))"

  : >"$LOGS/kube-proxy.log"
  start kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy.yaml" --v=1
  wait_for kube-proxy 60 curl -fsS "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
  log "kube-proxy up (iptables) ($(elapsed "$t"))"

  sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@METRICS_SERVER_IMAGE@|$METRICS_SERVER_IMAGE|g" \
    -e "s|@DNS_IP@|$DNS_IP|g" "$HERE/addons.yaml" |
    kc apply --server-side --field-manager=cluster-real -f - >/dev/null
  kc -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null ||
    die "CoreDNS did not become ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)"
  kc -n kube-system rollout status deployment/metrics-server --timeout=120s >/dev/null ||
    die "metrics-server did not become ready (kubectl -n kube-system logs deploy/metrics-server)"
  kc wait --for=condition=Available --timeout=120s apiservice/v1beta1.metrics.k8s.io >/dev/null ||
    die "metrics.k8s.io is not available"
  log "CoreDNS and metrics-server up ($(elapsed "$t"))"

  write_values
  local start_time
  start_time=$(elapsed "$t")
  cat >"$STATE/cluster.env" <<EOF
KUBECONFIG=$KUBECONFIG_FILE
CLUSTER_REAL_SERVER=https://$HOST:$API_PORT
CLUSTER_REAL_BIN=$BIN
CLUSTER_REAL_NODE=$NODE_NAME
CLUSTER_REAL_NODE_IP=$HOST
CLUSTER_REAL_SERVICE_CIDR=$SERVICE_CIDR
CLUSTER_REAL_POD_CIDR=$POD_CIDR
CLUSTER_REAL_VALUES=$STATE/values-external.yaml
CLUSTER_REAL_STACK=$STACK
CLUSTER_REAL_APP_IMAGE=$APP_IMAGE
CLUSTER_REAL_KUBERNETES_VERSION=$CLUSTER_SIM_KUBERNETES_VERSION
CLUSTER_REAL_BUILD_SECONDS=${build_time%s}
CLUSTER_REAL_START_SECONDS=${start_time%s}
EOF
  echo
  kc get nodes -o wide
  echo
  log "server: $(kc version -o json 2>/dev/null | sed -n '/serverVersion/,/}/s/.*"gitVersion": "\(.*\)".*/\1/p')"
  log "build $build_time, start $start_time, total $(elapsed "$t_all")"
  log "values for the chart (external Redis and PostgreSQL): $STATE/values-external.yaml"
  log "export KUBECONFIG=$KUBECONFIG_FILE"
}

# values-external.yaml: the chart's external-services mode pointed at the local stack. The
# chart makes the Secret from the inline passwords (the file is 0600, in a gitignored folder).
write_values() {
  local secrets="$ROOT/.local/$STACK/secrets.json" app_pw
  app_pw=$("$NODE" -p "JSON.parse(require('fs').readFileSync('$secrets','utf8')).appPassword")
  umask 077
  cat >"$STATE/values-external.yaml" <<EOF
# Written by make cluster-real-up: the chart on the real node, with Redis and PostgreSQL from
# local/ on the node's address ($HOST). Use: helm upgrade --install nodescale charts/nodescale
#   (dependencies stripped, see k8s-tests/cluster-real/README.md) -f this file.
image:
  repository: nodescale
  tag: "$APP_IMAGE_TAG"
  pullPolicy: Never
tests:
  image:
    pullPolicy: Never
postgresql:
  enabled: false
redis:
  enabled: false
externalDatabase:
  host: $HOST
  port: $PG_PRIMARY_PORT
  replicaHosts:
    - "$HOST:$PG_REPLICA_PORT"
  user: nodescale
  database: nodescale
  password: "$app_pw"
externalRedis:
  host: $HOST
  port: $REDIS_PORT
ingress:
  enabled: false
networkPolicy:
  externalCIDRs:
    - $HOST/32
EOF
}

# ---------------------------------------------------------------------------------------
# down: stop, then remove what the node made; fail when anything is left
# ---------------------------------------------------------------------------------------

# Every container of the k8s.io namespace (pods' sandboxes and containers): killed, deleted.
remove_containers() {
  [[ -S "$SOCK" ]] && pid_of containerd >/dev/null || return 0
  local id n=0
  for id in $(ctr_ tasks ls -q 2>/dev/null); do
    ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true
    ctr_ containers delete "$id" >/dev/null 2>&1 || true
    n=$((n + 1))
  done
  [[ $n -gt 0 ]] && log "removed $n containers"
  return 0
}

# The containerd shims of our socket (they outlive containerd by design).
our_shims() {
  local p
  for p in $(pgrep -f containerd-shim-runc-v2 2>/dev/null); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -F -- "-address $SOCK " >/dev/null && echo "$p"
  done
  return 0
}

kill_shims() {
  local pids
  pids=$(our_shims)
  [[ -z "$pids" ]] && return 0
  # shellcheck disable=SC2086 # a list of pids
  kill -KILL $pids 2>/dev/null || true
  log "killed $(wc -w <<<"$pids") containerd shims"
}

# Mounts under the state folder (kubelet's root bind-mounts itself; volumes, rootfs, shm),
# deepest first, and the network namespaces the pods had.
unmount_all() {
  local m n=0
  while read -r m; do
    umount -l "$m" 2>/dev/null && n=$((n + 1))
  done < <(awk -v s="$STATE" 'index($2, s) == 1 { print $2 }' /proc/self/mounts | sort -r)
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ "$ns" == cni-* ]] || continue
    grep -qx "$ns" "$STATE/netns.before" 2>/dev/null && continue
    ip netns delete "$ns" 2>/dev/null && n=$((n + 1))
  done
  [[ $n -gt 0 ]] && log "unmounted $n mounts and network namespaces"
  return 0
}

# iptables rules of kube-proxy and the kubelet (KUBE-* chains and the jumps to them), in
# iptables and ip6tables; kube-proxy --cleanup removes only its own.
iptables_cleanup() {
  [[ -n "$BIN" && -x "$BIN/kube-proxy" ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle; do
      while read -r rule; do
        # shellcheck disable=SC2086 # a rule as iptables -S prints it
        eval "$ipt -t $table ${rule/-A /-D }" 2>/dev/null || true
      done < <("$ipt" -t "$table" -S 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-')
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }'); do
        "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }'); do
        "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

leftovers() { # prints what the cluster left behind, one line each
  local c p
  for c in "${COMPONENTS[@]}"; do
    p=$(pid_of "$c" 2>/dev/null) && echo "process $c (pid $p)"
  done
  for p in $(our_shims); do echo "containerd shim pid $p"; done
  awk -v s="$STATE" 'index($2, s) == 1 { print "mount " $2 }' /proc/self/mounts
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "interface $BRIDGE"
  ip -o link show type veth 2>/dev/null | awk -F': ' '{ print "interface " $2 }' | grep -v '^interface $' || true
  local ipt table
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle; do
      "$ipt" -t "$table" -S 2>/dev/null | grep -E -- '(-N|-j) KUBE-' | sed "s/^/$ipt -t $table: /" || true
    done
  done
  return 0
}

down() {
  [[ "$(id -u)" == 0 ]] || die "must run as root"
  [[ -f "$STATE/cluster.env" ]] && BIN=$(sed -n 's/^CLUSTER_REAL_BIN=//p' "$STATE/cluster.env")
  [[ -z "$BIN" && -f "$RUN/kube-proxy.exe" ]] && BIN=$(dirname "$(readlink "/proc/$(cat "$RUN/kube-proxy.pid")/exe" 2>/dev/null || echo .)")
  stop_all kube-proxy kubelet
  remove_containers
  stop_all containerd
  kill_shims
  unmount_all
  iptables_cleanup
  host_network_down
  stop_all kube-scheduler kube-controller-manager kube-apiserver etcd
  STACK_NAME=$STACK "$NODE" "$ROOT/local/cli.ts" down | sed 's/^/  /'
  rm -rf "$STATE/etcd" "$STATE/cluster.env" "$CTRD/root" "$CTRD/state" "$STATE/kubelet" "$STATE/cni/ipam" \
    "$STATE/pod-logs"
  local left
  left=$(leftovers)
  if [[ -n "$left" ]]; then
    printf '%s\n' "$left" | sed 's/^/  left: /' >&2
    die "down left the above behind"
  fi
  log "down: no process, mount, interface or iptables rule of the cluster is left (logs kept in $LOGS)"
}

status() {
  status_of "${COMPONENTS[@]}" || return 1
  printf '  readyz: %s\n' "$(kc get --raw /readyz 2>&1)"
  kc get nodes -o wide
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
  *) die "usage: $0 up|down|status|env" ;;
esac
