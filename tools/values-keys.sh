#!/usr/bin/env bash
# Derives the key list of a third-party Helm chart: every value key path of the chart's
# values.yaml with the shape of its default, and nothing else of the chart (no comments,
# defaults or descriptions). `kube-validate -values-ref` checks our values files for that
# chart against the list (k8s-tests/static/run.sh). Run it when a pin in tools/versions.env
# moves, on the chart at the new version, unpacked or checked out OUTSIDE this repository
# (the project never stores another project's files):
#
#   helm pull ingress-nginx --repo https://kubernetes.github.io/ingress-nginx --version 4.15.1 --untar -d /tmp/c
#   bash tools/values-keys.sh /tmp/c/ingress-nginx >k8s-tests/kind/upstream/ingress-nginx-4.15.1.keys
#
# Usage: bash tools/values-keys.sh CHART_DIR [--version VERSION] [--from TEXT]
#   CHART_DIR  a chart folder: Chart.yaml plus values.yaml (or values.tmpl.yaml, which Envoy
#              Gateway's source tree renders into values.yaml at release)
#   --version  the chart's released version, when Chart.yaml holds a placeholder (a source
#              checkout of Envoy Gateway says v0.0.0-latest)
#   --from     where the chart came from (repository and tag), for the header
# Needs tools/bin/kube-validate (make tools); KUBE_VALIDATE points elsewhere.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KV="${KUBE_VALIDATE:-$ROOT/tools/bin/kube-validate}"
die() { printf 'values-keys: %s\n' "$*" >&2; exit 2; }

dir="" version="" from=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --version) [[ $# -ge 2 ]] || die "--version needs a value"; version=$2; shift 2 ;;
    --from) [[ $# -ge 2 ]] || die "--from needs a value"; from=$2; shift 2 ;;
    -*) die "unknown option $1 (usage: values-keys.sh CHART_DIR [--version VERSION] [--from TEXT])" ;;
    *) [[ -z "$dir" ]] || die "one chart folder only, got '$dir' and '$1'"; dir=$1; shift ;;
  esac
done
[[ -n "$dir" ]] || die "usage: values-keys.sh CHART_DIR [--version VERSION] [--from TEXT]"
[[ -f "$dir/Chart.yaml" ]] || die "$dir/Chart.yaml not found: CHART_DIR must be a chart folder"
abs=$(cd "$dir" && pwd -P)
[[ "$abs/" != "$(cd "$ROOT" && pwd -P)/"* ]] || die "$dir is inside the repository: unpack or check out the chart elsewhere (the project never stores it)"
[[ -x "$KV" ]] || die "$KV not found: run make tools"

values=""
for f in values.yaml values.tmpl.yaml; do
  [[ -f "$dir/$f" ]] && { values=$f; break; }
done
[[ -n "$values" ]] || die "$dir has neither values.yaml nor values.tmpl.yaml"

# Top-level scalars of Chart.yaml (quotes stripped).
chart_field() { sed -n "s/^$1:[[:space:]]*[\"']\{0,1\}\([^\"'#[:space:]]*\).*/\1/p" "$dir/Chart.yaml" | head -n1; }
name=$(chart_field name)
[[ -n "$name" ]] || die "$dir/Chart.yaml has no name"
[[ -n "$version" ]] || version=$(chart_field version)
[[ -n "$version" && "$version" != *0.0.0-latest* ]] ||
  die "$dir/Chart.yaml says version '${version:-}' (a placeholder of a source checkout): pass --version"
app_version=$(chart_field appVersion)

keys=$("$KV" -values-keys "$dir/$values") || die "kube-validate could not read $dir/$values"
cat <<EOF
# chart: $name
# version: $version
EOF
[[ -z "$app_version" || "$app_version" == latest ]] || printf '# appVersion: %s\n' "$app_version"
cat <<EOF
# derived: tools/values-keys.sh from the chart's $values${from:+ ($from)}
# The chart's value key paths, one per line, with the shape of each default: map (its keys
# follow), open (a map that takes any key), list, string, number, bool, any (null default).
# Read by \`kube-validate -values-ref\` (make k8s-static); nothing else of the chart is kept.
$keys
EOF
