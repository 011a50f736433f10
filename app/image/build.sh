#!/usr/bin/env bash
# Builds the app image from app/Dockerfile, unchanged: with docker where a Docker engine
# answers, otherwise with buildah (vfs storage, chroot isolation, never pulling) on top of the
# local stand-in base that app/image/base.sh assembles under the Dockerfile's FROM name.
#
#   bash app/image/build.sh                  (make image)
#   IMAGE=nodescale:dev bash app/image/build.sh
#   IMAGE_BUILDER=buildah|docker ...         force a builder
#   BASE_IMAGE=<ref> ...                     another base (buildah: must already be in its store)
#
# Behind a TLS-inspecting proxy, the CA bundle in NODE_EXTRA_CA_CERTS (or BUILD_CA_FILE) is
# handed to npm ci as the build secret `build_ca`; it is never stored in the image.
# Prints the build time and the image size.
set -euo pipefail

# shellcheck source=app/image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

builder="${IMAGE_BUILDER:-}"
if [[ -z "$builder" ]]; then
  if docker_engine_available; then builder=docker; else builder=buildah; fi
fi

revision="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ "$revision" != unknown && -n "$(git -C "$REPO_ROOT" status --porcelain -- app 2>/dev/null)" ]]; then
  revision="$revision-dirty"
fi
# The commit's time, not the wall clock: the same commit gives the same labels.
created="$(git -C "$REPO_ROOT" log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"
# A remote's address as a browsable https URL (git@host:owner/repo.git -> https://host/owner/repo).
source_url="$(git -C "$REPO_ROOT" remote get-url origin 2>/dev/null || true)"
source_url="$(printf '%s' "$source_url" | sed -E 's#^git@([^:]+):#https://\1/#; s#^ssh://git@#https://#; s#\.git$##; s#//[^/@]+@#//#')"
args=(
  --build-arg "VERSION=$APP_VERSION"
  --build-arg "SOURCE=$source_url"
  --build-arg "REVISION=$revision"
  --build-arg "CREATED=$created"
  -f "$DOCKERFILE"
  -t "$IMAGE"
)
if [[ -n "${BASE_IMAGE:-}" ]]; then args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE"); fi
ca_file="${BUILD_CA_FILE:-${NODE_EXTRA_CA_CERTS:-}}"
if [[ -n "$ca_file" ]]; then
  [[ -r "$ca_file" ]] || die "the CA bundle '$ca_file' (BUILD_CA_FILE or NODE_EXTRA_CA_CERTS) is not readable"
  args+=(--secret "id=build_ca,src=$ca_file")
fi

# With vfs every cached step is a full copy of the file system (~250 MB): keep the steps of
# this build (the cache of the next one) and remove the untagged images that earlier builds
# left on top of a base this script made (listed in $CACHE_DIR/base-layers). Images from
# anything else in the store are never touched.
prune_stale_layers() {
  local log_file="$1" keep id name first removed=0
  keep=" $(sed -n 's/^--> \([0-9a-f]\{11\}\)[0-9a-f]*$/\1/p; s/^--> Using cache \([0-9a-f]\{11\}\)[0-9a-f]*$/\1/p' "$log_file" | tr '\n' ' ') "
  [[ -s "$CACHE_DIR/base-layers" ]] || return 0
  while read -r id name; do
    [[ "$name" == "<none>:<none>" && "$keep" != *" ${id:0:11} "* ]] || continue
    first="$("${BUILDAH[@]}" inspect --type image --format '{{index .OCIv1.RootFS.DiffIDs 0}}' "$id" 2>/dev/null || true)"
    if [[ -n "$first" ]] && grep -qxF "$first" "$CACHE_DIR/base-layers"; then
      if "${BUILDAH[@]}" rmi "$id" >/dev/null 2>&1; then removed=$((removed + 1)); fi
    fi
  done < <("${BUILDAH[@]}" images --all --noheading --format '{{.ID}} {{.Name}}:{{.Tag}}')
  if [[ "$removed" -gt 0 ]]; then log "removed $removed stale cached steps of earlier builds"; fi
}

case "$builder" in
  docker)
    docker_engine_available || die "IMAGE_BUILDER=docker but 'docker info' fails: no Docker engine answers here"
    log "building $IMAGE with docker ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    started=$SECONDS
    # BuildKit (docker's default builder since 23.0) is needed for RUN --mount.
    DOCKER_BUILDKIT=1 docker build "${args[@]}" "$APP_DIR"
    elapsed=$((SECONDS - started))
    size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
    size="$((size / 1000 / 1000)) MB"
    ;;
  buildah)
    command -v buildah >/dev/null || die "no Docker engine answers ('docker info' fails) and buildah is not installed: apt-get install buildah"
    started=$SECONDS
    if [[ -z "${BASE_IMAGE:-}" ]]; then
      bash "$IMAGE_DIR/base.sh"
    fi
    base_elapsed=$((SECONDS - started))
    log "building $IMAGE with $(buildah --version | cut -d' ' -f1-3) (storage $STORAGE_DRIVER, isolation chroot, pull never)"
    build_started=$SECONDS
    # --layers keeps every step's result, so a build with the same lockfile and sources
    # reuses them; --pull=never uses exactly the base image in local storage.
    bud_log="$(mktemp)"
    trap 'rm -f "$bud_log"' EXIT
    "${BUILDAH[@]}" bud --isolation chroot --pull=never --layers --force-rm "${args[@]}" "$APP_DIR" 2>&1 | tee "$bud_log"
    elapsed=$((SECONDS - started))
    log "base step ${base_elapsed} s, Dockerfile build $((SECONDS - build_started)) s"
    if [[ "${IMAGE_KEEP_STALE_LAYERS:-0}" != 1 ]]; then prune_stale_layers "$bud_log"; fi
    size="$("${BUILDAH[@]}" images --noheading --format '{{.Size}}' "$IMAGE" | head -n 1)"
    ;;
  *) die "IMAGE_BUILDER='$builder': expected docker or buildah" ;;
esac

log "built $IMAGE with $builder in ${elapsed} s; image size ${size}"
