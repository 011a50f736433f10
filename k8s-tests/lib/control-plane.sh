# shellcheck shell=bash
# The Kubernetes control plane both local clusters run as processes of their own (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler), and the process and certificate
# helpers they share. Sourced by k8s-tests/cluster-sim/cluster-sim.sh (kwok nodes) and
# k8s-tests/cluster-real/cluster-real.sh (a real node); never run.
#
# The sourcing script sets, before calling anything here:
#   TAG           log prefix ("cluster-sim")
#   STATE         state folder; PKI, RUN and LOGS are derived from it
#   BIN           folder of the control plane binaries (k8s-tests/cluster-sim/build.sh)
#   HOST          address every control plane component binds to
#   PORT_BASE     etcd +79/+80, apiserver +443, controller-manager +257, scheduler +259
#   SERVICE_CIDR  the Services' range; its first address is the `kubernetes` Service
#   KUBECTL       kubectl binary
# and may set APISERVER_EXTRA_ARGS (array) and APISERVER_EXTRA_SANS ("IP:x,DNS:y").

PKI="$STATE/pki"
RUN="$STATE/run"
LOGS="$STATE/logs"
KUBECONFIG_FILE="$STATE/kubeconfig"
ETCD_PORT=$((PORT_BASE + 79))
ETCD_PEER_PORT=$((PORT_BASE + 80))
API_PORT=$((PORT_BASE + 443))
KCM_PORT=$((PORT_BASE + 257))
SCHED_PORT=$((PORT_BASE + 259))
APISERVER_EXTRA_ARGS=("${APISERVER_EXTRA_ARGS[@]}")
APISERVER_EXTRA_SANS=${APISERVER_EXTRA_SANS:-}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[%s] %s\n' "$TAG" "$*"; }
die() {
  printf '[%s] ERROR: %s\n' "$TAG" "$*" >&2
  exit 1
}
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# The first address of a CIDR (10.96.0.0/16 -> 10.96.0.1): the `kubernetes` Service.
first_service_ip() {
  local net=${SERVICE_CIDR%/*}
  awk -F. '{ printf "%d.%d.%d.%d", $1, $2, $3, $4 + 1 }' <<<"$net"
}

# ---------------------------------------------------------------------------------------
# processes: one pid file per component; a pid counts only while /proc/<pid>/exe is the
# binary it was started from, so a recycled pid is never signalled
# ---------------------------------------------------------------------------------------

pid_of() { # pid_of NAME: prints the pid when NAME runs (started by us), else fails
  local f="$RUN/$1.pid" pid exe want
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f")
  want=$(cat "$RUN/$1.exe" 2>/dev/null || echo "$1")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ "$(basename "${exe% (deleted)}")" == "$want" ]] || return 1
  echo "$pid"
}

start() { # start NAME BINARY ARGS...: runs BINARY in the background, logs to $LOGS/NAME.log
  local name=$1 binary=$2
  shift 2
  if pid_of "$name" >/dev/null; then die "$name already runs (pid $(pid_of "$name")): run down first"; fi
  mkdir -p "$RUN" "$LOGS"
  # setsid: its own session, so the caller's terminal signals do not reach it; down stops it.
  setsid "$binary" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  basename "$binary" >"$RUN/$name.exe"
}

stop() { # stop NAME: TERM, then KILL after 15 s, only the pid we recorded
  local name=$1 pid i
  pid=$(pid_of "$name") || {
    rm -f "$RUN/$name.pid" "$RUN/$name.exe"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored TERM for 15 s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid" "$RUN/$name.exe"
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

# make_pki: the CAs, the control plane's certificates and the service-account key pair, once
# per state folder (the cluster-specific client certificates are the caller's, with cert).
make_pki() {
  [[ -f "$PKI/.done" ]] && return
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  rm -rf "$PKI" && mkdir -p "$PKI" && chmod 700 "$PKI"
  ca ca "nodescale-$TAG-ca"
  ca front-proxy-ca "nodescale-$TAG-front-proxy-ca"
  local sans
  sans="IP:$HOST,IP:$(first_service_ip),DNS:localhost,DNS:kubernetes,DNS:kubernetes.default"
  sans+=",DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  [[ -n "$APISERVER_EXTRA_SANS" ]] && sans+=",$APISERVER_EXTRA_SANS"
  cert ca apiserver "/CN=kube-apiserver" "$sans"
  cert ca admin "/O=system:masters/CN=$TAG-admin"
  cert ca controller-manager "/CN=system:kube-controller-manager"
  cert ca scheduler "/CN=system:kube-scheduler"
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
- name: $TAG
  cluster:
    server: https://$HOST:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: $TAG
  context: {cluster: $TAG, user: $2}
current-context: $TAG
EOF
}

# ---------------------------------------------------------------------------------------
# the control plane
# ---------------------------------------------------------------------------------------

# start_control_plane: a fresh etcd (its data wiped), the API server, the controller manager
# and the scheduler, each waited for; the admin kubeconfig at $KUBECONFIG_FILE.
start_control_plane() {
  local t
  t=$(now)
  mkdir -p "$STATE" "$RUN" "$LOGS"
  rm -rf "$STATE/etcd" "$STATE/kube-controller-manager" "$STATE/kube-scheduler"
  local c
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do : >"$LOGS/$c.log"; done
  make_pki
  local who
  for who in admin controller-manager scheduler; do kubeconfig "$STATE/$who.kubeconfig" "$who"; done
  cp "$STATE/admin.kubeconfig" "$KUBECONFIG_FILE"

  start etcd "$BIN/etcd" --name="$TAG" --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="$TAG=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls="" --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) \
    --auto-compaction-retention=1 --unsafe-no-fsync=true --log-level=warn
  wait_for etcd 60 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
  log "etcd up ($(elapsed "$t"))"

  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
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
    --profiling=false \
    "${APISERVER_EXTRA_ARGS[@]}"
  wait_for kube-apiserver 120 kc get --raw /readyz
  log "kube-apiserver up on https://$HOST:$API_PORT ($(elapsed "$t"))"

  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$STATE/kube-controller-manager" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics \
    --profiling=false
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --cert-dir="$STATE/kube-scheduler" \
    --leader-elect=false \
    --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics \
    --profiling=false
  wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"
  log "kube-controller-manager and kube-scheduler up ($(elapsed "$t"))"
}

# stop_all NAME...: stops each, in the order given
stop_all() {
  local c
  for c in "$@"; do
    [[ -f "$RUN/$c.pid" ]] && stop "$c"
  done
  return 0
}

# status_of NAME...: one line each; fails when any is not running
status_of() {
  local c pid rc=0
  for c in "$@"; do
    if pid=$(pid_of "$c"); then
      printf '  %-24s running (pid %s)\n' "$c" "$pid"
    else
      printf '  %-24s stopped\n' "$c"
      rc=1
    fi
  done
  return $rc
}
