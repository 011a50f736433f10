#!/usr/bin/env bash
# Every check of the nodescale chart (`make chart-test`). Prints each check by name with
# PASS or FAIL (and the output of a failed one), and ends with "N passed, N failed";
# exits non-zero when any check failed. Tools come from tools/bin (`make tools`); a
# missing tool is a failure, never a silent skip.
#
# The Bitnami dependencies cannot be pulled here, and Helm refuses to render a chart
# whose declared dependencies are missing. So the chart is tested as a copy with its
# `dependencies:` removed (rendered without any subchart values), the Chart.yaml itself
# with stand-in subcharts, and the names of the Bitnami Services and Secrets the app is
# wired to are asserted explicitly (the contract-* cases).
#
# Usage: bash charts/tests/run.sh [FILTER]   (FILTER: run only checks whose name contains it)
#        VERBOSE=1 shows the output of passing checks too (every assertion, every lint line).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../tools/versions.env
source "$ROOT/tools/versions.env"
BIN="$ROOT/tools/bin"
CHART="$ROOT/charts/nodescale"
TESTS="$ROOT/charts/tests"
FILTER="${1:-}"
HELM3="$BIN/helm3"
HELM4="$BIN/helm4"
KV="$BIN/kube-validate"
KUBE_SCORE="$BIN/kube-score"
NAMESPACE=nodescale

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nodescale-chart-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Node 24 runs the TypeScript assertions directly (type stripping).
NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || NODE=$(command -v node || true)

# shellcheck source=../../tools/checks.sh
source "$ROOT/tools/checks.sh"

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

# strip_dependencies SRC DEST: a copy of the chart with Chart.yaml's dependencies removed.
strip_dependencies() {
  rm -rf "$2" && mkdir -p "$(dirname "$2")" && cp -r "$1" "$2"
  rm -rf "$2/charts" "$2/Chart.lock"
  awk '/^dependencies:/ { skip = 1; next } skip && /^[^ #-]/ { skip = 0 } !skip' "$1/Chart.yaml" >"$2/Chart.yaml"
  ! grep -q '^dependencies:' "$2/Chart.yaml"
}
STRIPPED="$WORK/stripped/nodescale"

# render HELM RELEASE OUT [helm template args...]
render() {
  local helm=$1 release=$2 out=$3
  shift 3
  "$helm" template "$release" "$STRIPPED" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" "$@" >"$out"
}

# values_of OUT [helm template args...]: the values a render with these arguments sees, as
# JSON (a copy of the chart whose only template prints .Values), so the assertions can hold
# the rendered objects against the values that made them.
VALUES_DUMP="$WORK/values-dump/nodescale"
values_of() {
  local out=$1
  shift
  if [[ ! -d "$VALUES_DUMP" ]]; then
    strip_dependencies "$STRIPPED" "$VALUES_DUMP" >/dev/null || return 1
    find "$VALUES_DUMP/templates" -type f -delete
    printf '{{ .Values | toJson }}\n' >"$VALUES_DUMP/templates/values.json"
  fi
  "$HELM3" template values "$VALUES_DUMP" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" "$@" |
    sed -n '/^{/p' >"$out"
  [[ -s "$out" ]] || { echo "could not print the values of: $*"; return 1; }
}

# validate_and_assert CASE RELEASE RENDERED [helm template args...]: strict decode, then the
# assertions (given the values those arguments make).
validate_and_assert() {
  local case=$1 release=$2 rendered=$3
  shift 3
  "$KV" -q -json "$rendered.json" "$rendered" || return 1
  values_of "$rendered.values.json" "$@" || return 1
  "$NODE" "$TESTS/assert.ts" "$case" "$rendered.json" "$release" "$rendered.values.json"
}

# Helm 3 and Helm 4 must render the same objects (the generated session secret and its
# checksum differ by nature).
# (Helm 4 also separates documents with an empty line; blank lines do not count.)
same_render() {
  diff <(grep -vE '^[[:space:]]*$|checksum/secret|session-secrets:' "$1") \
    <(grep -vE '^[[:space:]]*$|checksum/secret|session-secrets:' "$2")
}

# kube-score-exceptions.txt: "<check id> [case,...]  # why" -> --ignore-test flags per case.
kube_score_ignores() { # kube_score_ignores CASE: prints the check ids ignored for CASE
  local line id scope why
  while IFS= read -r line; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    why=$(sed -n 's/^[^#]*#[[:space:]]*//p' <<<"$line")
    id=$(sed 's/[[:space:]]*#.*//' <<<"$line" | awk '{ print $1 }')
    scope=$(sed 's/[[:space:]]*#.*//' <<<"$line" | sed -n 's/.*\[\(.*\)\].*/\1/p')
    if [[ ${#why} -lt 40 ]]; then
      echo "kube-score exception '$id' has no real justification: $line" >&2
      return 1
    fi
    if [[ -z "$scope" || ",$scope," == *",$1,"* ]]; then echo "$id"; fi
  done <"$TESTS/kube-score-exceptions.txt"
}

policy() { # policy CASE RENDERED
  local ignores=() id
  for id in $(kube_score_ignores "$1"); do ignores+=(--ignore-test "$id"); done
  [[ ${#ignores[@]} -gt 0 ]] && echo "exceptions for $1: ${ignores[*]}"
  "$KUBE_SCORE" score --output-format ci \
    --enable-optional-test container-seccomp-profile --enable-optional-test container-ports-check \
    "${ignores[@]}" "$2" >"$2.score"
  local rc=$?
  # ci format: one line per check and object: [OK], [SKIPPED], [WARNING] or [CRITICAL]
  echo "$(grep -c '^\[OK\]' "$2.score") checks OK"
  grep -E '^\[(WARNING|CRITICAL)\]' "$2.score"
  [[ $rc -eq 0 ]] && ! grep -qE '^\[(WARNING|CRITICAL)\]' "$2.score"
}

expect_failure() { # expect_failure PATTERN COMMAND...: the command fails and its output matches PATTERN
  local pattern=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "expected a failure, but it succeeded"
    return 1
  fi
  echo "$out" | tail -n 5
  grep -qE -- "$pattern" <<<"$out" || { echo "the error does not match /$pattern/"; return 1; }
}

# ---------------------------------------------------------------------------------------
# Tools and pins
# ---------------------------------------------------------------------------------------
tool_version() { # tool_version NAME WANT ACTUAL
  [[ "$3" == "$2" ]] || { echo "tools/bin/$1 is '$3', tools/versions.env pins '$2': run make tools"; return 1; }
}
check "tools: helm3 $HELM3_VERSION" tool_version helm3 "$HELM3_VERSION" "$("$HELM3" version --template '{{.Version}}' 2>&1)"
check "tools: helm4 $HELM4_VERSION" tool_version helm4 "$HELM4_VERSION" "$("$HELM4" version --template '{{.Version}}' 2>&1)"
check "tools: kube-score $KUBE_SCORE_VERSION" tool_version kube-score "$KUBE_SCORE_VERSION" \
  "v$("$KUBE_SCORE" version 2>&1 | sed -n 's/^kube-score version: \([^,]*\),.*/\1/p')"
check "tools: kube-validate built from tools/kube-validate" test -x "$KV"
check "tools: Node >= 22.18 for the TypeScript assertions" \
  "$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<22||(a===22&&b<18)) { console.error("Node "+process.version+": run npm ci at the repository root (it brings Node 24)"); process.exit(1) }'

pins_agree() {
  local gomod="$ROOT/tools/kube-validate/go.mod" ok=0
  grep -q "k8s.io/api $K8S_API_VERSION\$" "$gomod" || { echo "go.mod: k8s.io/api is not $K8S_API_VERSION"; ok=1; }
  grep -q "k8s.io/apimachinery $K8S_API_VERSION\$" "$gomod" || { echo "go.mod: k8s.io/apimachinery is not $K8S_API_VERSION"; ok=1; }
  grep -q "sigs.k8s.io/gateway-api $GATEWAY_API_VERSION\$" "$gomod" || { echo "go.mod: gateway-api is not $GATEWAY_API_VERSION"; ok=1; }
  grep -q "prometheus-operator/pkg/apis/monitoring $PROMETHEUS_OPERATOR_VERSION\$" "$gomod" || { echo "go.mod: monitoring is not $PROMETHEUS_OPERATOR_VERSION"; ok=1; }
  [[ "$(cut -d. -f2 <<<"$KUBE_VERSION")" == "$(cut -d. -f2 <<<"$K8S_API_VERSION")" ]] || { echo "KUBE_VERSION $KUBE_VERSION and k8s.io/api $K8S_API_VERSION differ in minor"; ok=1; }
  return $ok
}
check "pins: tools/kube-validate/go.mod agrees with tools/versions.env" pins_agree

# ---------------------------------------------------------------------------------------
# Chart metadata
# ---------------------------------------------------------------------------------------
app_version_matches() {
  local app chart
  app=$(sed -n 's/^  "version": "\(.*\)",*$/\1/p' "$ROOT/app/package.json" | head -n1)
  chart=$(sed -n 's/^appVersion: "*\([^"]*\)"*$/\1/p' "$CHART/Chart.yaml")
  echo "app/package.json $app, Chart.yaml appVersion $chart"
  [[ -n "$app" && "$app" == "$chart" ]]
}
check "chart: appVersion equals app/package.json version" app_version_matches

dependencies_pinned() {
  local deps ok=0
  deps=$(awk '/^dependencies:/ { on = 1; next } on && /^[^ #-]/ { on = 0 } on' "$CHART/Chart.yaml")
  echo "$deps"
  # <chart>:<values key> (redis-cluster is aliased redisCluster: its values and its switch)
  for pair in postgresql:postgresql redis:redis redis-cluster:redisCluster; do
    local block dep=${pair%%:*} key=${pair#*:}
    block=$(awk -v d="$dep" '/- name:/ { cur = $3 } cur == d' <<<"$deps")
    grep -qE '^ +version: [0-9]+\.[0-9]+\.[0-9]+$' <<<"$block" || { echo "$dep: version is not an exact x.y.z pin"; ok=1; }
    grep -q 'repository: oci://registry-1.docker.io/bitnamicharts$' <<<"$block" || { echo "$dep: not from oci://registry-1.docker.io/bitnamicharts"; ok=1; }
    grep -q "condition: $key.enabled\$" <<<"$block" || { echo "$dep: condition is not $key.enabled"; ok=1; }
    if [[ "$dep" != "$key" ]]; then
      grep -q "alias: $key\$" <<<"$block" || { echo "$dep: not aliased $key"; ok=1; }
    fi
  done
  return $ok
}
check "chart: Bitnami dependencies pinned exactly, from OCI, behind <name>.enabled" dependencies_pinned

# The pinned Bitnami charts' own default images (recorded in image-pins.ts, derived from
# each release's values.yaml): the chart pulls exactly these, and kind runs the same.
check "images: the chart pulls the pinned Bitnami charts' own default tags (from bitnamilegacy); kind runs the same" \
  "$NODE" "$TESTS/image-pins.ts" "$CHART/Chart.yaml" "$CHART/values.yaml" "$ROOT/k8s-tests/kind/values-kind.yaml"

check "chart: a copy without dependencies can be made" strip_dependencies "$CHART" "$STRIPPED"
# (a FILTER that skips that check still needs the copy)
[[ -d "$STRIPPED" ]] || strip_dependencies "$CHART" "$STRIPPED" >/dev/null 2>&1

kube_version_range() {
  render "$HELM3" nodescale "$WORK/kv.yaml" || return 1
  expect_failure "kubeVersion|incompatible" "$HELM3" template nodescale "$STRIPPED" --kube-version 1.29.0
}
check "chart: kubeVersion accepts $KUBE_VERSION and refuses 1.29" kube_version_range

schema_coverage() {
  # The chart's own values as JSON: a throwaway template in the stripped copy prints them.
  local copy="$WORK/values-json/nodescale"
  strip_dependencies "$CHART" "$copy" || return 1
  find "$copy/templates" -type f -delete
  printf '{{ .Values | toJson }}\n' >"$copy/templates/values.json"
  "$HELM3" template shop "$copy" | sed -n '/^{/p' >"$WORK/values.json" || return 1
  "$NODE" "$TESTS/schema-coverage.ts" "$WORK/values.json" "$CHART/values.schema.json"
}
check "chart: values.schema.json covers exactly the keys of values.yaml" schema_coverage

check "chart: helm test script parses (node --check)" "$NODE" --check "$CHART/files/helm-test.mjs"

# ---------------------------------------------------------------------------------------
# Lint (Helm 3 and Helm 4, every values file)
# ---------------------------------------------------------------------------------------
VALUES=("$TESTS"/values/*.yaml)
lint_all() {
  local helm=$1 f rc=0
  for f in "${VALUES[@]}"; do
    echo "== $(basename "$f")"
    "$helm" lint --strict "$STRIPPED" -f "$f" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" || rc=1
  done
  return $rc
}
check "lint: helm3 lint --strict, ${#VALUES[@]} values files" lint_all "$HELM3"
check "lint: helm4 lint --strict, ${#VALUES[@]} values files" lint_all "$HELM4"

# ---------------------------------------------------------------------------------------
# The values matrix: render, strict validation, assertions, Helm 3 = Helm 4, policy
# ---------------------------------------------------------------------------------------
matrix_render() { render "$HELM3" nodescale "$3" -f "$2" && validate_and_assert "$1" nodescale "$3" -f "$2"; }
matrix_helm4() { render "$HELM4" nodescale "$2.h4" -f "$1" && same_render "$2" "$2.h4"; }

check "policy: every kube-score exception is justified" kube_score_ignores defaults
for f in "${VALUES[@]}"; do
  case=$(basename "$f" .yaml)
  out="$WORK/$case.yaml"
  check "matrix $case: renders, decodes strictly, assertions hold" matrix_render "$case" "$f" "$out"
  check "matrix $case: Helm 4 renders what Helm 3 renders" matrix_helm4 "$f" "$out"
  check "matrix $case: kube-score (default checks)" policy "$case" "$out"
done

# The checksum annotation rolls the pods when the config changes, and only then.
checksum_rolls() {
  local a b c
  a=$(render "$HELM3" shop /dev/stdout | grep 'checksum/config')
  b=$(render "$HELM3" shop /dev/stdout | grep 'checksum/config')
  c=$(render "$HELM3" shop /dev/stdout --set config.logLevel=debug | grep 'checksum/config')
  echo "defaults: $a"; echo "again:    $b"; echo "debug:    $c"
  [[ -n "$a" && "$a" == "$b" && "$a" != "$c" ]]
}
check "rollout: checksum/config changes with the config and only then" checksum_rolls

# NOTES.txt renders for every values file (Helm 4 renders it offline with --dry-run=client;
# Helm 3 needs a cluster for that).
notes_all() {
  local f rc=0
  for f in "${VALUES[@]}"; do
    KUBECONFIG=/dev/null "$HELM4" install nodescale "$STRIPPED" --dry-run=client --namespace "$NAMESPACE" -f "$f" >"$WORK/notes.out" 2>&1 || {
      echo "== $(basename "$f")"; cat "$WORK/notes.out"; rc=1; continue
    }
    sed -n '/^NOTES:/,$p' "$WORK/notes.out" | grep 'helm test\|Reach the app' >/dev/null || { echo "== $(basename "$f"): no NOTES"; rc=1; }
  done
  return $rc
}
check "notes: NOTES.txt renders for every values file" notes_all

connection_budget() {
  KUBECONFIG=/dev/null "$HELM4" install nodescale "$STRIPPED" --dry-run=client >"$WORK/n1" 2>&1 || { cat "$WORK/n1"; return 1; }
  if grep -q 'WARNING: at full scale' "$WORK/n1"; then echo "the defaults exceed PostgreSQL's max_connections"; return 1; fi
  KUBECONFIG=/dev/null "$HELM4" install nodescale "$STRIPPED" --dry-run=client --set autoscaling.maxReplicas=50 >"$WORK/n2" 2>&1 || { cat "$WORK/n2"; return 1; }
  sed -n '/WARNING: at full scale/,+3p' "$WORK/n2"
  # (50 pods + 13 more during a rollout, maxSurge 25 %) x 10
  grep -q 'WARNING: at full scale the app may open 630 connections' "$WORK/n2"
}
check "notes: the defaults fit PostgreSQL's max_connections; 50 pods (+ rollout surge) x 10 get a warning" connection_budget

# ---------------------------------------------------------------------------------------
# The wiring contract with the Bitnami charts' Service and Secret names
# ---------------------------------------------------------------------------------------
contract() { # contract CASE RELEASE [--set ...]
  local case=$1 release=$2 out="$WORK/$1.yaml"
  shift 2
  render "$HELM3" "$release" "$out" "$@" && validate_and_assert "$case" "$release" "$out" "$@"
}
check "contract: release shop -> shop-postgresql-primary/-read, shop-redis-master, Secrets shop-postgresql[password], shop-redis[redis-password]" \
  contract contract-bitnami-defaults shop
check "contract: a release name containing the subchart's name is its fullname (Bitnami common.names.fullname)" \
  contract contract-release-contains-chart-name mypostgresql
check "contract: existingSecret and fullnameOverride of the subcharts are followed" \
  contract contract-existing-secrets shop \
  --set postgresql.fullnameOverride=pg --set postgresql.auth.existingSecret=pg-creds \
  --set postgresql.auth.secretKeys.userPasswordKey=app-password \
  --set postgresql.auth.username=shop --set postgresql.auth.database=orders \
  --set redis.fullnameOverride=kv --set redis.auth.existingSecret=redis-creds \
  --set redis.auth.existingSecretPasswordKey=secret
check "contract: postgresql architecture standalone -> <release>-postgresql, no replicas" \
  contract contract-standalone-postgresql shop --set postgresql.architecture=standalone
# Bitnami's PostgreSQL NetworkPolicies admit <primary fullname>-client and <read
# fullname>-client (replication) or <fullname>-client (standalone); Redis <fullname>-client.
check "client-labels: hardened Bitnami policies (allowExternal false on primary, read, Redis) admit the app pods" \
  contract contract-client-labels-hardened shop \
  --set postgresql.primary.networkPolicy.allowExternal=false \
  --set postgresql.readReplicas.networkPolicy.allowExternal=false \
  --set redis.networkPolicy.allowExternal=false
LONG_RELEASE="a-release-name-long-enough-to-overflow-a-label"
check "client-labels: a ${#LONG_RELEASE}-character release name renders no label key over 63 characters" \
  contract contract-long-release-name "$LONG_RELEASE"
check "client-labels: a label key Bitnami's policy would need but cannot exist fails the render, naming the value" \
  expect_failure "postgresql.primary.networkPolicy.allowExternal is false.*63 characters" \
  "$HELM3" template "$LONG_RELEASE" "$STRIPPED" --set postgresql.primary.networkPolicy.allowExternal=false
check "defects: read replica URLs use the read Service's port (postgresql.readReplicas.service.ports.postgresql)" \
  contract contract-replica-port shop --set postgresql.readReplicas.service.ports.postgresql=5433
check "defects: global.postgresql.auth (existingSecret, secretKeys, username, database) and service port come first, as in Bitnami" \
  contract contract-global-postgresql shop \
  --set global.postgresql.auth.existingSecret=global-pg --set global.postgresql.auth.secretKeys.userPasswordKey=app-pw \
  --set postgresql.auth.existingSecret=local-pg --set postgresql.auth.secretKeys.userPasswordKey=local-key \
  --set global.postgresql.auth.username=orders_app --set global.postgresql.auth.database=orders \
  --set global.postgresql.service.ports.postgresql=6543
# The NetworkPolicy as traffic meets it (front doors: the defaults and values cases).
check "egress: Service ports moved (6543, 6544, 6380): the policy still allows the pods' ports, where packets arrive" \
  contract contract-service-ports shop --set postgresql.primary.service.ports.postgresql=6543 \
  --set postgresql.readReplicas.service.ports.postgresql=6544 --set redis.master.service.ports.redis=6380
check "egress: container ports moved (5444, 6390): the policy follows them" \
  contract contract-container-ports shop --set postgresql.containerPorts.postgresql=5444 \
  --set redis.master.containerPorts.redis=6390
check "egress: an external replica on its own port (replicaHosts host:port) is reachable" \
  contract contract-external-replica-port shop -f "$TESTS/values/external-services.yaml" \
  --set 'externalDatabase.replicaHosts={db-replica-1.example.internal:6433,db-replica-2.example.internal}'
check "front-door: networkPolicy.ingressFrom narrowed to ingress-nginx admits only it; Prometheus elsewhere still scrapes the metrics port" \
  contract contract-ingress-from-narrowed shop --set serviceMonitor.enabled=true \
  --set-json 'networkPolicy.ingressFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"ingress-nginx"}}}]'
check "front-door: the deprecated networkPolicy.ingressNamespaceSelector still admits what it names" \
  contract contract-ingress-namespace-selector shop \
  --set networkPolicy.ingressNamespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=envoy-gateway-system
check "cookies: an Ingress with tls -> COOKIE_SECURE=true (and TRUST_PROXY=1)" \
  contract contract-cookie-secure-ingress-tls shop \
  --set-json 'ingress.tls=[{"secretName":"nodescale-tls","hosts":["nodescale.local"]}]'
check "cookies: an HTTPRoute on HTTPS listeners (httpRoute.https) -> COOKIE_SECURE=true" \
  contract contract-cookie-secure-gateway-https shop -f "$TESTS/values/gateway-api.yaml" --set httpRoute.https=true
check "hsts: a route rule with its own ResponseHeaderModifier keeps it alone" \
  contract contract-hsts-own-header-filter shop -f "$TESTS/values/gateway-api.yaml" --set httpRoute.https=true \
  --set-json 'httpRoute.rules=[{"filters":[{"type":"ResponseHeaderModifier","responseHeaderModifier":{"add":[{"name":"X-Served-By","value":"shop"}]}}]}]'
check "cookies: ingress.tls on a disabled Ingress is no TLS front door -> COOKIE_SECURE=auto" \
  contract contract-cookie-secure-ingress-off shop -f "$TESTS/values/gateway-api.yaml" \
  --set-json 'ingress.tls=[{"secretName":"nodescale-tls","hosts":["nodescale.local"]}]'
check "cookies: config.cookieSecure wins over the front door" \
  contract contract-cookie-secure-override shop --set config.cookieSecure=auto \
  --set-json 'ingress.tls=[{"secretName":"nodescale-tls","hosts":["nodescale.local"]}]'
check "trust-proxy: config.trustProxy=2 (an outer load balancer) reaches TRUST_PROXY" \
  contract contract-trust-proxy-two-hops shop --set config.trustProxy=2
check "contract: redis.auth.enabled=false -> no REDIS_PASSWORD" \
  contract contract-redis-no-auth shop --set redis.auth.enabled=false

# Redis Cluster and PgBouncer (issue 17): the wiring to Bitnami's redis-cluster names, and the
# checks that refuse a second Redis, a second PgBouncer, or pools that do not fit.
check "contract: redis-cluster fullnameOverride, existingSecret, Service and container ports are followed" \
  contract contract-redis-cluster-overrides shop -f "$TESTS/values/redis-cluster.yaml" \
  --set redisCluster.fullnameOverride=kvc --set redisCluster.existingSecret=kv-creds \
  --set redisCluster.existingSecretPasswordKey=pw --set redisCluster.service.ports.redis=6380 \
  --set redisCluster.redis.containerPorts.redis=6390 --set redisCluster.networkPolicy.allowExternal=false
check "contract: redisCluster.usePassword=false -> no REDIS_PASSWORD" \
  contract contract-redis-cluster-no-password shop -f "$TESTS/values/redis-cluster.yaml" --set redisCluster.usePassword=false
check "client-labels: hardened Bitnami PostgreSQL policies admit the PgBouncer pods" \
  contract contract-pgbouncer-hardened shop -f "$TESTS/values/pgbouncer.yaml" \
  --set postgresql.primary.networkPolicy.allowExternal=false \
  --set postgresql.readReplicas.networkPolicy.allowExternal=false
check "schema: redis.enabled and redisCluster.enabled both true fails, naming redisCluster" \
  expect_failure "redisCluster/enabled" "$HELM3" template shop "$STRIPPED" --set redisCluster.enabled=true
check "schema: externalRedis.host beside a bundled Redis fails, naming externalRedis" \
  expect_failure "/externalRedis" "$HELM4" template shop "$STRIPPED" --set externalRedis.host=redis.example.internal
check "schema: no Redis at all (redis.enabled=false, nothing external) fails, naming externalRedis" \
  expect_failure "/externalRedis" "$HELM3" template shop "$STRIPPED" --set redis.enabled=false
check "schema: externalRedis.host and externalRedis.clusterNodes together fail, naming externalRedis" \
  expect_failure "/externalRedis" "$HELM3" template shop "$STRIPPED" --set redis.enabled=false \
  --set externalRedis.host=a --set 'externalRedis.clusterNodes={b:7000}'
check "schema: an externalRedis.clusterNodes entry without a port fails, naming it" \
  expect_failure "clusterNodes/0" "$HELM4" template shop "$STRIPPED" --set redis.enabled=false \
  --set 'externalRedis.clusterNodes={redis-0}'
check "schema: pgbouncer.enabled and externalPgbouncer.enabled both true fails, naming externalPgbouncer" \
  expect_failure "externalPgbouncer/enabled" "$HELM3" template shop "$STRIPPED" --set pgbouncer.enabled=true \
  --set externalPgbouncer.enabled=true --set externalPgbouncer.host=pgb
check "values: with the schema bypassed, two Redis options still fail in one line, naming both" \
  expect_failure "Redis: choose exactly one; redis.enabled and redisCluster.enabled are both true" \
  "$HELM4" template shop "$STRIPPED" --skip-schema-validation --set redisCluster.enabled=true
check "values: redisCluster without its nameOverride (objects named redisCluster) fails, naming the value" \
  expect_failure "redisCluster.nameOverride" "$HELM3" template shop "$STRIPPED" \
  -f "$TESTS/values/redis-cluster.yaml" --set redisCluster.nameOverride=
# (20 pods + 5 in a rollout) x 10 x 2 pools (the primary and the read Service) = 500
check "pools: pgbouncer.maxClientConnections below the app's pools at full scale fails in one line, naming each term" \
  expect_failure "pgbouncer.maxClientConnections \(499\) is below the 500 client connections .*config.pgPoolMax \(10\) = 250 per pool, x 2 pools" \
  "$HELM3" template shop "$STRIPPED" -f "$TESTS/values/pgbouncer.yaml" --set pgbouncer.maxClientConnections=499
check "pools: pgbouncer.maxClientConnections exactly the app's pools at full scale (500) renders" \
  contract pgbouncer shop -f "$TESTS/values/pgbouncer.yaml" --set pgbouncer.maxClientConnections=500
# (2 + 1) x 97 = 291 > 300 - 10
check "pools: PgBouncer's server pools over max_connections (3 x 97 > 290) fail in one line, naming each term" \
  expect_failure "server pools do not fit the primary: \(pgbouncer.replicaCount 2 \+ 1 during a rollout\) x pgbouncer.defaultPoolSize 97 = 291 connections, above the 290 that its max_connections 300 leaves" \
  "$HELM4" template shop "$STRIPPED" -f "$TESTS/values/pgbouncer.yaml" --set pgbouncer.defaultPoolSize=97
check "pools: a replica's own max_connections counts too (primary 300, replica 100)" \
  expect_failure "server pools do not fit each read replica: .* = 60 connections, above the 50 that its max_connections 60 leaves" \
  "$HELM3" template shop "$STRIPPED" -f "$TESTS/values/pgbouncer.yaml" \
  --set-string 'postgresql.readReplicas.extendedConfiguration=max_connections = 60'
check "pools: an external PgBouncer's max_client_conn (PgBouncer's default, 100) below the app's pools fails, naming it" \
  expect_failure "externalPgbouncer.maxClientConnections \(100\) is below the 750 client connections" \
  "$HELM3" template shop "$STRIPPED" -f "$TESTS/values/external-pooled.yaml" --set externalPgbouncer.maxClientConnections=100
check "pools: externalDatabase.maxConnections bounds the bundled PgBouncer's server pools" \
  expect_failure "server pools do not fit the primary: .* = 60 connections, above the 40 that its max_connections 50 leaves" \
  "$HELM4" template shop "$STRIPPED" -f "$TESTS/values/external-services.yaml" --set pgbouncer.enabled=true \
  --set externalDatabase.maxConnections=50

# The real Chart.yaml, with stand-in subcharts in charts/: Helm accepts the dependency
# declarations, and their conditions switch the subcharts on and off.
stub_dependencies() {
  local dir="$WORK/stubbed/nodescale" dep version
  rm -rf "$WORK/stubbed" && mkdir -p "$WORK/stubbed" && cp -r "$CHART" "$dir"
  rm -rf "$dir/charts" && mkdir -p "$dir/charts"
  for dep in postgresql redis redis-cluster; do
    version=$(awk -v d="$dep" '/- name:/ { cur = $3 } cur == d && /version:/ { print $2 }' "$CHART/Chart.yaml")
    mkdir -p "$dir/charts/$dep/templates"
    printf 'apiVersion: v2\nname: %s\nversion: %s\n' "$dep" "$version" >"$dir/charts/$dep/Chart.yaml"
    printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stand-in-%s\n' "$dep" >"$dir/charts/$dep/templates/configmap.yaml"
  done
  "$HELM3" dependency list "$dir"
  "$HELM3" lint --strict "$dir" --kube-version "$KUBE_VERSION" || return 1
  "$HELM4" lint --strict "$dir" --kube-version "$KUBE_VERSION" || return 1
  "$HELM3" template shop "$dir" --kube-version "$KUBE_VERSION" >"$WORK/stub-on.yaml" || return 1
  grep -q 'name: stand-in-postgresql' "$WORK/stub-on.yaml" && grep -q 'name: stand-in-redis$' "$WORK/stub-on.yaml" ||
    { echo "the subcharts are not rendered by default"; return 1; }
  ! grep -q 'name: stand-in-redis-cluster' "$WORK/stub-on.yaml" || { echo "redis-cluster renders by default"; return 1; }
  "$HELM3" template shop "$dir" --kube-version "$KUBE_VERSION" -f "$TESTS/values/redis-cluster.yaml" >"$WORK/stub-cluster.yaml" || return 1
  grep -q 'name: stand-in-redis-cluster' "$WORK/stub-cluster.yaml" && ! grep -q 'name: stand-in-redis$' "$WORK/stub-cluster.yaml" ||
    { echo "redisCluster.enabled=true does not swap the redis subchart for redis-cluster"; return 1; }
  "$HELM4" template shop "$dir" --kube-version "$KUBE_VERSION" -f "$TESTS/values/external-services.yaml" >"$WORK/stub-off.yaml" || return 1
  ! grep -q 'name: stand-in-' "$WORK/stub-off.yaml" || { echo "postgresql.enabled/redis.enabled=false still renders a subchart"; return 1; }
}
check "dependencies: the real Chart.yaml lints (Helm 3, 4) and renders with stand-in subcharts; conditions switch them" stub_dependencies

# With the real Bitnami charts, where they could be fetched (`helm dependency build
# charts/nodescale` needs registry-1.docker.io): the full render, and every Service and
# Secret key the app uses exists in it. Where they are missing the check fails, unless
# CHECKS_SKIP=bitnami-render says to skip it (make test does: the build machines cannot
# reach the registry, and the contract checks above stand in).
full_chart() {
  local out="$WORK/full.yaml"
  "$HELM3" template shop "$CHART" --namespace "$NAMESPACE" --kube-version "$KUBE_VERSION" >"$out" &&
    validate_and_assert full shop "$out"
}
full_chart_name="dependencies: full render with the real Bitnami charts; the app's Services and Secret keys exist"
if compgen -G "$CHART/charts/postgresql*" >/dev/null && compgen -G "$CHART/charts/redis*" >/dev/null; then
  check "$full_chart_name" full_chart
else
  cannot_run bitnami-render "$full_chart_name" \
    "charts/nodescale/charts/ holds no Bitnami charts (helm dependency build needs registry-1.docker.io)"
fi

# ---------------------------------------------------------------------------------------
# Must-show: wrong values and unknown fields fail, naming the culprit
# ---------------------------------------------------------------------------------------
check "schema: a misspelt key (replicaCont) fails helm3 template, naming it" \
  expect_failure "replicaCont" "$HELM3" template shop "$STRIPPED" --set replicaCont=3
check "schema: a misspelt nested key (autoscaling.maxReplica) fails helm4 template, naming it" \
  expect_failure "maxReplica" "$HELM4" template shop "$STRIPPED" --set autoscaling.maxReplica=3
check "schema: a string where a number belongs (replicaCount=three) fails, naming it" \
  expect_failure "replicaCount.*(string|integer)" "$HELM3" template shop "$STRIPPED" --set-string replicaCount=three
check "schema: a wrong type in a nested value (service.port) fails, naming it" \
  expect_failure "service/port" "$HELM4" template shop "$STRIPPED" --set-string service.port=http
check "values: metricsPort equal to containerPort fails, naming both" \
  expect_failure "metricsPort.*containerPort" "$HELM4" template shop "$STRIPPED" --set metricsPort=3000
check "conventions: an extraEnv name the chart sets (DATABASE_URL) fails, naming it" \
  expect_failure "extraEnv: the chart sets DATABASE_URL" "$HELM3" template shop "$STRIPPED" \
  --set 'extraEnv[0].name=DATABASE_URL' --set 'extraEnv[0].value=postgres://elsewhere/db'
check "conventions: service.nodePort on a ClusterIP Service fails, naming it" \
  expect_failure "service.nodePort.*NodePort or LoadBalancer" "$HELM3" template shop "$STRIPPED" --set service.nodePort=30080
check "conventions: a podDisruptionBudget.minAvailable that would block every drain fails, naming it" \
  expect_failure "minAvailable 2 would block every node drain at 2 replicas" "$HELM4" template shop "$STRIPPED" \
  --set podDisruptionBudget.minAvailable=2
check "values: a grace period shorter than preStop + drain fails, naming it" \
  expect_failure "terminationGracePeriodSeconds" "$HELM3" template shop "$STRIPPED" --set terminationGracePeriodSeconds=5
# The defaults need 5 + ceil((5000 + 10000 + 5000) / 1000) + 2 = 27 s: the old 20 s (preStop +
# drain + 10 s) let SIGKILL cut a shutdown that was still inside SHUTDOWN_TIMEOUT_MS.
check "values: a grace period one second short of preStop + drain + SHUTDOWN_TIMEOUT_MS + close + exit (26 s) fails, naming each" \
  expect_failure "terminationGracePeriodSeconds \(26\) must be at least .*shutdownTimeoutMs \(10000 ms\).* = 27 s" \
  "$HELM4" template shop "$STRIPPED" --set terminationGracePeriodSeconds=26

# SIGKILL never comes first, over combinations of preStop, drain, timeout and a set grace
# period: assert.ts holds each rendered Deployment to the app's own shutdownBudgetMs.
shutdown_budget() {
  local combo i=0 rc=0
  for combo in \
    "" \
    "--set preStopSleepSeconds=1 --set config.shutdownDrainMs=0 --set config.shutdownTimeoutMs=1000" \
    "--set config.shutdownDrainMs=12345 --set config.shutdownTimeoutMs=61001" \
    "--set preStopSleepSeconds=120 --set config.shutdownDrainMs=600000 --set config.shutdownTimeoutMs=600000" \
    "--set terminationGracePeriodSeconds=27" \
    "--set terminationGracePeriodSeconds=300 --set config.shutdownTimeoutMs=30000"; do
    i=$((i + 1))
    echo "== combination $i: ${combo:-defaults}"
    # shellcheck disable=SC2086 # the combination is a list of flags
    contract "shutdown-budget-$i" shop $combo >"$WORK/shutdown-budget-$i.out" 2>&1 || rc=1
    grep -E 'terminationGracePeriodSeconds|NOT OK|Error' "$WORK/shutdown-budget-$i.out"
  done
  return $rc
}
check "shutdown: over 6 combinations of preStop, drain, timeout and grace period, the grace period covers preStop + the app's longest shutdown" \
  shutdown_budget

unknown_field() {
  local copy="$WORK/typo/nodescale"
  strip_dependencies "$CHART" "$copy" || return 1
  sed -i 's/^          livenessProbe:$/          livenesProbe:/' "$copy/templates/deployment.yaml"
  grep -q 'livenesProbe:' "$copy/templates/deployment.yaml" || { echo "could not plant the typo"; return 1; }
  "$HELM3" template shop "$copy" --kube-version "$KUBE_VERSION" >"$WORK/typo.yaml" || return 1
  expect_failure 'unknown field "spec.template.spec.containers\[0\].livenesProbe"' "$KV" -q "$WORK/typo.yaml"
}
check "strict: a template with livenesProbe (misspelt) fails strict validation, naming it" unknown_field

wrong_type_in_template() {
  local copy="$WORK/typo2/nodescale"
  strip_dependencies "$CHART" "$copy" || return 1
  sed -i 's/^  revisionHistoryLimit: .*/  revisionHistoryLimit: "five"/' "$copy/templates/deployment.yaml"
  "$HELM3" template shop "$copy" --kube-version "$KUBE_VERSION" >"$WORK/typo2.yaml" || return 1
  expect_failure 'revisionHistoryLimit' "$KV" -q "$WORK/typo2.yaml"
}
check "strict: a template with a string for an integer field fails strict validation" wrong_type_in_template

validator_self_test() {
  # Each document must fail on its own, for the reason in its comment.
  cat >"$WORK/bad.yaml" <<'YAML'
# an unknown field in a Gateway API kind
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: s, port: 80}], timeout: {request: 1s}}]
---
# an unknown field in a Prometheus Operator kind
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: m}
spec:
  selector: {}
  endpoints: [{port: http, intervall: 15s}]
---
# a field in the wrong case (JSON decoding in Go would accept it; the API server does not)
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  Ports: [{port: 80}]
---
# a duplicate key
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {a: "1", a: "2"}
---
# a kind the validator does not know is an error, not a pass
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
YAML
  "$KV" -q "$WORK/bad.yaml" >"$WORK/bad.out" 2>&1
  cat "$WORK/bad.out"
  grep -q 'HTTPRoute/r): unknown field "spec.rules\[0\].timeout"' "$WORK/bad.out" &&
    grep -q 'ServiceMonitor/m): unknown field "spec.endpoints\[0\].intervall"' "$WORK/bad.out" &&
    grep -q 'Service/s): unknown field "spec.Ports"' "$WORK/bad.out" &&
    grep -q 'already set in map' "$WORK/bad.out" &&
    grep -q 'Widget/w): unknown kind' "$WORK/bad.out" &&
    grep -q '5 objects, 5 invalid' "$WORK/bad.out"
}
check "strict: kube-validate rejects unknown fields in Gateway API and Prometheus Operator kinds, wrong case, duplicate keys, unknown kinds" validator_self_test

# ---------------------------------------------------------------------------------------
# Docs
# ---------------------------------------------------------------------------------------
check "docs: README.md parameter table matches values.yaml (make chart-docs)" bash "$TESTS/docs.sh" --check

finish_checks
