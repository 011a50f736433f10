# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables here are used by the scripts that source this file
# Shared by app/image/*.sh: where things are, which image names the Dockerfile uses, and how
# buildah/podman are called on a machine without a Docker engine. Sourced, never run.

IMAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APP_DIR="$(cd "$IMAGE_DIR/.." && pwd)"
REPO_ROOT="$(cd "$APP_DIR/.." && pwd)"
DOCKERFILE="$APP_DIR/Dockerfile"

# Outside the repository: the debootstrapped root filesystem and the npm tarballs survive
# `git clean` and are never committed.
CACHE_DIR="${NODESCALE_IMAGE_CACHE:-/var/cache/nodescale}"

# vfs works everywhere (no overlay mounts inside this sandbox); chroot isolation needs no
# user namespaces or runc features beyond what buildah itself does.
STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
BUILDAH=(buildah --storage-driver "$STORAGE_DRIVER")

APP_VERSION="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$APP_DIR/package.json" | head -n 1)"
# The tag the chart expects by default (image.repository nodescale, tag = appVersion).
IMAGE="${IMAGE:-nodescale:$APP_VERSION}"

log() { printf '[image] %s\n' "$*" >&2; }
die() {
  printf '[image] FAILED: %s\n' "$*" >&2
  exit 1
}

# The base image named by the Dockerfile's `ARG BASE_IMAGE=...` default: the build must use
# exactly that name, so it is read from the Dockerfile rather than repeated here.
dockerfile_base_image() {
  local value
  value="$(sed -n 's/^ARG BASE_IMAGE=\(.*\)$/\1/p' "$DOCKERFILE" | head -n 1)"
  [[ -n "$value" ]] || die "no 'ARG BASE_IMAGE=<default>' line in $DOCKERFILE"
  printf '%s\n' "$value"
}

# node:24.21.0-bookworm-slim -> docker.io/library/node:24.21.0-bookworm-slim, the name Docker
# (and buildah's short-name resolution) gives it.
fully_qualified() {
  local name="$1" first="${1%%/*}"
  if [[ "$name" != */* ]]; then
    name="docker.io/library/$name"
  elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
    name="docker.io/$name"
  fi
  printf '%s\n' "$name"
}

# The Node version the repository pins (root package.json devDependencies.node).
pinned_node_version() {
  sed -n 's/^    "node": "\([0-9.]*\)",\{0,1\}$/\1/p' "$REPO_ROOT/package.json" | head -n 1
}

docker_engine_available() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

have_image() {
  "${BUILDAH[@]}" inspect --type image "$1" >/dev/null 2>&1
}
