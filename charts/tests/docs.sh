#!/usr/bin/env bash
# Regenerates the "Parameters" table of charts/nodescale/README.md from the `## @param`
# comments of values.yaml, with the pinned @bitnami/readme-generator-for-helm
# (tools/bin/readme-generator, installed by `make tools`). The generator also fails when a
# value in values.yaml has no `@param` comment.
#
# Usage: bash charts/tests/docs.sh          rewrite README.md (`make chart-docs`)
#        bash charts/tests/docs.sh --check  fail when README.md is stale (run by run.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHART="$ROOT/charts/nodescale"
GEN="$ROOT/tools/bin/readme-generator"
[[ -x "$GEN" ]] || { echo "tools/bin/readme-generator is missing: run make tools" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$CHART/README.md" "$tmp/README.md"
if ! "$GEN" --values "$CHART/values.yaml" --readme "$tmp/README.md" >"$tmp/log" 2>&1; then
  grep -vE '^Skipping check for|^INFO:' "$tmp/log" >&2
  exit 1
fi

if [[ "${1:-}" == "--check" ]]; then
  if ! diff -u "$CHART/README.md" "$tmp/README.md"; then
    echo "charts/nodescale/README.md is stale: run make chart-docs" >&2
    exit 1
  fi
  echo "charts/nodescale/README.md is up to date"
else
  if cmp -s "$CHART/README.md" "$tmp/README.md"; then
    echo "charts/nodescale/README.md: parameter table already up to date"
  else
    cp "$tmp/README.md" "$CHART/README.md"
    echo "charts/nodescale/README.md: parameter table regenerated"
  fi
fi
