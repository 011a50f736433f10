#!/usr/bin/env bash
# What `make image` and `make image-test` need where no Docker engine runs: buildah (build),
# debootstrap (the local base), podman + runc (run it; runc because crun refuses hosts with
# hybrid cgroups). Installs them with apt-get as root on Debian/Ubuntu; elsewhere, or without
# root, says what to install and exits 1. With a Docker engine nothing is needed.
set -euo pipefail

# shellcheck source=app/image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if docker_engine_available; then
  log "a Docker engine answers: nothing else is needed"
  exit 0
fi
packages=(buildah debootstrap podman runc)
missing=()
for p in "${packages[@]}"; do
  command -v "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "present: ${packages[*]}"
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  die "missing: ${missing[*]}; install them as root (Debian/Ubuntu: apt-get install ${missing[*]})"
fi
log "apt-get install ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
log "installed: ${missing[*]}"
