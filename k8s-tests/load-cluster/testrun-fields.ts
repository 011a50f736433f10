// The fields a k6-operator TestRun (k6.io/v1alpha1) may have, and a strict check of an object
// against them: an unknown field, a missing required one or a value of the wrong type is an
// error, as the API server's strict field validation would report it with the operator's CRD.
//
// Where the list comes from: grafana/k6-operator at tag v1.6.0 (K6_OPERATOR_VERSION in
// tools/versions.env; Helm chart k6-operator 4.6.0 ships it), the Go types of the CRD in
// api/v1alpha1/testrun_types.go (TestRunSpec, K6Script, K6Configmap, K6VolumeClaim, Pod,
// PodMetadata, InitContainer, K6Scuttle, Cleanup), from which controller-gen generates
// config/crd/bases/k6.io_testruns.yaml. Written by hand from reading them: the operator's Go
// module is not served by the Go module proxy here, and its CRD is not copied into this
// repository. Move K6_OPERATOR_VERSION and re-read those types together.
//
// Fields whose type is a Kubernetes core/v1 type (env, resources, securityContext, ...) are
// marked `core`: their inside is not listed here but checked by decoding them strictly with
// k8s.io/api (kube-validate), inside a Pod built the way the operator builds its runner pods
// (see corePod below).

export type FieldType =
  | "string"
  | "int32"
  | "boolean"
  | "stringMap"
  | { enum: readonly string[] }
  | { object: Fields; required?: readonly string[] }
  | { array: FieldType }
  | { core: string };
export type Fields = { readonly [name: string]: FieldType };

const podMetadata: FieldType = { object: { annotations: "stringMap", labels: "stringMap" } };

const initContainer: FieldType = {
  object: {
    name: "string",
    image: "string",
    env: { array: { core: "EnvVar" } },
    envFrom: { array: { core: "EnvFromSource" } },
    command: { array: "string" },
    args: { array: "string" },
    workingDir: "string",
    volumeMounts: { array: { core: "VolumeMount" } },
    resources: { core: "ResourceRequirements" },
    restartPolicy: "string",
  },
};

/** v1alpha1.Pod: the initializer, starter and runner pods. */
const pod: FieldType = {
  object: {
    disabled: "boolean",
    affinity: { core: "Affinity" },
    // a string in the operator's type ("true"/"false"), not a boolean
    automountServiceAccountToken: "string",
    env: { array: { core: "EnvVar" } },
    image: "string",
    imagePullSecrets: { array: { core: "LocalObjectReference" } },
    imagePullPolicy: { enum: ["Always", "Never", "IfNotPresent"] },
    metadata: podMetadata,
    nodeSelector: "stringMap",
    tolerations: { array: { core: "Toleration" } },
    topologySpreadConstraints: { array: { core: "TopologySpreadConstraint" } },
    resources: { core: "ResourceRequirements" },
    serviceAccountName: "string",
    securityContext: { core: "PodSecurityContext" },
    containerSecurityContext: { core: "SecurityContext" },
    envFrom: { array: { core: "EnvFromSource" } },
    readinessProbe: { core: "Probe" },
    livenessProbe: { core: "Probe" },
    initContainers: { array: initContainer },
    volumes: { array: { core: "Volume" } },
    volumeMounts: { array: { core: "VolumeMount" } },
    priorityClassName: "string",
    schedulerName: "string",
  },
};

/** v1alpha1.TestRunSpec at k6-operator v1.6.0. */
export const TESTRUN_SPEC: FieldType = {
  object: {
    script: {
      object: {
        volumeClaim: { object: { name: "string", file: "string", readOnly: "boolean" }, required: ["name"] },
        configMap: { object: { name: "string", file: "string" }, required: ["name"] },
        localFile: "string",
      },
    },
    parallelism: "int32",
    separate: "boolean",
    arguments: "string",
    args: { array: "string" },
    ports: { array: { core: "ContainerPort" } },
    initializer: pod,
    starter: pod,
    runner: pod,
    // strings in the operator's type ("true"/"false")
    quiet: "string",
    paused: "string",
    scuttle: {
      object: {
        enabled: "string",
        envoyAdminApi: "string",
        neverKillIstio: "boolean",
        neverKillIstioOnFailure: "boolean",
        disableLogging: "boolean",
        startWithoutEnvoy: "boolean",
        waitForEnvoyTimeout: "string",
        istioQuitApi: "string",
        genericQuitEndpoint: "string",
        quitWithoutEnvoyTimeout: "string",
      },
    },
    cleanup: { enum: ["post"] },
    // reserved by Grafana Cloud k6; the check below refuses them (see reservedProblems)
    testRunId: "string",
    token: "string",
  },
  required: ["script", "parallelism"],
};

/** ObjectMeta as far as a TestRun we create uses it (strict: anything else is refused). */
const metadata: FieldType = {
  object: { name: "string", namespace: "string", labels: "stringMap", annotations: "stringMap" },
  required: ["name"],
};

export const TESTRUN: FieldType = {
  object: { apiVersion: "string", kind: "string", metadata, spec: TESTRUN_SPEC },
  required: ["apiVersion", "kind", "metadata", "spec"],
};

/** A value found at `path` whose field type is a core/v1 type, for kube-validate. */
export type CoreValue = { path: string; core: string; value: unknown };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Every problem of `value` against `type`, as `path: what` lines (empty: valid), and the
 * core/v1 values met on the way (to be decoded strictly elsewhere).
 */
export function validate(value: unknown, type: FieldType, path = "", core: CoreValue[] = []): string[] {
  const at = path || "<root>";
  if (type === "string") return typeof value === "string" ? [] : [`${at}: expected a string, got ${show(value)}`];
  if (type === "boolean") return typeof value === "boolean" ? [] : [`${at}: expected a boolean, got ${show(value)}`];
  if (type === "int32")
    return Number.isInteger(value) && (value as number) >= -(2 ** 31) && (value as number) < 2 ** 31
      ? []
      : [`${at}: expected a 32-bit integer, got ${show(value)}`];
  if (type === "stringMap") {
    if (!isObject(value)) return [`${at}: expected a map of strings, got ${show(value)}`];
    return Object.entries(value)
      .filter(([, v]) => typeof v !== "string")
      .map(([k, v]) => `${path}.${k}: expected a string, got ${show(v)}`);
  }
  if ("enum" in type)
    return typeof value === "string" && type.enum.includes(value)
      ? []
      : [`${at}: expected one of ${type.enum.join(", ")}, got ${show(value)}`];
  if ("core" in type) {
    core.push({ path: at, core: type.core, value });
    return [];
  }
  if ("array" in type) {
    if (!Array.isArray(value)) return [`${at}: expected a list, got ${show(value)}`];
    return value.flatMap((v, i) => validate(v, type.array, `${path}[${i}]`, core));
  }
  if (!isObject(value)) return [`${at}: expected an object, got ${show(value)}`];
  const problems: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const sub = path ? `${path}.${k}` : k;
    const t = type.object[k];
    if (t === undefined) problems.push(`${sub}: unknown field (not in the k6-operator v1.6.0 TestRun schema)`);
    else problems.push(...validate(v, t, sub, core));
  }
  for (const k of type.required ?? []) if (!(k in value)) problems.push(`${path ? `${path}.` : ""}${k}: required`);
  return problems;
}

function show(v: unknown): string {
  return JSON.stringify(v)?.slice(0, 60) ?? String(v);
}

/** What the operator refuses or ignores, besides the schema (its Validate() and ParseScript()). */
export function semanticProblems(testRun: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (testRun.apiVersion !== "k6.io/v1alpha1") problems.push(`apiVersion: expected k6.io/v1alpha1`);
  if (testRun.kind !== "TestRun") problems.push(`kind: expected TestRun`);
  const spec = (testRun.spec ?? {}) as Record<string, unknown>;
  const script = (spec.script ?? {}) as Record<string, unknown>;
  const sources = ["configMap", "volumeClaim", "localFile"].filter((k) => script[k] !== undefined);
  if (sources.length !== 1) problems.push(`spec.script: exactly one of configMap, volumeClaim, localFile (${sources})`);
  const file = (script.configMap as { file?: string } | undefined)?.file;
  if (file?.includes("/")) problems.push("spec.script.configMap.file: a key, no path");
  if (typeof spec.parallelism === "number" && spec.parallelism < 1) problems.push("spec.parallelism: at least 1");
  for (const k of ["testRunId", "token"]) if (k in spec) problems.push(`spec.${k}: reserved by Grafana Cloud k6`);
  return problems;
}

/**
 * A Pod holding every core/v1 value of a TestRun's runner, placed where the operator puts it
 * (pkg/resources/jobs/runner.go at v1.6.0): pod-level fields in the pod spec, the container's
 * in the `k6` container. kube-validate decodes it strictly into k8s.io/api's Pod.
 */
export function corePod(runner: Record<string, unknown>, name: string): Record<string, unknown> {
  const container: Record<string, unknown> = { name: "k6", image: runner.image ?? "grafana/k6" };
  for (const [from, to] of [
    ["env", "env"],
    ["envFrom", "envFrom"],
    ["resources", "resources"],
    ["containerSecurityContext", "securityContext"],
    ["readinessProbe", "readinessProbe"],
    ["livenessProbe", "livenessProbe"],
    ["volumeMounts", "volumeMounts"],
    ["imagePullPolicy", "imagePullPolicy"],
  ] as const) {
    if (runner[from] !== undefined) container[to] = runner[from];
  }
  const spec: Record<string, unknown> = { containers: [container], restartPolicy: "Never" };
  for (const k of [
    "affinity",
    "imagePullSecrets",
    "nodeSelector",
    "tolerations",
    "topologySpreadConstraints",
    "serviceAccountName",
    "securityContext",
    "volumes",
    "priorityClassName",
    "schedulerName",
  ]) {
    if (runner[k] !== undefined) spec[k] = runner[k];
  }
  return { apiVersion: "v1", kind: "Pod", metadata: { name }, spec };
}
