#!/usr/bin/env bash
# Builds what the real-node cluster runs beyond the simulated cluster's control plane, once,
# into the same cache (k8s-tests/cluster-sim/build.sh; CLUSTER_SIM_CACHE):
#   kubernetes-<v>/{kubelet,kube-proxy}   from the same prepared k8s.io/kubernetes source
#   coredns-<v>/coredns                   go install github.com/coredns/coredns@<v>
#   pause-<hash>/pause                    pause.c beside this script, gcc -static
#   images/<name>-<tag>.tar               docker-archive images made with buildah FROM scratch:
#                                         pause, coredns, metrics-server (one static binary each)
# Nothing is pulled: every image is assembled here from a binary built here.
#
# Usage: bash k8s-tests/cluster-real/build.sh   the last line is an env file to source
#        (CLUSTER_REAL_BIN, CLUSTER_REAL_IMAGES and one *_IMAGE name per image)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../tools/versions.env
source "$ROOT/tools/versions.env"

CACHE_ROOT=${CLUSTER_SIM_CACHE:-$HOME/.cache/nodescale/cluster-sim}
C="$CACHE_ROOT/$(go env GOOS)-$(go env GOARCH)"
COREDNS_V=$CLUSTER_REAL_COREDNS_VERSION
MS_V=$METRICS_SERVER_VERSION
P=${CLUSTER_SIM_GO_P:-2}
BUILDAH=(buildah --storage-driver "${STORAGE_DRIVER:-vfs}")

export CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS="-trimpath -buildvcs=false" GOWORK=off

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0fs", b - a }'; }
log() { printf '[cluster-real build] %s\n' "$*" >&2; }
die() {
  printf '[cluster-real build] ERROR: %s\n' "$*" >&2
  exit 1
}
quiet_go() { "$@" 2> >(grep -vE '^go: (downloading|added|upgraded|finding)' >&2); }

for cmd in go gcc buildah; do
  command -v "$cmd" >/dev/null || die "$cmd is needed: make cluster-real-deps installs what is missing"
done

total=$(now)
# The control plane, kubelet and kube-proxy: one build of one source (its log on stderr, the
# binaries' folder as its last line). Never `tee /dev/stderr`: where stderr is a file (a CI
# log), opening it again truncates everything written before.
BIN=$(bash "$ROOT/k8s-tests/cluster-sim/build.sh" --node | tail -n 1)
[[ -x "$BIN/kubelet" && -x "$BIN/kube-proxy" ]] || die "kubelet or kube-proxy missing from $BIN"

# --- CoreDNS: its module has no replace directives, so go install works as it is ----------
COREDNS_DIR="$C/coredns-$COREDNS_V"
if [[ ! -x "$COREDNS_DIR/coredns" ]]; then
  t=$(now)
  log "building coredns $COREDNS_V (go install -p $P)..."
  mkdir -p "$COREDNS_DIR"
  tmp=$(mktemp -d "$COREDNS_DIR/gobin.XXXXXX")
  GOBIN="$tmp" quiet_go go install -p "$P" -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_V"
  mv -f "$tmp/coredns" "$COREDNS_DIR/coredns" && rm -rf "$tmp"
  log "coredns $COREDNS_V built in $(elapsed "$t")"
else
  log "coredns $COREDNS_V: already built"
fi

# --- pause: ours, static, named by the hash of its source --------------------------------
PAUSE_TAG=$(sha256sum "$HERE/pause.c" | cut -c1-12)
PAUSE_DIR="$C/pause-$PAUSE_TAG"
if [[ ! -x "$PAUSE_DIR/pause" ]]; then
  mkdir -p "$PAUSE_DIR"
  gcc -static -O2 -Wall -Werror -o "$PAUSE_DIR/pause.tmp" "$HERE/pause.c" || die "gcc -static failed (Debian: libc6-dev)"
  strip "$PAUSE_DIR/pause.tmp" 2>/dev/null || true
  mv -f "$PAUSE_DIR/pause.tmp" "$PAUSE_DIR/pause"
  log "pause $PAUSE_TAG built"
fi

# --- images: FROM scratch, one binary, a numeric non-root user ---------------------------
IMAGES="$C/images"
mkdir -p "$IMAGES"
# image NAME TAG BINARY UID: writes $IMAGES/NAME-TAG.tar (docker-archive, named
# docker.io/nodescale/NAME:TAG) unless it exists; the binary is /NAME, the entrypoint.
image() {
  local name=$1 binary=$3 uid=$4 ref="docker.io/nodescale/$1:$2" out="$IMAGES/$1-$2.tar" ctr
  if [[ -s "$out" ]]; then
    log "image $ref: already built"
    return
  fi
  ctr=$("${BUILDAH[@]}" from --quiet scratch)
  "${BUILDAH[@]}" copy --quiet --chmod 0555 "$ctr" "$binary" "/$name" >/dev/null
  "${BUILDAH[@]}" config --entrypoint "[\"/$name\"]" --cmd "" --user "$uid:$uid" \
    --os linux --arch amd64 --label "dev.nodescale.built-by=k8s-tests/cluster-real/build.sh" "$ctr"
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$ref" >/dev/null
  rm -f "$out.tmp"
  "${BUILDAH[@]}" push --quiet "$ref" "docker-archive:$out.tmp:$ref" >/dev/null
  mv -f "$out.tmp" "$out"
  "${BUILDAH[@]}" rmi "$ref" >/dev/null 2>&1 || true
  log "image $ref: $(du -h "$out" | cut -f1)"
}
# 65535 is the uid the upstream pause image runs as; 65532 and 65534 are CoreDNS's and
# metrics-server's (distroless nonroot and nobody).
image pause "$PAUSE_TAG" "$PAUSE_DIR/pause" 65535
image coredns "$COREDNS_V" "$COREDNS_DIR/coredns" 65532
image metrics-server "$MS_V" "$BIN/metrics-server" 65534

log "all built in $(elapsed "$total")"
ENV_FILE="$C/cluster-real.env"
cat >"$ENV_FILE" <<EOF
CLUSTER_REAL_BIN=$BIN
CLUSTER_REAL_IMAGES=$IMAGES
PAUSE_IMAGE=docker.io/nodescale/pause:$PAUSE_TAG
PAUSE_ARCHIVE=$IMAGES/pause-$PAUSE_TAG.tar
COREDNS_IMAGE=docker.io/nodescale/coredns:$COREDNS_V
COREDNS_ARCHIVE=$IMAGES/coredns-$COREDNS_V.tar
METRICS_SERVER_IMAGE=docker.io/nodescale/metrics-server:$MS_V
METRICS_SERVER_ARCHIVE=$IMAGES/metrics-server-$MS_V.tar
EOF
echo "$ENV_FILE"
