#!/usr/bin/env bash
# The chart's dependencies for `make kind-up`, fetched once: when CHART/charts/ already holds
# every dependency at the version Chart.yaml pins (`helm dependency list` says ok), nothing is
# fetched, so a re-run needs no registry. Otherwise `helm dependency build` pulls them (with no
# Chart.lock it resolves Chart.yaml's exact versions, as `dependency update` would). Both what
# it downloads (CHART/charts/*.tgz) and the Chart.lock it writes are gitignored: the tree stays
# clean. (No Chart.lock is committed: the versions are exact pins in Chart.yaml, and a lock
# can only be generated where the Bitnami registry is reachable.)
#
# Usage: bash k8s-tests/kind/chart-deps.sh HELM CHART
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: chart-deps.sh HELM CHART" >&2; exit 2; }
helm=$1 chart=$2
[[ -f "$chart/Chart.yaml" ]] || { echo "chart-deps: $chart/Chart.yaml not found" >&2; exit 2; }

list=$("$helm" dependency list "$chart")
# NAME VERSION REPOSITORY STATUS, tab-separated; STATUS "ok" when charts/ holds it at VERSION.
not_ok=$(printf '%s\n' "$list" | awk -F'\t' 'NR > 1 && NF >= 4 { s = $NF; gsub(/ /, "", s); if (s != "ok") printf "%s%s (%s)", (n++ ? ", " : ""), $1, s }' | tr -s ' ')
if [[ -z "$not_ok" ]]; then
  echo "chart-deps: every dependency of $chart is in $chart/charts at its version: nothing to fetch"
  exit 0
fi
echo "chart-deps: fetching $not_ok into $chart/charts"
"$helm" dependency build "$chart"
