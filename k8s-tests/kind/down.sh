#!/usr/bin/env bash
# `make kind-down`: deletes the kind cluster of `make kind-up` (and with it everything in it).
# Deleting a cluster that does not exist is not an error. DRY_RUN=1 prints the command.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CLUSTER=nodescale # as in k8s-tests/kind/cluster.yaml and up.sh
KIND=tools/bin/kind

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  printf '%s delete cluster --name %s\n' "$KIND" "$CLUSTER"
  exit 0
fi
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "kind-down: no Docker engine answers ('docker info' fails): there is no kind cluster to delete here" >&2
  exit 1
fi
bash tools/install.sh kind >/dev/null
started=$SECONDS
"$KIND" delete cluster --name "$CLUSTER"
echo "kind-down: cluster '$CLUSTER' deleted in $((SECONDS - started))s"
