#!/usr/bin/env bash
# `make cluster-real-test`: the chart on real pods. Starts the real-node cluster when none runs
# (and stops it afterwards: only what this script started), then, one file at a time:
#   install.test.ts        first-install, both secret paths, exactly as kind-up runs helm
#   ../e2e.test.ts         the e2e suite through the Service: pods-ready, session-across-pods,
#                          replica-reads, helm-test, rolling-upgrade-no-loss,
#                          pod-delete-no-loss, hpa-burst (reachable-through-ingress is skipped,
#                          saying why: no ingress controller image can be had here)
#   pod-contract.test.ts   uid, read-only root, no token, the migration as declared
#   readiness.test.ts      readiness-saturated-pool, metrics-port
#   faults.test.ts         redis-outage
# Prints the build, start and test times; results (JSON, the HPA chart as SVG) land in
# k8s-tests/results/.
#
# Usage: bash k8s-tests/cluster-real/test.sh [TEST_FILE...]
# Env:   CLUSTER_REAL_KEEP=1 leaves a cluster this script started running afterwards.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || NODE=$(command -v node)
STATE=${CLUSTER_REAL_STATE:-$ROOT/.local/cluster-real}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0fs", b - a }'; }
log() { printf '[cluster-real test] %s\n' "$*"; }

# shellcheck source=../lib/test-cluster.sh
source "$ROOT/k8s-tests/lib/test-cluster.sh"
use_or_start_cluster "$HERE/cluster-real.sh" "${CLUSTER_REAL_KEEP:-0}"

# shellcheck disable=SC1091 # written by cluster-real.sh up
source "$STATE/cluster.env"
export KUBECONFIG CLUSTER_REAL_STATE=$STATE

files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=(install e2e pod-contract readiness faults)
rc=0
t_all=$(now)
for f in "${files[@]}"; do
  t=$(now)
  case $f in
    e2e | */e2e.test.ts)
      # The front door is the release's Service, through kube-proxy; upgrades use the chart
      # without its Bitnami dependencies (they cannot be pulled here).
      url=$("$ROOT/tools/bin/kubectl" -n nodescale get service nodescale \
        -o 'jsonpath=http://{.spec.clusterIP}:{.spec.ports[?(@.name=="http")].port}')
      chart=$(mktemp -d)
      "$NODE" --input-type=module -e \
        'const l = await import(process.argv[1]); console.log(l.strippedChart().dir)' \
        "$ROOT/k8s-tests/cluster-sim/lib.ts" >"$chart/path"
      log "e2e through $url"
      E2E_URL=$url E2E_CHART=$(cat "$chart/path") E2E_SKIP_UNSUPPORTED=cluster-real \
        "$NODE" --test --test-reporter=spec --test-concurrency=1 --test-timeout=1800000 \
        "$ROOT/k8s-tests/e2e.test.ts" || rc=1
      rm -rf "$(dirname "$(cat "$chart/path")")" "$chart"
      ;;
    *)
      file=$f
      [[ -f "$file" ]] || file="$HERE/$f.test.ts"
      "$NODE" --test --test-reporter=spec --test-concurrency=1 --test-timeout=1800000 "$file" || rc=1
      ;;
  esac
  log "$f: $(elapsed "$t")"
done
log "tests: $(elapsed "$t_all") (cluster build ${CLUSTER_REAL_BUILD_SECONDS:-?}s, start ${CLUSTER_REAL_START_SECONDS:-?}s)"
exit $rc
