#!/usr/bin/env bash
# Checks the image that app/image/build.sh built (make image-test):
#   static   its configuration (numeric non-root user, node as the entrypoint, NODE_ENV, port,
#            OCI labels) and its files (only dist/, migrations/, production node_modules and
#            package.json under /app, owned by root; no dev dependency; no npm, yarn, corepack,
#            TypeScript or compiler anywhere); prints its size;
#   runtime  runs it (docker, or podman on buildah's store) against Redis and PostgreSQL from
#            the local topology: app/image/runtime-check.ts.
#
#   IMAGE=nodescale:0.1.0          the image (default: nodescale:<app/package.json version>)
#   IMAGE_TEST_ALLOW_SKIP=runtime  when no container runner works here, report it and pass;
#                                  without it, that is a failure
#   SHUTDOWN_DRAIN_MS=2000         the drain window the SIGTERM check uses
#   IMAGE_TEST_RUNNER=none         do not run the image (to see the static checks and the skip path)
# Every failure names the command that failed and why; nothing is skipped silently.
set -euo pipefail

# shellcheck source=app/image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

failures=0
skipped=()
pass() { printf 'ok - %s\n' "$1"; }
fail() {
  printf 'not ok - %s\n' "$1"
  if [[ -n "${2:-}" ]]; then printf '%s\n' "$2" | sed 's/^/    /'; fi
  failures=$((failures + 1))
}
expect() { # condition-exit-code description details
  if [[ "$1" == 0 ]]; then pass "$2"; else fail "$2" "${3:-}"; fi
}
allow_skip() { [[ ",${IMAGE_TEST_ALLOW_SKIP:-}," == *",$1,"* ]]; }

# Node for the checks' helpers: the machine's if it is 24+, else the pinned one in node_modules.
NODE=node
if [[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 24 ]]; then
  NODE="$REPO_ROOT/node_modules/.bin/node"
  [[ -x "$NODE" ]] || die "Node 24 is needed for the checks: the machine's node is older and $NODE is missing (make node-deps)"
fi

# ---- find the image ------------------------------------------------------------------------
work="$(mktemp -d)"
ctr=""
cleanup() {
  if [[ -n "$ctr" ]]; then
    if [[ "$mode" == buildah ]]; then
      "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true
    else
      docker rm -f "$ctr" >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$work"
}
mode=""
trap cleanup EXIT

if docker_engine_available && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  mode=docker
  image_ref="$IMAGE"
  docker image inspect "$IMAGE" >"$work/config.json"
  image_bytes="$(($(docker image inspect --format '{{.Size}}' "$IMAGE") / 1000 / 1000)) MB"
  ctr="$(docker create "$IMAGE")"
  rootfs="$work/rootfs"
  mkdir -p "$rootfs"
  docker export "$ctr" | tar -C "$rootfs" -xf -
elif command -v buildah >/dev/null && have_image "$IMAGE"; then
  mode=buildah
  image_ref="$("${BUILDAH[@]}" images --noheading --format '{{.Name}}:{{.Tag}}' "$IMAGE" | head -n 1)"
  "${BUILDAH[@]}" inspect --type image "$IMAGE" >"$work/config.json"
  image_bytes="$("${BUILDAH[@]}" images --noheading --format '{{.Size}}' "$IMAGE" | head -n 1)"
  ctr="$("${BUILDAH[@]}" from --quiet --pull=never "$IMAGE")"
  rootfs="$("${BUILDAH[@]}" mount "$ctr")"
else
  die "image $IMAGE not found (docker: $(docker_engine_available && echo 'engine answers' || echo 'no engine'); buildah: $(command -v buildah >/dev/null && echo 'not in its store' || echo 'not installed')): run 'make image' first"
fi
echo "# image $image_ref ($mode), size $image_bytes"

# ---- static: configuration -------------------------------------------------------------------
base_default="$(dockerfile_base_image)"
config_report="$("$NODE" - "$work/config.json" "$APP_VERSION" "$base_default" <<'EOF'
const [file, version, base] = process.argv.slice(2);
// docker image inspect: [{ Config }]; buildah inspect: { OCIv1: { config } }.
const raw = JSON.parse(require("node:fs").readFileSync(file, "utf8"));
const c = (Array.isArray(raw) ? raw[0]?.Config : raw.OCIv1?.config) ?? {};
const labels = c.Labels ?? {};
const env = Object.fromEntries((c.Env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const out = (ok, what, detail) => console.log(`${ok ? 0 : 1}\t${what}\t${ok ? "" : detail}`);
out(/^[1-9]\d*:[1-9]\d*$/.test(c.User ?? "") && c.User === "10001:10001", `USER is numeric and non-root (${c.User})`, `expected 10001:10001, got ${JSON.stringify(c.User)}`);
out(eq(c.Entrypoint, ["node"]) && eq(c.Cmd, ["dist/main.js"]), `node is started directly: ENTRYPOINT ${JSON.stringify(c.Entrypoint)} CMD ${JSON.stringify(c.Cmd)}`, "expected [\"node\"] [\"dist/main.js\"] (no shell, no entrypoint script)");
out(c.WorkingDir === "/app", "WORKDIR /app (the chart's workingDir)", `got ${c.WorkingDir}`);
out(env.NODE_ENV === "production", "NODE_ENV=production", `env: ${JSON.stringify(env)}`);
out(Object.keys(c.ExposedPorts ?? {}).includes("3000/tcp"), "EXPOSE 3000", JSON.stringify(c.ExposedPorts));
const required = ["title", "description", "version", "revision", "created", "base.name"].map((k) => `org.opencontainers.image.${k}`);
const missing = required.filter((k) => !labels[k]);
out(missing.length === 0 && labels["org.opencontainers.image.version"] === version, `OCI labels (version ${labels["org.opencontainers.image.version"]}, revision ${labels["org.opencontainers.image.revision"]}, base ${labels["org.opencontainers.image.base.name"]})`, `missing or wrong: ${missing.join(", ")}; version ${labels["org.opencontainers.image.version"]} (want ${version})`);
if (labels["org.opencontainers.image.base.name"] !== base) console.log(`# note: built on ${labels["org.opencontainers.image.base.name"]}, not the Dockerfile's default ${base}`);
console.log(`#PATH\t${env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}`);
EOF
)"
image_path=""
while IFS=$'\t' read -r status what detail; do
  case "$status" in
    "#PATH") image_path="$what" ;;
    "#"*) printf '%s\n' "$status" ;;
    *) expect "$status" "$what" "$detail" ;;
  esac
done <<<"$config_report"

# ---- static: files -----------------------------------------------------------------------------
app="$rootfs/app"
entries="$(cd "$app" && find . -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')"
s=0
[[ "$entries" == "dist migrations node_modules package.json " ]] || s=1
expect "$s" "/app holds only dist, migrations, node_modules, package.json" "found: $entries"

s=0
[[ -f "$app/dist/main.js" && -f "$app/dist/work/worker.js" && -f "$app/dist/db/migrate.js" ]] || s=1
expect "$s" "the compiled app is there (dist/main.js, dist/work/worker.js, dist/db/migrate.js)"

s=0
diff -r "$APP_DIR/migrations" "$app/migrations" >"$work/migrations.diff" 2>&1 || s=1
expect "$s" "migrations/ is app/migrations, at ../../migrations from dist/db/migrate.js" "$(head -n 20 "$work/migrations.diff")"

s=0
cmp -s "$APP_DIR/package.json" "$app/package.json" || s=1
expect "$s" "package.json is app/package.json" "it differs (an image built from an older checkout?)"

owned="$(find "$app" \( -uid 10001 -o -gid 10001 -o \( -perm -o+w ! -type l \) \) -printf '%P\n' | head -n 5)"
s=0
[[ -z "$owned" ]] || s=1
expect "$s" "the app's files are root-owned and not world-writable (the app cannot change its own code)" "$owned"

s=0
grep -q '^app:x:10001:10001:' "$rootfs/etc/passwd" || s=1
expect "$s" "/etc/passwd names uid 10001 (app, no login shell)" "$(grep 10001 "$rootfs/etc/passwd" || echo 'no entry for 10001')"

deps_report="$("$NODE" - "$APP_DIR/package-lock.json" "$app/node_modules/.package-lock.json" "$APP_DIR/package.json" <<'EOF'
const fs = require("node:fs");
const [lockFile, installedFile, pkgFile] = process.argv.slice(2);
const lock = JSON.parse(fs.readFileSync(lockFile, "utf8")).packages;
let installed;
try { installed = JSON.parse(fs.readFileSync(installedFile, "utf8")).packages; }
catch (e) { console.log(`1\tnode_modules/.package-lock.json is readable\t${e.message}`); process.exit(0); }
const paths = Object.keys(installed);
const dev = paths.filter((p) => lock[p]?.dev === true || installed[p]?.dev === true);
const unknown = paths.filter((p) => !(p in lock));
const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8"));
const direct = Object.keys(pkg.dependencies ?? {});
const absent = direct.filter((d) => !paths.includes(`node_modules/${d}`));
console.log(`${dev.length === 0 ? 0 : 1}\tno dev dependency in node_modules (${paths.length} packages, all production per package-lock.json)\tdev packages: ${dev.join(", ")}`);
console.log(`${unknown.length === 0 ? 0 : 1}\tevery installed package is in the lockfile\tnot in app/package-lock.json: ${unknown.join(", ")}`);
console.log(`${absent.length === 0 ? 0 : 1}\tevery production dependency is installed (${direct.join(", ")})\tmissing: ${absent.join(", ")}`);
EOF
)"
while IFS=$'\t' read -r status what detail; do expect "$status" "$what" "$detail"; done <<<"$deps_report"

devnames="$("$NODE" -p 'Object.keys(require(process.argv[1]).devDependencies ?? {}).join(" ")' "$APP_DIR/package.json")"
present=""
for name in $devnames; do
  if [[ -e "$app/node_modules/$name" ]]; then present+="$name "; fi
done
dev_dirs="$(find "$app/node_modules" -type d \( -name typescript -o -name '@types' -o -name '@typescript' \) -printf '%P\n' | head -n 5)"
s=0
[[ -z "$present" && -z "$dev_dirs" ]] || s=1
expect "$s" "none of app/package.json's devDependencies ($devnames) nor any typescript/@types folder" "present: $present $dev_dirs"

tools=(npm npx corepack yarn yarnpkg pnpm tsc tsgo node-gyp gcc cc c++ g++ clang make python3)
found=""
IFS=: read -r -a path_dirs <<<"$image_path"
for dir in "${path_dirs[@]}"; do
  for tool in "${tools[@]}"; do
    if [[ -e "$rootfs$dir/$tool" || -L "$rootfs$dir/$tool" ]]; then found+="$dir/$tool "; fi
  done
done
s=0
[[ -z "$found" ]] || s=1
expect "$s" "no ${tools[*]} on the image's PATH" "found: $found"

leftovers="$(find "$rootfs" -xdev \( -path "$rootfs/proc" -o -path "$rootfs/sys" \) -prune -o \
  \( -name npm-cli.js -o -name corepack.js -o -name 'yarn.js' -o -name cc1 -o -name cc1plus -o -name 'tsc.js' \
  -o -path '*/lib/node_modules/npm' -o -path "$rootfs/opt/yarn-*" \) -printf '/%P\n' | head -n 10)"
s=0
[[ -z "$leftovers" && ! -e "$rootfs/usr/local/lib/node_modules" ]] || s=1
expect "$s" "npm, corepack, yarn and any compiler are gone from the whole file system" "found: $leftovers"

compilers="$(awk '/^Package: /{p=$2} /^Status: .* installed$/{print p}' "$rootfs/var/lib/dpkg/status" |
  grep -E '^(gcc|g\+\+|cpp|clang|make|build-essential|libc6-dev|python3)(-[0-9.]+)?$' | tr '\n' ' ' || true)"
s=0
[[ -z "$compilers" ]] || s=1
expect "$s" "no compiler, make or python package installed (dpkg status)" "installed: $compilers"

echo "# sizes: image $image_bytes; /app $(du -sh "$app" | cut -f1) (node_modules $(du -sh "$app/node_modules" | cut -f1), dist $(du -sh "$app/dist" | cut -f1)); node binary $(du -sh "$rootfs/usr/local/bin/node" | cut -f1)"

# ---- runtime -----------------------------------------------------------------------------------
runner_notes=""
run_json=""
ctl_json=""
if [[ "${IMAGE_TEST_RUNNER:-auto}" == none ]]; then
  runner_notes="IMAGE_TEST_RUNNER=none: asked not to run the image"$'\n'
elif [[ "$mode" == docker ]]; then
  run_json='["docker","run"]'
  ctl_json='["docker"]'
elif command -v podman >/dev/null; then
  # podman reads buildah's store. It puts RLIMIT_NOFILE/NPROC in every container's spec, above
  # what it may raise them to where CAP_SYS_RESOURCE is missing (this sandbox): ask for values
  # at or below the current hard limits, which lowering always allows.
  nofile="$(ulimit -Hn)"
  if [[ "$nofile" == unlimited || "$nofile" -gt 65536 ]]; then nofile=65536; fi
  podman_base=(podman --storage-driver "$STORAGE_DRIVER")
  run_flags=(run --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=4096:4096")
  runtimes=("")
  if command -v runc >/dev/null; then runtimes+=(runc); fi
  for runtime in "${runtimes[@]}"; do
    cmd=("${podman_base[@]}")
    if [[ -n "$runtime" ]]; then cmd+=(--runtime "$runtime"); fi
    probe=("${cmd[@]}" "${run_flags[@]}" --rm --network host "$image_ref" -e 'process.exit(0)')
    if out="$("${probe[@]}" 2>&1)"; then
      run_json="$("$NODE" -p 'JSON.stringify(process.argv.slice(1))' "${cmd[@]}" "${run_flags[@]}")"
      ctl_json="$("$NODE" -p 'JSON.stringify(process.argv.slice(1))' "${cmd[@]}")"
      echo "# runner: ${cmd[*]} (${runtime:-default runtime})"
      break
    fi
    runner_notes+="'${probe[*]}' failed: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"$'\n'
  done
else
  runner_notes="no Docker engine ('docker info' fails) and podman is not installed (apt-get install podman runc)"$'\n'
fi

if [[ -z "$run_json" ]]; then
  if allow_skip runtime; then
    skipped+=("runtime checks (IMAGE_TEST_ALLOW_SKIP=runtime): no way to run the image here:"$'\n'"$runner_notes")
  else
    fail "a container runner runs the image" "${runner_notes}set IMAGE_TEST_ALLOW_SKIP=runtime to accept the static checks alone"
  fi
else
  if [[ -n "$runner_notes" ]]; then printf '%s' "$runner_notes" | sed 's/^/# tried first: /'; fi
  node_version="v$(pinned_node_version)"
  set +e
  IMAGE_REF="$image_ref" IMAGE_RUN="$run_json" IMAGE_CTL="$ctl_json" EXPECT_NODE="$node_version" \
    SHUTDOWN_DRAIN_MS="${SHUTDOWN_DRAIN_MS:-2000}" "$NODE" "$IMAGE_DIR/runtime-check.ts" | tee "$work/runtime.log"
  rc=${PIPESTATUS[0]}
  set -e
  runtime_failures="$(grep -c '^not ok' "$work/runtime.log" || true)"
  if [[ "$rc" != 0 && "$runtime_failures" == 0 ]]; then runtime_failures=1; fi
  failures=$((failures + runtime_failures))
fi

# ---- summary -------------------------------------------------------------------------------------
for s in "${skipped[@]}"; do printf 'SKIPPED: %s\n' "$s"; done
if [[ "$failures" -gt 0 ]]; then
  echo "image-test: $failures check(s) FAILED for $image_ref"
  exit 1
fi
echo "image-test: every check passed for $image_ref${skipped:+ (with skips, see above)}"
