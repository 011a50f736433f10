#!/usr/bin/env bash
# Runs the simulated-cluster tests (`make cluster-sim-test`): starts the cluster when none
# runs (and stops it afterwards: only what this script started), then the chart tests and
# the HPA test on Node's test runner, one file at a time (they share one control plane on a
# 2-core machine). Prints the build, start and test times.
#
# Usage: bash k8s-tests/cluster-sim/test.sh [TEST_FILE...]   (default: every *.test.ts here)
# Env:   CLUSTER_SIM_KEEP=1 leaves a cluster this script started running afterwards.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || NODE=$(command -v node)
STATE=${CLUSTER_SIM_STATE:-$ROOT/.local/cluster-sim}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0fs", b - a }'; }

# shellcheck source=../lib/test-cluster.sh
source "$ROOT/k8s-tests/lib/test-cluster.sh"
use_or_start_cluster "$HERE/cluster-sim.sh" "${CLUSTER_SIM_KEEP:-0}"

files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  files=("$HERE/chart.test.ts" "$HERE/hpa.test.ts")
fi
t=$(now)
rc=0
"$NODE" --test --test-reporter=spec --test-concurrency=1 "${files[@]}" || rc=$?
# shellcheck disable=SC1091 # written by cluster-sim.sh up
echo "[cluster-sim] tests: $(elapsed "$t")$(
  [[ -f "$STATE/cluster.env" ]] && . "$STATE/cluster.env" &&
    printf ' (cluster build %ss, start %ss)' "${CLUSTER_SIM_BUILD_SECONDS:-?}" "${CLUSTER_SIM_START_SECONDS:-?}"
)"
exit $rc
