#!/usr/bin/env bash
# What `make cluster-real-up` needs from the machine, beyond Go and the repository's own
# tools: containerd, runc and the CNI plugins (Debian's packages run Kubernetes pods here, see
# README.md), iptables and conntrack (kube-proxy), iproute2 (the node's bridge), buildah (the
# images), gcc with a static libc (the pause binary), openssl and curl (certificates, health).
# As root on Debian/Ubuntu it installs what is missing with apt-get; elsewhere it names the
# packages and exits 1. Nothing here starts a service: cluster-real.sh runs its own processes.
set -euo pipefail

log() { printf '[cluster-real deps] %s\n' "$*"; }
die() {
  printf '[cluster-real deps] ERROR: %s\n' "$*" >&2
  exit 1
}

# command-or-file -> Debian package
declare -A NEED=(
  [containerd]=containerd
  [runc]=runc
  [ctr]=containerd
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [/usr/lib/cni/host-local]=containernetworking-plugins
  [/usr/lib/cni/loopback]=containernetworking-plugins
  [iptables]=iptables
  [ip6tables]=iptables
  [conntrack]=conntrack
  [ip]=iproute2
  [buildah]=buildah
  [gcc]=gcc
  [/usr/lib/x86_64-linux-gnu/libc.a]=libc6-dev
  [openssl]=openssl
  [curl]=curl
)
missing=()
for what in "${!NEED[@]}"; do
  if [[ "$what" == /* ]]; then [[ -e "$what" ]] && continue; else command -v "$what" >/dev/null 2>&1 && continue; fi
  missing+=("${NEED[$what]}")
done
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
if [[ ${#missing[@]} -eq 0 ]]; then
  log "present: containerd $(containerd --version | awk '{print $3}'), runc, CNI plugins, iptables, buildah, gcc"
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  die "missing: ${missing[*]} (Debian/Ubuntu, as root: apt-get install ${missing[*]})"
fi
log "apt-get install ${missing[*]}"
# Keep the packages' own services from starting: the cluster runs its own containerd.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
fi
status=0
apt-get update -qq || status=$?
if [[ $status == 0 ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null || status=$?
fi
[[ -n "$made_policy" ]] && rm -f "$policy"
[[ $status == 0 ]] || die "apt-get failed (exit $status)"
log "installed: ${missing[*]}"
