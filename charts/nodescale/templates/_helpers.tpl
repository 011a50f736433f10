{{/*
nodescale.name: the chart's name, or nameOverride. Object names are DNS labels (at most 63
characters), so every name helper cuts there and drops a dangling "-".
*/}}
{{- define "nodescale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
nodescale.fullname: what every object of a release is called. fullnameOverride wins; a
release already named after the chart (`helm install nodescale`) keeps its own name
instead of "nodescale-nodescale"; otherwise "<release>-<name>".
*/}}
{{- define "nodescale.fullname" -}}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- $full := printf "%s-%s" .Release.Name $name }}
{{- if .Values.fullnameOverride }}
{{- $full = .Values.fullnameOverride }}
{{- else if contains $name .Release.Name }}
{{- $full = .Release.Name }}
{{- end }}
{{- $full | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
nodescale.chart: the helm.sh/chart label value, "<chart>-<version>"; a label value may not
hold "+", which SemVer build metadata uses.
*/}}
{{- define "nodescale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
nodescale.labels: on every object of the release; commonLabels last, so a user's
labels join the recommended app.kubernetes.io ones.
*/}}
{{- define "nodescale.labels" -}}
helm.sh/chart: {{ include "nodescale.chart" . }}
{{ include "nodescale.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
nodescale.selectorLabels: what the Deployment, Service and policies select the app pods
by. Never add a label that changes between releases: a Deployment's selector is immutable.
*/}}
{{- define "nodescale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nodescale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
nodescale.serviceAccountName: the chart's own account (named after the release unless
serviceAccount.name says otherwise), or the one the user names, or the namespace's default.
*/}}
{{- define "nodescale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nodescale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ---------------------------------------------------------------------------------
     The chart's own helpers
     --------------------------------------------------------------------------------- */}}

{{/*
Labels of the pods that are not app pods (the helm test pods): the chart's
labels WITHOUT app.kubernetes.io/name, so the Service and the Deployment never select
them. Pass (dict "ctx" $ "component" "test").
*/}}
{{- define "nodescale.auxLabels" -}}
helm.sh/chart: {{ include "nodescale.chart" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/part-of: {{ include "nodescale.name" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- if .ctx.Chart.AppVersion }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels that let a pod through the Bitnami charts' NetworkPolicies when their `allowExternal`
is false: PostgreSQL's primary and read policies admit `<primary fullname>-client` and
`<read fullname>-client` (`<fullname>-client` when standalone), Redis's and Redis Cluster's
`<fullname>-client`, each "true". Bitnami truncates the fullname, not the key: a key whose
name passes 63 characters (a long release name) is invalid, so it is left out, and the
render fails only when the policy that needs it is switched to allowExternal: false.
The app pods get them all; the PgBouncer pods (nodescale.pgbouncer.clientLabels) only
PostgreSQL's. Pass (dict "ctx" $ "redis" bool).
*/}}
{{- define "nodescale.clientLabels" -}}
{{- include "nodescale.clientLabelsOf" (dict "ctx" . "redis" true) }}
{{- end }}

{{- define "nodescale.pgbouncer.clientLabels" -}}
{{- include "nodescale.clientLabelsOf" (dict "ctx" . "redis" false) }}
{{- end }}

{{- define "nodescale.clientLabelsOf" -}}
{{- $withRedis := .redis }}
{{- with .ctx }}
{{- $labels := dict }}
{{- $wanted := list }}
{{- if .Values.postgresql.enabled }}
{{- $names := include "nodescale.postgresql.names" . | fromYaml }}
{{- $wanted = append $wanted (list (printf "%s-client" $names.primary) (eq (toString (dig "primary" "networkPolicy" "allowExternal" true .Values.postgresql)) "false") "postgresql.primary.networkPolicy.allowExternal") }}
{{- if $names.read }}
{{- $wanted = append $wanted (list (printf "%s-client" $names.read) (eq (toString (dig "readReplicas" "networkPolicy" "allowExternal" true .Values.postgresql)) "false") "postgresql.readReplicas.networkPolicy.allowExternal") }}
{{- end }}
{{- end }}
{{- if and $withRedis .Values.redis.enabled }}
{{- $wanted = append $wanted (list (printf "%s-client" (include "nodescale.redis.fullname" .)) (eq (toString (dig "networkPolicy" "allowExternal" true .Values.redis)) "false") "redis.networkPolicy.allowExternal") }}
{{- end }}
{{- if and $withRedis .Values.redisCluster.enabled }}
{{- $wanted = append $wanted (list (printf "%s-client" (include "nodescale.redisCluster.fullname" .)) (eq (toString (dig "networkPolicy" "allowExternal" true .Values.redisCluster)) "false") "redisCluster.networkPolicy.allowExternal") }}
{{- end }}
{{- range $wanted }}
{{- $key := index . 0 }}
{{- if le (len $key) 63 }}
{{- $_ := set $labels $key "true" }}
{{- else if index . 1 }}
{{- fail (printf "%s is false, but Bitnami's client label %q is longer than the 63 characters a label key may have: use a shorter release name or fullnameOverride" (index . 2) $key) }}
{{- end }}
{{- end }}
{{- with $labels }}
{{- toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
An image reference: [registry/]repository:tag, or @digest when a digest is set; the
registry is global.imageRegistry (a mirror for every image, Bitnami's included), else the
image's own. Pass (dict "ctx" $ "image" <image values>).
*/}}
{{- define "nodescale.imageRef" -}}
{{- $registry := default .image.registry (dig "imageRegistry" "" (default dict .ctx.Values.global)) }}
{{- $repository := ternary (printf "%s/%s" $registry .image.repository) .image.repository (not (empty $registry)) }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .ctx.Chart.AppVersion .image.tag | toString) }}
{{- end }}
{{- end }}

{{/*
The app image.
*/}}
{{- define "nodescale.image" -}}
{{- include "nodescale.imageRef" (dict "ctx" . "image" .Values.image) }}
{{- end }}

{{/*
The image of the helm test pods: tests.image, or the app image when its repository is empty.
*/}}
{{- define "nodescale.testImage" -}}
{{- if .Values.tests.image.repository }}
{{- include "nodescale.imageRef" (dict "ctx" . "image" .Values.tests.image) }}
{{- else }}
{{- include "nodescale.image" . }}
{{- end }}
{{- end }}

{{/*
Pull secrets of every pod: global.imagePullSecrets (names or {name}, as Bitnami takes them)
and imagePullSecrets, once each; a list of {name}, or nothing.
*/}}
{{- define "nodescale.imagePullSecrets" -}}
{{- $names := list }}
{{- range concat (dig "imagePullSecrets" list (default dict .Values.global)) .Values.imagePullSecrets }}
{{- if kindIs "string" . }}
{{- $names = append $names . }}
{{- else }}
{{- $names = append $names .name }}
{{- end }}
{{- end }}
{{- range $names | uniq }}
- name: {{ . }}
{{- end }}
{{- end }}

{{/*
Annotations of an object: commonAnnotations, and the object's own (which win). Pass (dict
"ctx" $ "extra" <map>); prints the map, or nothing.
*/}}
{{- define "nodescale.annotations" -}}
{{- $all := merge (deepCopy (default dict .extra)) (default dict .ctx.Values.commonAnnotations) }}
{{- with $all }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
Name of the chart's own Secret (session secrets; inline external passwords).
*/}}
{{- define "nodescale.secretName" -}}
{{- include "nodescale.fullname" . }}
{{- end }}

{{/*
terminationGracePeriodSeconds, unless set: the preStop sleep, then the app's longest shutdown
after SIGTERM (app/src/lifecycle.ts, shutdownBudgetMs: SHUTDOWN_DRAIN_MS, then in-flight
requests up to SHUTDOWN_TIMEOUT_MS, then its clients up to CLOSE_TIMEOUT_MS, 5 s), then 2 s
for the process to exit. charts/tests/assert.ts holds every render to that function, so the
kubelet's SIGKILL never comes before the app's own exit. A set value too small fails the
render.
*/}}
{{- define "nodescale.terminationGracePeriodSeconds" -}}
{{- $closeMs := 5000 }}
{{- $budgetMs := add (int .Values.config.shutdownDrainMs) (int .Values.config.shutdownTimeoutMs) $closeMs }}
{{- $need := add (int .Values.preStopSleepSeconds) (div (add $budgetMs 999) 1000) 2 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- $need }}
{{- else if lt (int .Values.terminationGracePeriodSeconds) (int $need) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least preStopSleepSeconds (%d s) + config.shutdownDrainMs (%d ms) + config.shutdownTimeoutMs (%d ms) + 5 s for the app to close its clients + 2 s to exit = %d s, or SIGKILL can come before the app has shut down" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) (int .Values.config.shutdownDrainMs) (int .Values.config.shutdownTimeoutMs) (int $need)) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* ---------------------------------------------------------------------------------
     Wiring to the Bitnami subcharts. These helpers are the contract with the Bitnami
     postgresql and redis charts: they compute the names of the Services and Secrets those
     charts create, from values this chart declares, with the Bitnami defaults where a
     value is absent (charts/tests/run.sh renders with the subcharts stripped and asserts
     the resulting names).
     --------------------------------------------------------------------------------- */}}

{{/*
Bitnami's common.names.fullname for a subchart: fullnameOverride, else the release name
when it contains the chart name, else "<release>-<chart>". Pass (dict "ctx" $ "chart" "redis" "values" .Values.redis).
*/}}
{{- define "nodescale.subchartFullname" -}}
{{- if .values.fullnameOverride }}
{{- .values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .chart .values.nameOverride }}
{{- if contains $name .ctx.Release.Name }}
{{- .ctx.Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .ctx.Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nodescale.postgresql.fullname" -}}
{{- $global := dig "postgresql" "fullnameOverride" "" (default dict .Values.global) }}
{{- if $global }}
{{- $global }}
{{- else }}
{{- include "nodescale.subchartFullname" (dict "ctx" . "chart" "postgresql" "values" .Values.postgresql) }}
{{- end }}
{{- end }}

{{/*
The Bitnami postgresql chart's object names: a dict with primary (its primary.fullname) and
read (its readReplica.fullname, empty unless architecture is replication).
*/}}
{{- define "nodescale.postgresql.names" -}}
{{- $pg := .Values.postgresql }}
{{- $full := include "nodescale.postgresql.fullname" . }}
{{- $replication := eq (default "standalone" $pg.architecture) "replication" }}
{{- $primary := ternary (printf "%s-%s" $full (dig "primary" "name" "primary" $pg) | trunc 63 | trimSuffix "-") $full $replication }}
{{- $read := ternary (printf "%s-%s" $full (dig "readReplicas" "name" "read" $pg) | trunc 63 | trimSuffix "-") "" $replication }}
{{- toYaml (dict "primary" $primary "read" $read) }}
{{- end }}

{{- define "nodescale.redis.fullname" -}}
{{- include "nodescale.subchartFullname" (dict "ctx" . "chart" "redis" "values" .Values.redis) }}
{{- end }}

{{/*
The redis-cluster chart is aliased redisCluster, and Helm renames an aliased subchart after its
alias: its .Chart.Name, which Bitnami's names fall back to, is "redisCluster". values.yaml sets
its nameOverride to redis-cluster; a name that is still no DNS label fails here, not in the API.
*/}}
{{- define "nodescale.redisCluster.fullname" -}}
{{- $full := include "nodescale.subchartFullname" (dict "ctx" . "chart" "redisCluster" "values" .Values.redisCluster) }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $full) }}
{{- fail (printf "redisCluster: its objects would be named %q, which is no DNS label: set redisCluster.nameOverride (redis-cluster) or redisCluster.fullnameOverride" $full) }}
{{- end }}
{{- $full }}
{{- end }}

{{/*
Exactly one Redis: the bundled Redis (redis.enabled), the bundled Redis Cluster
(redisCluster.enabled), or an external one given by exactly one of externalRedis.host,
.sentinels, .clusterNodes. values.schema.json says the same; this names the culprit in one line
when the schema is bypassed (helm template --skip-schema-validation).
*/}}
{{- define "nodescale.redis.checkOne" -}}
{{- $x := .Values.externalRedis }}
{{- $external := list }}
{{- if $x.host }}{{ $external = append $external "externalRedis.host" }}{{ end }}
{{- if $x.sentinels }}{{ $external = append $external "externalRedis.sentinels" }}{{ end }}
{{- if $x.clusterNodes }}{{ $external = append $external "externalRedis.clusterNodes" }}{{ end }}
{{- $chosen := list }}
{{- if .Values.redis.enabled }}{{ $chosen = append $chosen "redis.enabled" }}{{ end }}
{{- if .Values.redisCluster.enabled }}{{ $chosen = append $chosen "redisCluster.enabled" }}{{ end }}
{{- if and $chosen $external }}
{{- fail (printf "Redis: choose exactly one; %s and %s are both set (unset the external one, or disable the bundled one)" (join " and " $chosen) (join " and " $external)) }}
{{- else if gt (len $chosen) 1 }}
{{- fail "Redis: choose exactly one; redis.enabled and redisCluster.enabled are both true (set redis.enabled: false for a Redis Cluster)" }}
{{- else if gt (len $external) 1 }}
{{- fail (printf "Redis: choose exactly one external Redis, not %s" (join " and " $external)) }}
{{- else if and (not $chosen) (not $external) }}
{{- fail "Redis: choose exactly one; redis.enabled and redisCluster.enabled are false and externalRedis sets none of host, sentinels, clusterNodes" }}
{{- end }}
{{- end }}

{{/*
PostgreSQL connection: a dict with host, port, replicas (a list of {host, port}), user,
database, secretName, secretKey.
*/}}
{{- define "nodescale.database" -}}
{{- if .Values.postgresql.enabled }}
{{- $pg := .Values.postgresql }}
{{- $full := include "nodescale.postgresql.fullname" . }}
{{- $names := include "nodescale.postgresql.names" . | fromYaml }}
{{- /* Bitnami's precedence (postgresql.v1.* helpers): global.postgresql first, then the chart's own values. */}}
{{- $global := dig "postgresql" dict (default dict .Values.global) }}
{{- $globalPort := dig "service" "ports" "postgresql" "" $global }}
{{- $port := default (dig "primary" "service" "ports" "postgresql" 5432 $pg) $globalPort }}
{{- $replicaPort := default (dig "readReplicas" "service" "ports" "postgresql" 5432 $pg) $globalPort }}
{{- $host := $names.primary }}
{{- $replicas := list }}
{{- if and $names.read (gt (int (dig "readReplicas" "replicaCount" 1 $pg)) 0) }}
{{- $replicas = list (dict "host" $names.read "port" $replicaPort) }}
{{- end }}
{{- $user := required "postgresql.auth.username is required: the app must not connect as postgres" (default (dig "auth" "username" "" $pg) (dig "auth" "username" "" $global)) }}
{{- $database := default (dig "auth" "database" $user $pg) (dig "auth" "database" "" $global) }}
{{- $existing := default (dig "auth" "existingSecret" "" $pg) (dig "auth" "existingSecret" "" $global) }}
{{- $key := "password" }}
{{- if $existing }}
{{- $key = default (dig "auth" "secretKeys" "userPasswordKey" "password" $pg) (dig "auth" "secretKeys" "userPasswordKey" "" $global) }}
{{- if eq $user "postgres" }}
{{- $key = default (dig "auth" "secretKeys" "adminPasswordKey" "postgres-password" $pg) (dig "auth" "secretKeys" "adminPasswordKey" "" $global) }}
{{- end }}
{{- end }}
{{- toYaml (dict "host" $host "port" $port "replicas" $replicas "user" $user "database" (tpl (toString $database) $) "secretName" (default $full (tpl (toString $existing) $)) "secretKey" (tpl (toString $key) $)) }}
{{- else }}
{{- $db := .Values.externalDatabase }}
{{- $host := required "externalDatabase.host is required when postgresql.enabled is false" $db.host }}
{{- if and (not $db.existingSecret) (not $db.password) }}
{{- fail "externalDatabase.existingSecret or externalDatabase.password is required when postgresql.enabled is false" }}
{{- end }}
{{- $secret := default (include "nodescale.secretName" .) $db.existingSecret }}
{{- $key := ternary $db.existingSecretPasswordKey "database-password" (not (empty $db.existingSecret)) }}
{{- $replicas := list }}
{{- range $db.replicaHosts }}
{{- /* "host" or "host:port" (a replica on another port than the primary) */}}
{{- if regexMatch ":[0-9]+$" . }}
{{- $replicas = append $replicas (dict "host" (regexReplaceAll ":[0-9]+$" . "") "port" (regexFind "[0-9]+$" . | int)) }}
{{- else }}
{{- $replicas = append $replicas (dict "host" . "port" $db.port) }}
{{- end }}
{{- end }}
{{- toYaml (dict "host" $host "port" $db.port "user" $db.user "database" $db.database "replicas" $replicas "secretName" $secret "secretKey" $key) }}
{{- end }}
{{- end }}

{{/*
Redis connection: a dict with url, or sentinels+master, or nodes (a Redis Cluster), and
secretName/secretKey (empty secretName: no password).
*/}}
{{- define "nodescale.redis" -}}
{{- include "nodescale.redis.checkOne" . }}
{{- if .Values.redisCluster.enabled }}
{{- /* Bitnami's redis-cluster.secretName and .secretPasswordKey helpers; the Service
<fullname> is only the seed: the client learns every node's pod address from CLUSTER SLOTS. */}}
{{- $rc := .Values.redisCluster }}
{{- $full := include "nodescale.redisCluster.fullname" . }}
{{- $existing := dig "existingSecret" "" $rc }}
{{- $key := ternary (default "redis-password" (dig "existingSecretPasswordKey" "" $rc)) "redis-password" (not (empty $existing)) }}
{{- $secret := ternary (default $full (tpl (toString $existing) $)) "" (dig "usePassword" true $rc) }}
{{- $port := dig "service" "ports" "redis" 6379 $rc }}
{{- toYaml (dict "nodes" (list (printf "%s:%v" $full $port)) "secretName" $secret "secretKey" $key) }}
{{- else if .Values.redis.enabled }}
{{- $r := .Values.redis }}
{{- $full := include "nodescale.redis.fullname" . }}
{{- $authOn := dig "auth" "enabled" true $r }}
{{- $existing := dig "auth" "existingSecret" "" $r }}
{{- $key := default "redis-password" (ternary (dig "auth" "existingSecretPasswordKey" "" $r) "" (not (empty $existing))) }}
{{- $secret := ternary (default $full $existing) "" $authOn }}
{{- if dig "sentinel" "enabled" false $r }}
{{- $sport := dig "sentinel" "service" "ports" "sentinel" 26379 $r }}
{{- toYaml (dict "sentinels" (list (printf "%s:%v" $full $sport)) "master" (dig "sentinel" "masterSet" "mymaster" $r) "secretName" $secret "secretKey" $key) }}
{{- else }}
{{- $port := dig "master" "service" "ports" "redis" 6379 $r }}
{{- toYaml (dict "url" (printf "redis://%s-master:%v/0" $full $port) "secretName" $secret "secretKey" $key) }}
{{- end }}
{{- else }}
{{- $x := .Values.externalRedis }}
{{- $secret := "" }}
{{- $key := "" }}
{{- if $x.existingSecret }}
{{- $secret = $x.existingSecret }}
{{- $key = $x.existingSecretPasswordKey }}
{{- else if $x.password }}
{{- $secret = include "nodescale.secretName" . }}
{{- $key = "redis-password" }}
{{- end }}
{{- if $x.clusterNodes }}
{{- toYaml (dict "nodes" $x.clusterNodes "secretName" $secret "secretKey" $key) }}
{{- else if $x.sentinels }}
{{- toYaml (dict "sentinels" $x.sentinels "master" $x.sentinelMaster "secretName" $secret "secretKey" $key) }}
{{- else }}
{{- $host := required "externalRedis.host (or externalRedis.sentinels) is required when redis.enabled is false" $x.host }}
{{- toYaml (dict "url" (printf "redis://%s:%v/%v" $host $x.port $x.db) "secretName" $secret "secretKey" $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The non-secret environment of the app, as a dict NAME: value (the ConfigMap's data).
*/}}
{{- define "nodescale.configEnv" -}}
{{- $db := include "nodescale.database" . | fromYaml }}
{{- $redis := include "nodescale.redis" . | fromYaml }}
{{- $c := .Values.config }}
{{- $env := dict
  "PORT" (toString .Values.containerPort)
  "METRICS_PORT" (toString .Values.metricsPort)
  "NODE_ENV" $c.nodeEnv
  "LOG_LEVEL" $c.logLevel
  "ACCESS_LOG_SAMPLE_RATE" (toString $c.accessLogSampleRate)
  "ACCESS_LOG_SLOW_MS" (toString $c.accessLogSlowMs)
  "PG_POOL_MAX" (toString $c.pgPoolMax)
  "WORKER_THREADS" (toString $c.workerThreads)
  "SHUTDOWN_DRAIN_MS" (toString $c.shutdownDrainMs)
  "SHUTDOWN_TIMEOUT_MS" (toString $c.shutdownTimeoutMs)
  "KEEP_ALIVE_TIMEOUT_MS" (toString $c.keepAliveTimeoutMs)
  "TRUST_PROXY" (toString $c.trustProxy)
  "COOKIE_SECURE" (include "nodescale.cookieSecure" .)
  "DATABASE_URL" (include "nodescale.pgUrl" (dict "db" $db "host" $db.host "port" $db.port))
}}
{{- $replicas := list }}
{{- range $db.replicas }}
{{- $replicas = append $replicas (include "nodescale.pgUrl" (dict "db" $db "host" .host "port" .port)) }}
{{- end }}
{{- $pooler := include "nodescale.pooler" . | fromYaml }}
{{- if $pooler.enabled }}
{{- /* Through PgBouncer in transaction mode: no session state survives a transaction, so
migrations (a session-level advisory lock) go to the primary itself, the app sends no
startup parameters (PG_TRANSACTION_POOLING), and PG_PREPARED_STATEMENTS stays unset (off). */}}
{{- $_ := set $env "DATABASE_MIGRATE_URL" (get $env "DATABASE_URL") }}
{{- $_ := set $env "DATABASE_URL" (include "nodescale.pgUrl" (dict "db" (dict "user" $db.user "database" $pooler.database) "host" $pooler.host "port" $pooler.port)) }}
{{- $replicas = list }}
{{- range $pooler.replicaDatabases }}
{{- $replicas = append $replicas (include "nodescale.pgUrl" (dict "db" (dict "user" $db.user "database" .) "host" $pooler.host "port" $pooler.port)) }}
{{- end }}
{{- $_ := set $env "PG_TRANSACTION_POOLING" "on" }}
{{- end }}
{{- $_ := set $env "DATABASE_REPLICA_URLS" (join "," $replicas) }}
{{- if $redis.nodes }}
{{- $_ := set $env "REDIS_CLUSTER_NODES" (join "," $redis.nodes) }}
{{- else if $redis.sentinels }}
{{- $_ := set $env "REDIS_SENTINELS" (join "," $redis.sentinels) }}
{{- $_ := set $env "REDIS_SENTINEL_MASTER" $redis.master }}
{{- else }}
{{- $_ := set $env "REDIS_URL" $redis.url }}
{{- end }}
{{- range $k, $v := $c.extraEnv }}
{{- if hasKey $env $k }}
{{- fail (printf "config.extraEnv.%s: the chart sets %s itself" $k $k) }}
{{- end }}
{{- $_ := set $env $k (toString $v) }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
COOKIE_SECURE: config.cookieSecure when set; else "true" when the chart's own front door serves
TLS (an Ingress with tls entries, or an HTTPRoute on HTTPS listeners, httpRoute.https), so the
session cookie never goes out without Secure whatever X-Forwarded-Proto says; else "auto".
*/}}
{{- define "nodescale.cookieSecure" -}}
{{- $v := .Values }}
{{- if $v.config.cookieSecure }}
{{- $v.config.cookieSecure }}
{{- else if or (and $v.ingress.enabled (not (empty $v.ingress.tls))) (and $v.httpRoute.enabled $v.httpRoute.https) }}
{{- "true" }}
{{- else }}
{{- "auto" }}
{{- end }}
{{- end }}

{{/*
Connections the app may open to one PostgreSQL server at full scale: (most pods + the pods a
rollout adds, updateStrategy's maxSurge) x PG_POOL_MAX (a pod's migrate initContainer
finishes before its app opens a pool), against the bundled server's max_connections less 10 for
superuser, replication and monitoring. A dict: need, available (0 when unknown: external).
*/}}
{{- define "nodescale.pgConnectionBudget" -}}
{{- $most := ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled | int }}
{{- $surge := 0 }}
{{- if eq .Values.updateStrategy.type "RollingUpdate" }}
{{- $maxSurge := dig "rollingUpdate" "maxSurge" "25%" .Values.updateStrategy | toString }}
{{- if hasSuffix "%" $maxSurge }}
{{- $surge = div (add (mul $most (trimSuffix "%" $maxSurge | int)) 99) 100 }}
{{- else }}
{{- $surge = int $maxSurge }}
{{- end }}
{{- end }}
{{- $need := mul (add $most $surge) (int .Values.config.pgPoolMax) }}
{{- $available := 0 }}
{{- if .Values.postgresql.enabled }}
{{- $conf := dig "primary" "extendedConfiguration" "" .Values.postgresql | toString }}
{{- $max := 100 }}
{{- $m := regexFind "max_connections\\s*=\\s*[0-9]+" $conf }}
{{- if $m }}{{ $max = regexFind "[0-9]+$" $m | int }}{{ end }}
{{- $available = sub $max 10 }}
{{- end }}
{{- toYaml (dict "need" $need "available" $available) }}
{{- end }}

{{/*
PgBouncer between the app and PostgreSQL (pgbouncer.enabled, or externalPgbouncer.enabled): a
dict with enabled, host, port, database (the primary's name on PgBouncer) and
replicaDatabases (the replicas' names, in the order of nodescale.database's replicas).
The bundled PgBouncer serves the primary as the database's own name and replica i (from 1)
as "<database>_replica_<i>" (nodescale.pgbouncer.databases).
*/}}
{{- define "nodescale.pooler" -}}
{{- if and .Values.pgbouncer.enabled .Values.externalPgbouncer.enabled }}
{{- fail "PgBouncer: pgbouncer.enabled and externalPgbouncer.enabled are both true; choose one" }}
{{- end }}
{{- if .Values.pgbouncer.enabled }}
{{- $dbs := include "nodescale.pgbouncer.databases" . | fromYamlArray }}
{{- $replicaNames := list }}
{{- range rest $dbs }}{{ $replicaNames = append $replicaNames .name }}{{ end }}
{{- toYaml (dict "enabled" true "host" (include "nodescale.pgbouncer.fullname" .) "port" .Values.pgbouncer.port "database" (first $dbs).name "replicaDatabases" $replicaNames) }}
{{- else if .Values.externalPgbouncer.enabled }}
{{- $x := .Values.externalPgbouncer }}
{{- $db := include "nodescale.database" . | fromYaml }}
{{- toYaml (dict "enabled" true "host" (required "externalPgbouncer.host is required when externalPgbouncer.enabled is true" $x.host) "port" $x.port "database" (default $db.database $x.database) "replicaDatabases" $x.replicaDatabases) }}
{{- else }}
{{- toYaml (dict "enabled" false) }}
{{- end }}
{{- end }}

{{- define "nodescale.pgbouncer.fullname" -}}
{{- printf "%s-pgbouncer" (include "nodescale.fullname" . | trunc 53 | trimSuffix "-") }}
{{- end }}

{{/*
What the PgBouncer pods and their Service and policies select them by: no
app.kubernetes.io/name, so nothing that selects the app pods selects these.
*/}}
{{- define "nodescale.pgbouncer.selectorLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: pgbouncer
{{- end }}

{{/*
The [databases] of the bundled PgBouncer: a list of {name, host, port}, the primary first,
then each replica of nodescale.database.
*/}}
{{- define "nodescale.pgbouncer.databases" -}}
{{- $db := include "nodescale.database" . | fromYaml }}
{{- $list := list (dict "name" $db.database "host" $db.host "port" $db.port) }}
{{- range $i, $r := $db.replicas }}
{{- $list = append $list (dict "name" (printf "%s_replica_%d" $db.database (add1 $i)) "host" $r.host "port" $r.port) }}
{{- end }}
{{- toYaml $list }}
{{- end }}

{{/*
PostgreSQL's max_connections, as this chart knows it: a dict with primary and read (0: not
known). The bundled servers' come from their extendedConfiguration (the read replicas'
defaulting to the primary's; PostgreSQL's own default is 100), external ones from
externalDatabase.maxConnections.
*/}}
{{- define "nodescale.pgMaxConnections" -}}
{{- if .Values.postgresql.enabled }}
{{- $primary := 100 }}
{{- $m := regexFind "max_connections\\s*=\\s*[0-9]+" (dig "primary" "extendedConfiguration" "" .Values.postgresql | toString) }}
{{- if $m }}{{ $primary = regexFind "[0-9]+$" $m | int }}{{ end }}
{{- $read := $primary }}
{{- $m = regexFind "max_connections\\s*=\\s*[0-9]+" (dig "readReplicas" "extendedConfiguration" "" .Values.postgresql | toString) }}
{{- if $m }}{{ $read = regexFind "[0-9]+$" $m | int }}{{ end }}
{{- toYaml (dict "primary" $primary "read" $read) }}
{{- else }}
{{- $n := int (default 0 .Values.externalDatabase.maxConnections) }}
{{- toYaml (dict "primary" $n "read" $n) }}
{{- end }}
{{- end }}

{{/*
The pools through PgBouncer must fit, or the render fails with one line:
- clients: every app pod at full scale (nodescale.pgConnectionBudget: most pods + a rollout's
  surge, x PG_POOL_MAX) holds a pool to the primary and one per replica, all through
  PgBouncer; each PgBouncer pod must accept them all (max_client_conn), since the Service may
  send every client to one pod while another restarts;
- servers: each bundled PgBouncer pod opens up to default_pool_size connections per database
  (the primary, each replica), and a rollout adds one pod (maxSurge 1): (replicaCount + 1) x
  default_pool_size per server, within max_connections less the 10 the budget keeps for
  superuser, replication and monitoring (not checked when max_connections is unknown).
The app's migrations (one connection per starting pod, straight to the primary) come on top.
*/}}
{{- define "nodescale.pgbouncer.checkSizing" -}}
{{- $pooler := include "nodescale.pooler" . | fromYaml }}
{{- if $pooler.enabled }}
{{- $budget := include "nodescale.pgConnectionBudget" . | fromYaml }}
{{- $pools := add1 (len $pooler.replicaDatabases) }}
{{- $clients := mul (int $budget.need) $pools }}
{{- $what := ternary "pgbouncer.maxClientConnections" "externalPgbouncer.maxClientConnections" (eq (toString .Values.pgbouncer.enabled) "true") }}
{{- $max := int (ternary .Values.pgbouncer.maxClientConnections .Values.externalPgbouncer.maxClientConnections (eq (toString .Values.pgbouncer.enabled) "true")) }}
{{- if lt $max $clients }}
{{- fail (printf "%s (%d) is below the %d client connections the app may open at full scale: (most pods + rollout surge) x config.pgPoolMax (%d) = %d per pool, x %d pools (1 primary + %d replicas); raise it, or lower config.pgPoolMax or autoscaling.maxReplicas" $what $max $clients (int .Values.config.pgPoolMax) (int $budget.need) $pools (len $pooler.replicaDatabases)) }}
{{- end }}
{{- if .Values.pgbouncer.enabled }}
{{- $pb := .Values.pgbouncer }}
{{- $servers := mul (add1 (int $pb.replicaCount)) (int $pb.defaultPoolSize) }}
{{- $max := include "nodescale.pgMaxConnections" . | fromYaml }}
{{- $db := include "nodescale.database" . | fromYaml }}
{{- $checks := list (list "the primary" (int $max.primary)) }}
{{- if $db.replicas }}{{ $checks = append $checks (list "each read replica" (int $max.read)) }}{{ end }}
{{- range $checks }}
{{- $limit := index . 1 }}
{{- if and (gt $limit 0) (gt $servers (sub $limit 10)) }}
{{- fail (printf "PgBouncer's server pools do not fit %s: (pgbouncer.replicaCount %d + 1 during a rollout) x pgbouncer.defaultPoolSize %d = %d connections, above the %d that its max_connections %d leaves (10 kept for superuser, replication, monitoring); lower pgbouncer.defaultPoolSize or pgbouncer.replicaCount, or raise max_connections" (index . 0) (int $pb.replicaCount) (int $pb.defaultPoolSize) $servers (sub $limit 10) $limit) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
postgres://user@host:port/database (no password: PGPASSWORD comes from a Secret).
Pass (dict "db" <nodescale.database> "host" host "port" port).
*/}}
{{- define "nodescale.pgUrl" -}}
{{- printf "postgres://%s@%s:%v/%s" (urlquery .db.user) .host .port (urlquery .db.database) }}
{{- end }}

{{/*
envFrom of the app container and its migrate initContainer: the chart's ConfigMap, then
extraEnvFrom.
*/}}
{{- define "nodescale.envFrom" -}}
- configMapRef:
    name: {{ include "nodescale.fullname" . }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The environment of the app container and of its migrate initContainer: the contract of
DESIGN.md, then extraEnv (a name the chart sets itself fails the render).
Non-secret values come from the ConfigMap; passwords only through secretKeyRef.
*/}}
{{- define "nodescale.env" -}}
{{- $db := include "nodescale.database" . | fromYaml }}
{{- $redis := include "nodescale.redis" . | fromYaml }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $db.secretName }}
      key: {{ $db.secretKey }}
{{- if $redis.secretName }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $redis.secretName }}
      key: {{ $redis.secretKey }}
{{- end }}
- name: SESSION_SECRETS
  valueFrom:
    secretKeyRef:
      name: {{ default (include "nodescale.secretName" .) .Values.sessionSecrets.existingSecret }}
      key: {{ .Values.sessionSecrets.existingSecretKey }}
{{- $taken := concat (keys (include "nodescale.configEnv" . | fromYaml)) (list "PGPASSWORD" "REDIS_PASSWORD" "SESSION_SECRETS") }}
{{- range .Values.extraEnv }}
{{- if has .name $taken }}
{{- fail (printf "extraEnv: the chart sets %s itself" .name) }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The sources admitted to the app's HTTP port: networkPolicy.ingressFrom, plus the deprecated
ingressNamespaceSelector/ingressPodSelector pair when set. An empty list admits any source.
*/}}
{{- define "nodescale.networkPolicy.ingressFrom" -}}
{{- $np := .Values.networkPolicy }}
{{- $from := $np.ingressFrom | default list }}
{{- if $np.ingressNamespaceSelector }}
{{- $peer := dict "namespaceSelector" $np.ingressNamespaceSelector }}
{{- with $np.ingressPodSelector }}
{{- $_ := set $peer "podSelector" . }}
{{- end }}
{{- $from = append $from $peer }}
{{- end }}
{{- toYaml $from }}
{{- end }}

{{/*
NetworkPolicy egress to DNS and PostgreSQL (the primary and the replicas): the PgBouncer pods'
whole egress, and the start of the app's. Pass (dict "ctx" $ "db" <nodescale.database>).
*/}}
{{- define "nodescale.networkPolicy.egressPostgresql" -}}
{{- $np := .ctx.Values.networkPolicy }}
- to:
    - namespaceSelector:
        {{- toYaml $np.dnsNamespaceSelector | nindent 8 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- $pgPorts := list }}
{{- if .ctx.Values.postgresql.enabled }}
{{- $pgPorts = list (dig "containerPorts" "postgresql" 5432 .ctx.Values.postgresql) }}
- to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/instance: {{ .ctx.Release.Name }}
          app.kubernetes.io/name: {{ default "postgresql" .ctx.Values.postgresql.nameOverride }}
{{- else }}
{{- $pgPorts = list .db.port }}
{{- range .db.replicas }}
{{- $pgPorts = append $pgPorts .port }}
{{- end }}
- to:
    {{- range $np.externalCIDRs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
{{- end }}
  ports:
    {{- range $pgPorts | uniq }}
    - protocol: TCP
      port: {{ int . }}
    {{- end }}
{{- end }}

{{/*
NetworkPolicy egress shared by the app pods (their migrate initContainer included) and the
helm test pods: DNS, PostgreSQL (the primary stays reachable through PgBouncer too: migrations
go to it directly), Redis, PgBouncer, nothing else. Pass (dict "ctx" $ "db" <nodescale.database> "redis" <nodescale.redis>).
*/}}
{{- define "nodescale.networkPolicy.egress" -}}
{{- /*
A NetworkPolicy matches the port a packet reaches on the destination pod, after the Service
has translated its port: the container ports of the Bitnami pods, never their Service ports.
External services are reached directly, on the ports the app connects to.
*/}}
{{- $np := .ctx.Values.networkPolicy }}
{{- include "nodescale.networkPolicy.egressPostgresql" . }}
{{- $redisPorts := list }}
{{- if .ctx.Values.redisCluster.enabled }}
{{- /* The client port of every node (the client learns their pod addresses); the cluster
bus (redis.containerPorts.bus) is between the nodes only. */}}
{{- $rc := .ctx.Values.redisCluster }}
{{- $redisPorts = list (dig "redis" "containerPorts" "redis" 6379 $rc) }}
- to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/instance: {{ .ctx.Release.Name }}
          app.kubernetes.io/name: {{ default "redisCluster" $rc.nameOverride }}
{{- else if .ctx.Values.redis.enabled }}
{{- $r := .ctx.Values.redis }}
{{- $redisPorts = list (dig "master" "containerPorts" "redis" 6379 $r) }}
{{- if .redis.sentinels }}
{{- $redisPorts = append $redisPorts (dig "replica" "containerPorts" "redis" 6379 $r) }}
{{- $redisPorts = append $redisPorts (dig "sentinel" "containerPorts" "sentinel" 26379 $r) }}
{{- end }}
- to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/instance: {{ .ctx.Release.Name }}
          app.kubernetes.io/name: {{ default "redis" $r.nameOverride }}
{{- else }}
{{- if .redis.url }}
{{- $redisPorts = append $redisPorts (default "6379" (regexFind ":[0-9]+$" (.redis.url | urlParse).host | trimPrefix ":")) }}
{{- end }}
{{- range .redis.sentinels }}
{{- $redisPorts = append $redisPorts (regexFind "[0-9]+$" .) }}
{{- end }}
{{- range .redis.nodes }}
{{- $redisPorts = append $redisPorts (regexFind "[0-9]+$" .) }}
{{- end }}
- to:
    {{- range $np.externalCIDRs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
{{- end }}
  ports:
    {{- range $redisPorts | uniq }}
    - protocol: TCP
      port: {{ int . }}
    {{- end }}
{{- if .ctx.Values.pgbouncer.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "nodescale.pgbouncer.selectorLabels" .ctx | nindent 10 }}
  ports:
    - protocol: TCP
      port: {{ int .ctx.Values.pgbouncer.port }}
{{- else if .ctx.Values.externalPgbouncer.enabled }}
- to:
    {{- range $np.externalCIDRs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - protocol: TCP
      port: {{ int .ctx.Values.externalPgbouncer.port }}
{{- end }}
{{- end }}
