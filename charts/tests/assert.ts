// Assertions on a rendered nodescale chart: what a user would see once it is applied.
// Input: the JSON array of objects that tools/bin/kube-validate writes (-json) after it has
// decoded every object strictly. Runs on Node 24 (type stripping, no build step).
//
//   node charts/tests/assert.ts <case> <objects.json> <release> <values.json>
//
// <values.json> holds the values the render saw (run.sh prints them with the same
// arguments), so what the templates make of a value is checked against the value itself.
// <case> picks the expectations of one values file (charts/tests/values/<case>.yaml) or of
// one wiring-contract render (see run.sh); the invariants below hold for every case.
// Prints "ok - ..." per assertion; exits 1 when any failed.
import { readFileSync } from "node:fs";
import { shutdownBudgetMs } from "../../app/src/lifecycle.ts";
import { egressAllows, ingressAllows, type NetworkPolicy, type Peer, selects, type Target } from "./netpol.ts";

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
};
type EnvVar = {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: unknown };
};

const [caseName, file, release, valuesFile] = process.argv.slice(2);
if (!caseName || !file || !release || !valuesFile) {
  console.error("usage: node assert.ts <case> <objects.json> <release> <values.json>");
  process.exit(2);
}
const objects: Obj[] = JSON.parse(readFileSync(file, "utf8"));
const values: any = JSON.parse(readFileSync(valuesFile, "utf8"));
let failures = 0;
const failed: string[] = [];

/** The Strict-Transport-Security value an HTTPRoute rule sets, if any. */
function hstsOf(rule: any): string | undefined {
  for (const f of rule.filters ?? [])
    for (const h of f.responseHeaderModifier?.set ?? []) if (h.name === "Strict-Transport-Security") return h.value;
  return undefined;
}

function check(ok: unknown, message: string): void {
  if (ok) {
    console.log(`    ok - ${message}`);
  } else {
    failures++;
    failed.push(message);
    console.log(`    NOT OK - ${message}`);
  }
}
const all = (kind: string) => objects.filter((o) => o.kind === kind);
const one = (kind: string, name?: string) =>
  objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

const hooks = (o: Obj) => o.metadata.annotations?.["helm.sh/hook"] ?? "";
// The chart's own objects, by name (a full render also holds the Bitnami subcharts' objects).
// (The app's Deployment carries no component label; the PgBouncer Deployment's is "pgbouncer".)
const deployment = all("Deployment").find(
  (d) =>
    d.metadata.labels?.["app.kubernetes.io/instance"] === release &&
    d.metadata.labels?.["app.kubernetes.io/component"] === undefined,
);
const fullname = deployment?.metadata.name ?? "";
const service = one("Service", fullname);
const metricsService = one("Service", `${fullname}-metrics`);
const configMap = one("ConfigMap", fullname);
const hpa = one("HorizontalPodAutoscaler", fullname);
const pdb = one("PodDisruptionBudget", fullname);
const testPods = all("Pod").filter((p) => hooks(p) === "test" && p.metadata.name.startsWith(`${fullname}-test-`));
const pgbouncer = one("Deployment", `${fullname}-pgbouncer`);

// ---------------------------------------------------------------------------------------
// Invariants: true of every values file.
// ---------------------------------------------------------------------------------------
check(deployment && service && configMap, "a Deployment, a Service and a ConfigMap are rendered");
if (!deployment || !service || !configMap) {
  console.log(`  ${failures} assertion(s) failed`);
  process.exit(1);
}
const podSpec = deployment.spec.template.spec;
const initContainers: any[] = podSpec.initContainers ?? [];
const migrate = initContainers.find((c) => c.name === "migrate");
const podLabels: Record<string, string> = deployment.spec.template.metadata.labels;
const app = podSpec.containers[0];
const env: EnvVar[] = app.env ?? [];
const appPorts: { name?: string; containerPort: number }[] = app.ports ?? [];
const httpPort = appPorts.find((p) => p.name === "http")?.containerPort ?? 0;
const cmData: Record<string, string> = configMap.data ?? {};
const secretRefOf = (name: string) => env.find((e) => e.name === name)?.valueFrom?.secretKeyRef;

// selectors
check(
  matches(deployment.spec.selector.matchLabels, podLabels),
  "the Deployment's selector matches its pod template labels",
);
check(matches(service.spec.selector, podLabels), "the Service selects the Deployment's pods");
for (const p of testPods) {
  const labels = p.metadata.labels;
  check(!matches(service.spec.selector, labels), `the Service does not select the ${p.kind} ${p.metadata.name} pods`);
  check(
    !matches(deployment.spec.selector.matchLabels, labels),
    `the Deployment's selector does not select the ${p.kind} ${p.metadata.name} pods`,
  );
}

// Every label the API server must accept: a key's name (after an optional prefix/) and a
// value at most 63 characters (a long release name must not produce an invalid object).
const labelSets: [string, Record<string, string> | undefined][] = objects.flatMap((o) => [
  [`${o.kind} ${o.metadata.name}`, o.metadata.labels] as [string, Record<string, string> | undefined],
  ...(o.spec?.template?.metadata?.labels
    ? [[`${o.kind} ${o.metadata.name} pods`, o.spec.template.metadata.labels] as [string, Record<string, string>]]
    : []),
]);
const badLabels = labelSets.flatMap(([where, labels]) =>
  Object.entries(labels ?? {})
    .filter(([k, v]) => (k.split("/").pop() ?? "").length > 63 || String(v).length > 63)
    .map(([k]) => `${where}: ${k}`),
);
check(
  badLabels.length === 0,
  `labels: every key name and value fits 63 characters (${badLabels.join(", ") || "none over"})`,
);

// probes name real ports, and the right endpoints
const portNames = new Set<string>((app.ports ?? []).map((p: { name: string }) => p.name));
const portNumbers = new Set<number>((app.ports ?? []).map((p: { containerPort: number }) => p.containerPort));
for (const [probe, path] of [
  ["startupProbe", "/readyz"],
  ["livenessProbe", "/livez"],
  ["readinessProbe", "/readyz"],
] as const) {
  const get = app[probe]?.httpGet;
  check(get, `${probe} is set (httpGet)`);
  if (!get) continue;
  check(
    typeof get.port === "string" ? portNames.has(get.port) : portNumbers.has(get.port),
    `${probe} port "${get.port}" is a container port`,
  );
  check(get.path === path, `${probe} checks ${path} (got ${get.path})`);
}
check(String(portNumbers.values().next().value) === cmData.PORT, `the container port equals PORT (${cmData.PORT})`);
const svcPort = service.spec.ports[0];
check(
  portNames.has(svcPort.targetPort) || portNumbers.has(svcPort.targetPort),
  `the Service's targetPort "${svcPort.targetPort}" is a container port`,
);

// HPA vs replicas, PDB, rollouts: what the templates made of the values, and what the values
// promise (a scale-down that waits, a drain and a rollout that keep pods serving).
// Equal as data: the same keys and values, whatever order the keys were written in.
const canonical = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(canonical)
    : v && typeof v === "object"
      ? Object.fromEntries(
          Object.entries(v)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, x]) => [k, canonical(x)]),
        )
      : v;
const same = (a: unknown, b: unknown) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
const auto = values.autoscaling;
if (hpa) {
  check(deployment.spec.replicas === undefined, "the HPA is on and the Deployment leaves replicas out");
  check(
    hpa.spec.scaleTargetRef.kind === "Deployment" && hpa.spec.scaleTargetRef.name === fullname,
    "the HPA scales the Deployment",
  );
  check(
    hpa.spec.minReplicas === auto.minReplicas && hpa.spec.maxReplicas === auto.maxReplicas,
    `hpa: min/max replicas are the values' (${hpa.spec.minReplicas}-${hpa.spec.maxReplicas})`,
  );
  check(hpa.spec.minReplicas <= hpa.spec.maxReplicas, "the HPA's minReplicas <= maxReplicas");
  const resource = (name: string) =>
    hpa.spec.metrics.find((m: any) => m.type === "Resource" && m.resource.name === name);
  const cpu = resource("cpu");
  check(
    cpu?.resource.target.type === "Utilization" &&
      cpu.resource.target.averageUtilization === auto.targetCPUUtilizationPercentage,
    `hpa: scales on CPU utilization at autoscaling.targetCPUUtilizationPercentage (${cpu?.resource.target.averageUtilization} vs ${auto.targetCPUUtilizationPercentage})`,
  );
  const memory = resource("memory");
  check(
    auto.targetMemoryUtilizationPercentage == null
      ? memory === undefined
      : memory?.resource.target.averageUtilization === auto.targetMemoryUtilizationPercentage,
    `hpa: a memory metric only as autoscaling.targetMemoryUtilizationPercentage says (${auto.targetMemoryUtilizationPercentage})`,
  );
  check(
    hpa.spec.metrics.length === 1 + (auto.targetMemoryUtilizationPercentage == null ? 0 : 1),
    `hpa: no other metric (${hpa.spec.metrics.map((m: any) => m.resource?.name ?? m.type).join(", ")})`,
  );
  check(same(hpa.spec.behavior, auto.behavior), "hpa: behavior is autoscaling.behavior, windows and policies as given");
  check(
    hpa.spec.behavior?.scaleDown?.stabilizationWindowSeconds > 0,
    `hpa: scale-down waits out a dip (stabilizationWindowSeconds ${hpa.spec.behavior?.scaleDown?.stabilizationWindowSeconds} > 0)`,
  );
} else {
  check(
    Number.isInteger(deployment.spec.replicas),
    `the HPA is off and the Deployment sets replicas (${deployment.spec.replicas})`,
  );
}
const minPods = hpa ? hpa.spec.minReplicas : deployment.spec.replicas;
const maxPods = hpa ? hpa.spec.maxReplicas : deployment.spec.replicas;
check(same(deployment.spec.strategy, values.updateStrategy), "rollout: the Deployment's strategy is updateStrategy");
check(
  deployment.spec.strategy.type === "RollingUpdate" && deployment.spec.strategy.rollingUpdate?.maxUnavailable === 0,
  `rollout: no pod goes before its replacement is ready (maxUnavailable ${deployment.spec.strategy.rollingUpdate?.maxUnavailable})`,
);
if (pdb) {
  check(maxPods > 1, `a PDB only when more than one replica can run (max ${maxPods})`);
  check(matches(pdb.spec.selector.matchLabels, podLabels), "the PDB selects the Deployment's pods");
  const mu = pdb.spec.maxUnavailable;
  const ma = pdb.spec.minAvailable;
  const want = values.podDisruptionBudget;
  check(
    want.minAvailable == null
      ? mu === want.maxUnavailable && ma === undefined
      : ma === want.minAvailable && mu === undefined,
    `pdb: the budget is the values' (maxUnavailable ${mu}, minAvailable ${ma})`,
  );
  const pct = (v: unknown) => (typeof v === "string" && v.endsWith("%") ? Number(v.slice(0, -1)) : undefined);
  const blocks =
    ma !== undefined
      ? typeof ma === "number"
        ? ma >= minPods
        : pct(ma) === 100
      : typeof mu === "number"
        ? mu < 1
        : pct(mu) === 0;
  check(!blocks, `the PDB never blocks a drain at ${minPods} replica(s) (maxUnavailable ${mu}, minAvailable ${ma})`);
  const emptiesAll = ma === undefined && (typeof mu === "number" ? mu >= minPods : (pct(mu) ?? 0) >= 100);
  check(!emptiesAll, `pdb: a drain keeps a pod serving (maxUnavailable ${mu} below the fewest replicas, ${minPods})`);
} else {
  check(maxPods <= 1 || caseName === "minimal", `no PDB (max replicas ${maxPods})`);
}

// no secret in plain env or in a ConfigMap
const secretish = /PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL/i;
for (const c of [...podSpec.containers, ...initContainers]) {
  for (const e of (c.env ?? []) as EnvVar[]) {
    if (secretish.test(e.name))
      check(
        e.valueFrom?.secretKeyRef && e.value === undefined,
        `${c.name}: ${e.name} comes from a Secret (secretKeyRef), not a plain value`,
      );
    if (e.value !== undefined)
      check(!/\/\/[^/@\s]*:[^/@\s]*@/.test(e.value), `${c.name}: ${e.name} holds no URL with a password`);
  }
}
for (const cm of all("ConfigMap").filter((c) => c.metadata.name.startsWith(fullname))) {
  for (const [k, v] of Object.entries((cm.data ?? {}) as Record<string, string>)) {
    if (cm.metadata.name.endsWith("-dashboard")) continue;
    check(
      !secretish.test(k) && !/\/\/[^/@\s]*:[^/@\s]*@/.test(v),
      `ConfigMap ${cm.metadata.name}: ${k} is no secret and holds no password`,
    );
  }
}
for (const name of ["PGPASSWORD", "SESSION_SECRETS"]) {
  check(env.find((e) => e.name === name)?.valueFrom?.secretKeyRef, `the app gets ${name} from a Secret`);
}
check(cmData.DATABASE_URL?.startsWith("postgres://"), `DATABASE_URL is set (${cmData.DATABASE_URL})`);
check(
  [cmData.REDIS_URL, cmData.REDIS_SENTINELS && cmData.REDIS_SENTINEL_MASTER, cmData.REDIS_CLUSTER_NODES].filter(Boolean)
    .length === 1,
  "exactly one of REDIS_URL, REDIS_SENTINELS + REDIS_SENTINEL_MASTER, REDIS_CLUSTER_NODES is set (app/src/config.ts refuses two)",
);
check(
  !("INSTANCE_NAME" in cmData) && !env.some((e) => e.name === "INSTANCE_NAME"),
  "INSTANCE_NAME is left unset (the pod name)",
);
check(
  Number(cmData.KEEP_ALIVE_TIMEOUT_MS) > 60000,
  `KEEP_ALIVE_TIMEOUT_MS (${cmData.KEEP_ALIVE_TIMEOUT_MS}) outlasts ingress-nginx's 60 s upstream keepalive`,
);

// TRUST_PROXY: the app's own default trusts no proxy (safe with none); behind the chart's
// front door (the ingress controller or the gateway: one hop) the chart must say so itself.
check(
  /^\d+$/.test(cmData.TRUST_PROXY ?? "") && cmData.TRUST_PROXY === String(values.config.trustProxy),
  `TRUST_PROXY is set explicitly, to config.trustProxy (${cmData.TRUST_PROXY} vs ${values.config.trustProxy})`,
);
// COOKIE_SECURE: "true" whenever the chart's own front door serves TLS, unless set.
const frontDoorTls =
  (values.ingress.enabled && (values.ingress.tls ?? []).length > 0) ||
  (values.httpRoute.enabled && values.httpRoute.https === true);
check(
  cmData.COOKIE_SECURE === (values.config.cookieSecure || (frontDoorTls ? "true" : "auto")),
  `COOKIE_SECURE is ${JSON.stringify(cmData.COOKIE_SECURE)}: config.cookieSecure ${JSON.stringify(values.config.cookieSecure)}, front door TLS ${frontDoorTls}`,
);

// graceful shutdown fits: SIGKILL (at the end of the grace period) never comes before the
// app's own exit. The app's worst case comes from the app's own code, so a longer shutdown
// there fails this check until the chart's grace period follows.
const preStop = app.lifecycle?.preStop?.sleep?.seconds;
check(Number.isInteger(preStop) && preStop > 0, `a preStop sleep (${preStop} s)`);
check(
  /^\d+$/.test(cmData.SHUTDOWN_DRAIN_MS ?? "") && /^\d+$/.test(cmData.SHUTDOWN_TIMEOUT_MS ?? ""),
  `the chart sets SHUTDOWN_DRAIN_MS (${cmData.SHUTDOWN_DRAIN_MS}) and SHUTDOWN_TIMEOUT_MS (${cmData.SHUTDOWN_TIMEOUT_MS}) itself`,
);
const shutdownMs = shutdownBudgetMs({
  drainMs: Number(cmData.SHUTDOWN_DRAIN_MS),
  timeoutMs: Number(cmData.SHUTDOWN_TIMEOUT_MS),
});
check(
  podSpec.terminationGracePeriodSeconds * 1000 >= preStop * 1000 + shutdownMs + 1000,
  `terminationGracePeriodSeconds ${podSpec.terminationGracePeriodSeconds} s >= preStop ${preStop} s + the app's longest shutdown ${shutdownMs} ms (lifecycle.ts shutdownBudgetMs) + 1 s to exit`,
);
check(
  deployment.spec.template.metadata.annotations?.["checksum/config"] &&
    deployment.spec.template.metadata.annotations?.["checksum/secret"],
  "checksum annotations roll the pods on config or secret changes",
);

// restricted pod security for every pod the chart runs
const pods: [string, any, any[]][] = [["Deployment", podSpec, [...initContainers, ...podSpec.containers]]];
for (const p of testPods) pods.push([`Pod ${p.metadata.name}`, p.spec, p.spec.containers]);
if (pgbouncer) pods.push(["PgBouncer", pgbouncer.spec.template.spec, pgbouncer.spec.template.spec.containers]);
const serviceAccount = one("ServiceAccount", podSpec.serviceAccountName);
check(
  podSpec.automountServiceAccountToken === (serviceAccount?.automountServiceAccountToken ?? false),
  `defects: the pods mount the API token exactly when serviceAccount.automount says so (${podSpec.automountServiceAccountToken})`,
);
for (const [what, spec, containers] of pods) {
  if (what !== "Deployment")
    check(spec.automountServiceAccountToken === false, `${what}: automountServiceAccountToken is false`);
  if (what === "PgBouncer")
    check(spec.automountServiceAccountToken === false, `${what}: automountServiceAccountToken is false`);
  for (const c of containers) {
    const sc = { ...spec.securityContext, ...c.securityContext };
    const ok =
      sc.runAsNonRoot === true &&
      sc.runAsUser >= 10000 &&
      c.securityContext?.readOnlyRootFilesystem === true &&
      c.securityContext?.allowPrivilegeEscalation === false &&
      c.securityContext?.capabilities?.drop?.includes("ALL") &&
      sc.seccompProfile?.type === "RuntimeDefault";
    check(
      ok,
      `${what}/${c.name}: restricted security context (non-root uid ${sc.runAsUser}, read-only root, no escalation, drop ALL, RuntimeDefault)`,
    );
    check(
      c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory,
      `${what}/${c.name}: CPU and memory requests, memory limit`,
    );
  }
}
const tmp = podSpec.volumes?.find((v: any) => v.name === "tmp");
check(
  tmp?.emptyDir && app.volumeMounts?.some((m: any) => m.name === "tmp" && m.mountPath === "/tmp"),
  "a writable emptyDir on /tmp",
);
check(
  podSpec.topologySpreadConstraints === undefined ||
    podSpec.topologySpreadConstraints.every((t: any) => matches(t.labelSelector?.matchLabels, podLabels)),
  "topologySpreadConstraints select the Deployment's pods",
);

// routes point at the Service
for (const ing of all("Ingress")) {
  for (const rule of ing.spec.rules)
    for (const p of rule.http.paths) {
      check(
        p.backend.service.name === service.metadata.name &&
          service.spec.ports.some(
            (sp: any) => sp.name === p.backend.service.port.name || sp.port === p.backend.service.port.number,
          ),
        `Ingress ${rule.host}${p.path} -> Service port that exists`,
      );
    }
}
for (const r of all("HTTPRoute")) {
  for (const rule of r.spec.rules)
    for (const b of rule.backendRefs) {
      check(
        b.name === service.metadata.name && service.spec.ports.some((sp: any) => sp.port === b.port),
        `HTTPRoute backendRef -> Service ${b.name}:${b.port}`,
      );
    }
}
// /metrics and the dependency detail live on the internal port only (issue 13, item 5): the
// Service that routes and LoadBalancers use has no port to it, and no route names one.
const metricsPort = appPorts.find((p) => p.name === "metrics")?.containerPort;
check(
  metricsPort !== undefined && String(metricsPort) === cmData.METRICS_PORT,
  `metrics: the container port "metrics" is METRICS_PORT (${cmData.METRICS_PORT})`,
);
check(
  service.spec.ports.every((p: any) => p.targetPort === "http" || p.targetPort === httpPort),
  "metrics: the app's Service (what the Ingress, HTTPRoute and a LoadBalancer use) targets only the http port",
);
check(
  metricsService?.spec.type === "ClusterIP" &&
    metricsService.spec.ports.every((p: any) => p.targetPort === "metrics") &&
    matches(metricsService.spec.selector, podLabels),
  `metrics: Service ${fullname}-metrics is ClusterIP and targets the pods' metrics port`,
);
for (const sm of all("ServiceMonitor")) {
  check(
    metricsService && matches(sm.spec.selector.matchLabels, metricsService.metadata.labels),
    "the ServiceMonitor selects the metrics Service",
  );
  check(
    !matches(sm.spec.selector.matchLabels, service.metadata.labels),
    "the ServiceMonitor does not select the app's Service",
  );
  check(
    sm.spec.endpoints.every(
      (e: any) =>
        e.port === "metrics" &&
        metricsService?.spec.ports.some((sp: any) => sp.name === e.port) &&
        e.path === "/metrics",
    ),
    "the ServiceMonitor scrapes /metrics on the metrics port",
  );
}
for (const p of testPods) {
  const url = p.spec.containers[0].env?.find((e: EnvVar) => e.name === "METRICS_URL")?.value;
  check(
    url === `http://${fullname}-metrics:${metricsService?.spec.ports[0]?.port}`,
    `helm test pod ${p.metadata.name} reaches the metrics Service (${url})`,
  );
}
const netpol = all("NetworkPolicy").find((n) => matches(n.spec.podSelector.matchLabels, podLabels));
if (all("NetworkPolicy").length > 0) {
  check(netpol, "a NetworkPolicy selects the app pods");
  check(
    netpol?.spec.policyTypes.includes("Ingress") && netpol?.spec.policyTypes.includes("Egress"),
    "it restricts both ingress and egress",
  );
  check(
    netpol?.spec.ingress.every((r: any) => r.ports.every((p: any) => portNames.has(p.port) || portNumbers.has(p.port))),
    "its ingress ports are the app's ports",
  );
  check(
    netpol?.spec.egress.some((r: any) => r.ports?.some((p: any) => p.port === 53)),
    "its egress allows DNS",
  );
}

// The NetworkPolicy as traffic meets it (charts/tests/netpol.ts evaluates the rendered
// policies). Front doors: what reaches the app's HTTP port on a fresh cluster of each kind.
const NAMESPACE = "nodescale";
const policies = all("NetworkPolicy") as unknown as NetworkPolicy[];
const toApp = (port: number): Target => ({ namespace: NAMESPACE, labels: podLabels, containerPorts: appPorts, port });
const podIn = (namespace: string, labels: Record<string, string>): Peer => ({
  ip: "10.244.7.9",
  pod: { namespace, namespaceLabels: { "kubernetes.io/metadata.name": namespace }, labels },
});
const frontDoors: Record<string, Peer> = {
  "ingress-nginx (namespace ingress-nginx)": podIn("ingress-nginx", {
    "app.kubernetes.io/name": "ingress-nginx",
    "app.kubernetes.io/component": "controller",
  }),
  "Traefik (namespace kube-system)": podIn("kube-system", { "app.kubernetes.io/name": "traefik" }),
  "Envoy Gateway's proxy (namespace envoy-gateway-system)": podIn("envoy-gateway-system", {
    "app.kubernetes.io/name": "envoy",
  }),
  "an AWS ALB with IP targets (a VPC address, no pod)": { ip: "10.0.12.34" },
  "a GKE NEG health check from 35.191.0.0/16": { ip: "35.191.4.20" },
  "a GKE NEG health check from 130.211.0.0/22": { ip: "130.211.1.9" },
  "a LoadBalancer Service with externalTrafficPolicy Local (the client's address)": { ip: "203.0.113.7" },
  "a LoadBalancer Service with externalTrafficPolicy Cluster (a node's address)": { ip: "10.0.3.4" },
};
const prometheusElsewhere = podIn("observability", { "app.kubernetes.io/name": "prometheus" });
const reaches = (source: Peer, port = httpPort) => ingressAllows(policies, source, toApp(port));
const expectFrontDoors = (admitted: string[] | "all") => {
  for (const [name, peer] of Object.entries(frontDoors)) {
    const want = admitted === "all" || admitted.includes(name);
    check(reaches(peer) === want, `front-door: ${name} ${want ? "reaches" : "does not reach"} the app's HTTP port`);
  }
};
// Egress: a connection from an app pod to a backing service's pod (or address), on the port
// the packet carries there (a Service's port becomes the pod's container port).
const appPod = { namespace: NAMESPACE, labels: podLabels };
const bitnamiPod = (name: string, component: string, port: number, portName: string): [Peer, Target] => {
  const labels = {
    "app.kubernetes.io/instance": release,
    "app.kubernetes.io/name": name,
    "app.kubernetes.io/component": component,
  };
  return [
    {
      ip: "10.244.3.3",
      pod: { namespace: NAMESPACE, namespaceLabels: { "kubernetes.io/metadata.name": NAMESPACE }, labels },
    },
    { namespace: NAMESPACE, labels, containerPorts: [{ name: portName, containerPort: port }], port },
  ];
};
const expectEgress = (what: string, [peer, target]: [Peer, Target], allowed = true) =>
  check(
    egressAllows(policies, appPod, peer, target) === allowed,
    `egress: ${what} (port ${target.port}) ${allowed ? "is allowed" : "is blocked"}`,
  );
const external = (ip: string, port: number): [Peer, Target] => [
  { ip },
  { namespace: "", labels: {}, containerPorts: [], port },
];
if (policies.length > 0) {
  check(
    reaches(prometheusElsewhere, metricsPort),
    "front-door: Prometheus in any namespace reaches the metrics port (networkPolicy.metricsFrom)",
  );
  for (const name of Object.keys(frontDoors).filter((n) => !frontDoors[n]?.pod))
    check(!reaches(frontDoors[name] as Peer, metricsPort), `metrics: ${name} does not reach the metrics port`);
  check(
    reaches(podIn(NAMESPACE, { "app.kubernetes.io/instance": release, "app.kubernetes.io/component": "test" })),
    "front-door: the helm test pods reach the app",
  );
  check(
    !reaches(frontDoors["an AWS ALB with IP targets (a VPC address, no pod)"] as Peer, 9229),
    "front-door: no source reaches another port of the app pods (9229, the Node inspector)",
  );
}

// Transaction pooling (issue 17): with PgBouncer between the app and PostgreSQL, the app is
// told so (app/src/config.ts: PG_TRANSACTION_POOLING), its migrations reach the primary itself
// (they hold a session-level advisory lock), named prepared statements stay off, and the pools
// fit at full scale.
const pooled = values.pgbouncer.enabled === true || values.externalPgbouncer.enabled === true;
const hostOf = (url: string | undefined) => (url ? new URL(url).hostname : "");
const portOf = (url: string | undefined) => (url ? Number(new URL(url).port || 5432) : 0);
const dbUrls = [cmData.DATABASE_URL ?? "", ...(cmData.DATABASE_REPLICA_URLS ?? "").split(",")].filter(Boolean);
const poolerHost = values.pgbouncer.enabled ? `${fullname}-pgbouncer` : values.externalPgbouncer.host;
const poolerPort: number = values.pgbouncer.enabled ? values.pgbouncer.port : values.externalPgbouncer.port;
if (pooled) {
  check(
    cmData.PG_TRANSACTION_POOLING === "on",
    `pooling: PG_TRANSACTION_POOLING=on (got ${cmData.PG_TRANSACTION_POOLING})`,
  );
  check(
    !("PG_PREPARED_STATEMENTS" in cmData) && !env.some((e) => e.name === "PG_PREPARED_STATEMENTS"),
    "pooling: PG_PREPARED_STATEMENTS is left unset (off: PgBouncer before 1.21 cannot follow named statements)",
  );
  check(
    dbUrls.every((u) => hostOf(u) === poolerHost && portOf(u) === poolerPort),
    `pooling: DATABASE_URL and every replica URL lead to PgBouncer ${poolerHost}:${poolerPort} (${dbUrls.join(", ")})`,
  );
  check(
    cmData.DATABASE_MIGRATE_URL?.startsWith("postgres://") && hostOf(cmData.DATABASE_MIGRATE_URL) !== poolerHost,
    `pooling: DATABASE_MIGRATE_URL goes straight to the primary (${cmData.DATABASE_MIGRATE_URL})`,
  );
  const most = values.autoscaling.enabled ? values.autoscaling.maxReplicas : values.replicaCount;
  const maxSurge = String(values.updateStrategy.rollingUpdate?.maxSurge ?? "25%");
  const surge =
    values.updateStrategy.type !== "RollingUpdate"
      ? 0
      : maxSurge.endsWith("%")
        ? Math.ceil((most * Number(maxSurge.slice(0, -1))) / 100)
        : Number(maxSurge);
  const clients = (most + surge) * values.config.pgPoolMax * dbUrls.length;
  const maxClients = values.pgbouncer.enabled
    ? values.pgbouncer.maxClientConnections
    : values.externalPgbouncer.maxClientConnections;
  check(
    maxClients >= clients,
    `pooling: max_client_conn ${maxClients} >= ${clients} client connections ((${most} pods + ${surge} surge) x PG_POOL_MAX ${values.config.pgPoolMax} x ${dbUrls.length} pools)`,
  );
} else {
  check(
    !("PG_TRANSACTION_POOLING" in cmData) && !("DATABASE_MIGRATE_URL" in cmData),
    "no pooler: PG_TRANSACTION_POOLING and DATABASE_MIGRATE_URL are unset (the app talks to PostgreSQL itself)",
  );
}
check(!!pgbouncer === (values.pgbouncer.enabled === true), `a PgBouncer Deployment exactly when pgbouncer.enabled`);
if (pgbouncer) {
  const pbService = one("Service", `${fullname}-pgbouncer`);
  const pbSpec = pgbouncer.spec.template.spec;
  const pbLabels: Record<string, string> = pgbouncer.spec.template.metadata.labels;
  const pbPorts: { name?: string; containerPort: number }[] = pbSpec.containers[0].ports ?? [];
  check(
    matches(pgbouncer.spec.selector.matchLabels, pbLabels),
    "pgbouncer: the Deployment's selector matches its pods",
  );
  check(matches(pbService?.spec.selector, pbLabels), "pgbouncer: its Service selects its pods");
  check(
    !matches(service.spec.selector, pbLabels) && !matches(deployment.spec.selector.matchLabels, pbLabels),
    "pgbouncer: the app's Service and Deployment do not select the PgBouncer pods",
  );
  check(
    pbService?.spec.ports.some(
      (p: any) =>
        p.port === poolerPort && pbPorts.some((c) => c.name === p.targetPort && c.containerPort === poolerPort),
    ),
    `pgbouncer: Service port ${poolerPort} reaches the container port of that number`,
  );
  check(pgbouncer.spec.replicas === values.pgbouncer.replicaCount, `pgbouncer: ${values.pgbouncer.replicaCount} pods`);
  check(
    pgbouncer.spec.strategy?.rollingUpdate?.maxSurge === 1 &&
      pgbouncer.spec.strategy.rollingUpdate.maxUnavailable === 0,
    "pgbouncer: a rollout adds one pod before removing one (the sizing counts it)",
  );
  const pbPdb = one("PodDisruptionBudget", `${fullname}-pgbouncer`);
  check(
    values.pgbouncer.replicaCount > 1 ? matches(pbPdb?.spec.selector.matchLabels, pbLabels) : !pbPdb,
    "pgbouncer: a PDB selects its pods whenever there is more than one",
  );
  check(
    pgbouncer.spec.template.metadata.annotations?.["checksum/config"],
    "pgbouncer: a checksum annotation rolls its pods when its configuration changes",
  );
  const pw = pbSpec.containers[0].env?.find((e: EnvVar) => e.name === "PGPASSWORD")?.valueFrom?.secretKeyRef;
  const appPw = secretRefOf("PGPASSWORD");
  check(
    pw && pw.name === appPw?.name && pw.key === appPw?.key,
    `pgbouncer: its PGPASSWORD is the app's database Secret (${pw?.name}/${pw?.key})`,
  );
  const ini: string = one("ConfigMap", `${fullname}-pgbouncer`)?.data?.["pgbouncer.ini"] ?? "";
  const setting = (k: string) => ini.match(new RegExp(`^\\s*${k}\\s*=\\s*(.*)$`, "m"))?.[1]?.trim();
  check(setting("pool_mode") === "transaction", `pgbouncer: pool_mode = transaction (got ${setting("pool_mode")})`);
  check(setting("auth_type") === "scram-sha-256", "pgbouncer: clients authenticate with SCRAM");
  check(
    Number(setting("listen_port")) === poolerPort &&
      Number(setting("max_client_conn")) === values.pgbouncer.maxClientConnections &&
      Number(setting("default_pool_size")) === values.pgbouncer.defaultPoolSize,
    "pgbouncer: listen_port, max_client_conn and default_pool_size are the values'",
  );
  const databases = new Map(
    [...(ini.split("[pgbouncer]")[0] ?? "").matchAll(/^\s*(\S+) = host=(\S+) port=(\d+) dbname=(\S+) (.*)$/gm)].map(
      (m) => [m[1], { host: m[2], port: Number(m[3]), dbname: m[4], rest: m[5] }],
    ),
  );
  for (const u of dbUrls) {
    const alias = decodeURIComponent(new URL(u).pathname.slice(1));
    const target = databases.get(alias);
    check(target, `pgbouncer: the app's database ${alias} is in [databases]`);
    check(
      target?.rest?.includes(`SET statement_timeout = ${values.pgbouncer.statementTimeoutMs}`),
      `pgbouncer: ${alias}'s server connections set statement_timeout (connect_query)`,
    );
  }
  const primaryAlias = decodeURIComponent(new URL(cmData.DATABASE_URL ?? "postgres://x/").pathname.slice(1));
  check(
    databases.get(primaryAlias)?.host === hostOf(cmData.DATABASE_MIGRATE_URL) &&
      databases.get(primaryAlias)?.port === portOf(cmData.DATABASE_MIGRATE_URL),
    `pgbouncer: ${primaryAlias} leads to the primary the migrations use (${hostOf(cmData.DATABASE_MIGRATE_URL)})`,
  );
  const maxConnections = values.postgresql.enabled
    ? Number(/max_connections\s*=\s*(\d+)/.exec(values.postgresql.primary?.extendedConfiguration ?? "")?.[1] ?? 100)
    : values.externalDatabase.maxConnections;
  const servers = (values.pgbouncer.replicaCount + 1) * values.pgbouncer.defaultPoolSize;
  check(
    maxConnections == null || servers <= maxConnections - 10,
    `pgbouncer: (${values.pgbouncer.replicaCount} pods + 1 in a rollout) x default_pool_size ${values.pgbouncer.defaultPoolSize} = ${servers} server connections fit max_connections ${maxConnections} less 10`,
  );
  if (policies.length > 0) {
    const pbTarget: Target = { namespace: NAMESPACE, labels: pbLabels, containerPorts: pbPorts, port: poolerPort };
    const pbPod = { namespace: NAMESPACE, labels: pbLabels };
    const appPeer: Peer = {
      ip: "10.244.1.1",
      pod: { namespace: NAMESPACE, namespaceLabels: { "kubernetes.io/metadata.name": NAMESPACE }, labels: podLabels },
    };
    check(
      policies.some((p) => selects(p.spec.podSelector, pbLabels)),
      "pgbouncer: a NetworkPolicy selects the PgBouncer pods",
    );
    check(
      egressAllows(
        policies,
        appPod,
        {
          ip: "10.244.2.2",
          pod: {
            namespace: NAMESPACE,
            namespaceLabels: { "kubernetes.io/metadata.name": NAMESPACE },
            labels: pbLabels,
          },
        },
        pbTarget,
      ),
      "egress: the app pods reach PgBouncer",
    );
    check(ingressAllows(policies, appPeer, pbTarget), "pgbouncer: its policy admits the app pods");
    check(
      !ingressAllows(policies, podIn("elsewhere", { "app.kubernetes.io/name": "shell" }), pbTarget),
      "pgbouncer: a pod of another namespace does not reach it",
    );
    const pbEgress = (what: string, [peer, target]: [Peer, Target], allowed = true) =>
      check(
        egressAllows(policies, pbPod, peer, target) === allowed,
        `pgbouncer egress: ${what} (port ${target.port}) ${allowed ? "is allowed" : "is blocked"}`,
      );
    if (values.postgresql.enabled) {
      pbEgress("to the PostgreSQL primary pod", bitnamiPod("postgresql", "primary", 5432, "tcp-postgresql"));
      pbEgress("to a PostgreSQL read replica pod", bitnamiPod("postgresql", "read", 5432, "tcp-postgresql"));
    }
    pbEgress("to a Redis pod", bitnamiPod("redis", "master", 6379, "redis"), false);
    pbEgress("to the app pods", [appPeer, toApp(httpPort)], false);
  }
}

// First install (issue 13, item 1): nothing the app pods wait for may run after them. A
// post-install hook runs only once `helm install --wait` has seen the pods ready, and Argo CD
// runs PostSync only after Healthy; pods that wait for the schema would wait forever.
check(
  !objects.some((o) => /post-(install|upgrade)|pre-install|pre-upgrade/.test(hooks(o))),
  "first-install: no install or upgrade hook (no helm --wait / Argo CD PostSync cycle)",
);
check(!objects.some((o) => o.kind === "Job"), "first-install: no migration Job");
if (migrate) {
  check(
    migrate.command?.join(" ") === "node dist/main.js migrate" && migrate.workingDir === "/app",
    "first-install: the app pods' migrate initContainer runs `node dist/main.js migrate` in /app",
  );
  check(migrate.image === app.image, `first-install: the migrate initContainer runs the app image (${migrate.image})`);
  check(
    JSON.stringify(migrate.envFrom) === JSON.stringify(app.envFrom) &&
      JSON.stringify(migrate.env) === JSON.stringify(app.env),
    "first-install: the migrate initContainer has the app's environment (ConfigMap and Secret references)",
  );
  check(
    migrate.volumeMounts?.some((m: any) => m.name === "tmp" && m.mountPath === "/tmp"),
    "first-install: the migrate initContainer has a writable /tmp",
  );
}
check(
  app.command?.join(" ") === "node dist/main.js" && app.workingDir === "/app",
  "the app runs `node dist/main.js` in /app",
);

// A pre-install hook runs before any object of the release exists: it may reference only
// objects the chart does not create.
for (const hook of objects.filter((o) => /pre-install/.test(hooks(o)))) {
  const spec = hook.kind === "Job" ? hook.spec.template.spec : hook.spec;
  const created = (kind: string, name: string) =>
    objects.some((o) => !hooks(o) && o.kind === kind && o.metadata.name === name);
  const refs: [string, string][] = [];
  if (spec.serviceAccountName) refs.push(["ServiceAccount", spec.serviceAccountName]);
  for (const c of spec.containers) {
    for (const e of (c.env ?? []) as EnvVar[])
      if (e.valueFrom?.secretKeyRef) refs.push(["Secret", e.valueFrom.secretKeyRef.name]);
    for (const f of c.envFrom ?? []) {
      if (f.secretRef) refs.push(["Secret", f.secretRef.name]);
      if (f.configMapRef) refs.push(["ConfigMap", f.configMapRef.name]);
    }
  }
  for (const [kind, name] of refs)
    check(
      !created(kind, name),
      `pre-install hook ${hook.metadata.name} does not depend on the ${kind} ${name} the release creates`,
    );
}

// ---------------------------------------------------------------------------------------
// Expectations per case.
// ---------------------------------------------------------------------------------------
const kinds = new Set(
  objects
    .filter(
      (o) =>
        !hooks(o) &&
        !["postgresql", "redis", "redis-cluster"].includes(o.metadata.labels?.["app.kubernetes.io/name"] ?? ""),
    )
    .map((o) => o.kind),
);
const expectKinds = (present: string[], absent: string[]) => {
  for (const k of present) check(kinds.has(k), `renders a ${k}`);
  for (const k of absent) check(!kinds.has(k), `renders no ${k}`);
};
const secretRef = (name: string) => env.find((e) => e.name === name)?.valueFrom?.secretKeyRef;
const expectSecret = (name: string, secret: string, key: string) => {
  const ref = secretRef(name);
  check(
    ref?.name === secret && ref?.key === key,
    `${name} <- Secret ${secret}, key ${key} (got ${ref?.name}/${ref?.key})`,
  );
};
const expectEnv = (name: string, value: string | undefined) =>
  check(cmData[name] === value, `${name} = ${JSON.stringify(value)} (got ${JSON.stringify(cmData[name])})`);
const expectTests = (names: string[]) =>
  check(
    testPods.map((p) => p.metadata.name.replace(`${fullname}-test-`, "")).join(",") === names.join(","),
    `helm test pods: ${names.join(", ")}`,
  );

const cases: Record<string, () => void> = {
  defaults() {
    // The documented defaults (README, "Scaling and shutdown").
    check(
      hpa?.spec.metrics.length === 1 &&
        hpa.spec.metrics[0].resource.name === "cpu" &&
        hpa.spec.metrics[0].resource.target.averageUtilization === 70,
      "hpa: defaults scale on CPU at 70 % of the request",
    );
    const b = hpa?.spec.behavior;
    check(
      b?.scaleUp.stabilizationWindowSeconds === 0 &&
        same(b.scaleUp.policies, [
          { type: "Percent", value: 100, periodSeconds: 15 },
          { type: "Pods", value: 4, periodSeconds: 15 },
        ]) &&
        b.scaleUp.selectPolicy === "Max",
      "hpa: defaults scale up at once, by doubling or 4 pods every 15 s, whichever is more",
    );
    check(
      b?.scaleDown.stabilizationWindowSeconds === 300 &&
        same(b.scaleDown.policies, [{ type: "Percent", value: 10, periodSeconds: 60 }]),
      "hpa: defaults scale down by 10 % a minute after a 5-minute window",
    );
    check(
      pdb?.spec.maxUnavailable === 1,
      `pdb: defaults let one pod go at a time (maxUnavailable ${pdb?.spec.maxUnavailable})`,
    );
    check(
      same(deployment.spec.strategy.rollingUpdate, { maxSurge: "25%", maxUnavailable: 0 }),
      "rollout: defaults surge 25 % and take no pod away first",
    );
    // A fresh cluster of any kind: its front door reaches the app (issue 13, item 4).
    expectFrontDoors("all");
    expectEgress("to the PostgreSQL primary pod", bitnamiPod("postgresql", "primary", 5432, "tcp-postgresql"));
    expectEgress("to a PostgreSQL read replica pod", bitnamiPod("postgresql", "read", 5432, "tcp-postgresql"));
    expectEgress("to the Redis master pod", bitnamiPod("redis", "master", 6379, "redis"));
    expectEgress(
      "to any other port of the PostgreSQL pod",
      bitnamiPod("postgresql", "primary", 9187, "http-metrics"),
      false,
    );
    expectKinds(
      ["HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "NetworkPolicy", "ServiceAccount", "Secret"],
      ["HTTPRoute", "ServiceMonitor"],
    );
    check(one("Ingress")?.spec.ingressClassName === "nginx", "Ingress class nginx");
    // The app defaults to TRUST_PROXY=0; behind the ingress the chart passes 1 (issue 15, D).
    expectEnv("TRUST_PROXY", "1");
    expectEnv("COOKIE_SECURE", "auto");
    check(migrate, "first-install: the bundled PostgreSQL is migrated by the app pods' initContainer");
    expectTests(["readiness", "session", "replicas"]);
  },
  // Behind an ingress that terminates TLS, the session cookie is always Secure (issue 15, C).
  "contract-cookie-secure-ingress-tls"() {
    expectEnv("COOKIE_SECURE", "true");
    expectEnv("TRUST_PROXY", "1");
    check(one("Ingress")?.spec.tls?.[0]?.secretName === "nodescale-tls", "the Ingress serves TLS");
  },
  "contract-cookie-secure-gateway-https"() {
    expectEnv("COOKIE_SECURE", "true");
    expectEnv("TRUST_PROXY", "1");
    expectKinds(["HTTPRoute"], ["Ingress"]);
    // HSTS at the TLS terminator (the app sends none): every rule sets it on the way out.
    const rules = one("HTTPRoute")?.spec.rules ?? [];
    check(
      rules.length > 0 && rules.every((r: any) => hstsOf(r) === "max-age=31536000"),
      `every rule sets Strict-Transport-Security (${JSON.stringify(rules.map(hstsOf))})`,
    );
  },
  // A rule with a ResponseHeaderModifier of its own keeps it as it is (a rule takes one).
  "contract-hsts-own-header-filter"() {
    const filters = one("HTTPRoute")?.spec.rules?.[0]?.filters ?? [];
    check(
      filters.length === 1 && filters[0].responseHeaderModifier?.add?.[0]?.name === "X-Served-By",
      `the rule's own filter alone (${JSON.stringify(filters)})`,
    );
  },
  // ingress.tls with the Ingress switched off is no TLS front door.
  "contract-cookie-secure-ingress-off"() {
    expectEnv("COOKIE_SECURE", "auto");
  },
  "contract-cookie-secure-override"() {
    expectEnv("COOKIE_SECURE", "auto");
  },
  "contract-trust-proxy-two-hops"() {
    expectEnv("TRUST_PROXY", "2");
  },
  "hpa-off"() {
    expectKinds(["PodDisruptionBudget"], ["HorizontalPodAutoscaler"]);
    check(deployment.spec.replicas === 3, "replicas: 3");
  },
  "single-replica"() {
    expectKinds([], ["HorizontalPodAutoscaler", "PodDisruptionBudget"]);
    check(deployment.spec.replicas === 1, "replicas: 1");
  },
  "external-services"() {
    expectEnv("DATABASE_URL", "postgres://app@db-primary.example.internal:6432/shop");
    expectEnv(
      "DATABASE_REPLICA_URLS",
      "postgres://app@db-replica-1.example.internal:6432/shop,postgres://app@db-replica-2.example.internal:6432/shop",
    );
    expectEnv("REDIS_URL", "redis://redis.example.internal:6380/2");
    expectSecret("PGPASSWORD", "shop-db", "pg-password");
    expectSecret("REDIS_PASSWORD", "shop-redis", "password");
    expectSecret("SESSION_SECRETS", "shop-sessions", "secrets");
    check(!one("Secret"), "no chart Secret: every secret is an existing one");
    check(migrate, "first-install: external services are migrated by the app pods' initContainer");
    check(!Object.keys(podLabels).some((l) => l.endsWith("-client")), "no Bitnami client labels without the subcharts");
    const egress = netpol?.spec.egress ?? [];
    check(egress.length > 0, "the app has egress rules");
    expectEgress("to the external PostgreSQL in 10.20.0.0/16", external("10.20.1.5", 6432));
    expectEgress("to the external Redis in 10.20.0.0/16", external("10.20.3.7", 6380));
    expectEgress("to PostgreSQL's port outside 10.20.0.0/16", external("192.0.2.10", 6432), false);
    expectTests(["readiness", "session", "replicas"]);
  },
  "gateway-api"() {
    expectKinds(["HTTPRoute"], ["Ingress"]);
    const route = one("HTTPRoute")!;
    check(
      route.spec.parentRefs[0].name === "eg" && route.spec.parentRefs[0].namespace === "envoy-gateway-system",
      "attaches to the configured Gateway",
    );
    // networkPolicy.ingressFrom narrowed to the gateway's namespace.
    expectFrontDoors(["Envoy Gateway's proxy (namespace envoy-gateway-system)"]);
    // Its listener is "http" and httpRoute.https is off: the cookie follows X-Forwarded-Proto.
    expectEnv("COOKIE_SECURE", "auto");
    check(
      route.spec.rules.every((r: any) => hstsOf(r) === undefined),
      "no HSTS on plain HTTP listeners",
    );
  },
  monitoring() {
    expectKinds(["ServiceMonitor"], []);
    const dash = all("ConfigMap").find((c) => c.metadata.name.endsWith("-dashboard"));
    check(dash?.metadata.labels?.grafana_dashboard === "1", "a dashboard ConfigMap labelled for the Grafana sidecar");
    let parsed: any;
    try {
      parsed = JSON.parse(dash?.data?.["nodescale.json"] ?? "");
    } catch {}
    check(parsed?.panels?.length > 0, `the dashboard is valid JSON with panels (${parsed?.panels?.length})`);
    check(
      reaches(prometheusElsewhere, metricsPort),
      "front-door: Prometheus in namespace observability (not monitoring) reaches /metrics",
    );
    check(
      one("ServiceMonitor")?.metadata.labels?.release === "kube-prometheus-stack",
      "the ServiceMonitor carries the Prometheus selector label",
    );
    check(
      netpol?.spec.egress.some((r: any) => r.ports?.some((p: any) => p.port === 4318)),
      "networkPolicy.extraEgress is appended to the app's egress",
    );
  },
  minimal() {
    expectKinds(
      [],
      [
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "HTTPRoute",
        "NetworkPolicy",
        "ServiceMonitor",
        "ServiceAccount",
      ],
    );
    check(!migrate && testPods.length === 0, "migration.enabled false: no migrate initContainer; no test pods");
    check(podSpec.serviceAccountName === "default", "the default ServiceAccount");
  },
  // The bundled Redis Cluster (issue 17): the app gets the cluster's Service as its seed and
  // reaches every node's client port, never the cluster bus.
  "redis-cluster"() {
    expectEnv("REDIS_CLUSTER_NODES", `${release}-redis-cluster:6379`);
    expectEnv("REDIS_URL", undefined);
    expectEnv("REDIS_SENTINELS", undefined);
    expectSecret("REDIS_PASSWORD", `${release}-redis-cluster`, "redis-password");
    expectEgress("to a Redis Cluster node's client port", bitnamiPod("redis-cluster", "node", 6379, "tcp-redis"));
    expectEgress(
      "to a Redis Cluster node's bus port",
      bitnamiPod("redis-cluster", "node", 16379, "tcp-redis-bus"),
      false,
    );
    expectEgress("to a (disabled) Redis master pod", bitnamiPod("redis", "master", 6379, "redis"), false);
    check(
      podLabels[`${release}-redis-cluster-client`] === "true" && podLabels[`${release}-redis-client`] === undefined,
      `client-labels: the pods carry ${release}-redis-cluster-client, not ${release}-redis-client`,
    );
    expectTests(["readiness", "session", "replicas"]);
  },
  "contract-redis-cluster-overrides"() {
    expectEnv("REDIS_CLUSTER_NODES", "kvc:6380");
    expectSecret("REDIS_PASSWORD", "kv-creds", "pw");
    expectEgress("to the nodes' moved client port 6390", bitnamiPod("redis-cluster", "node", 6390, "tcp-redis"));
    expectEgress("to the old client port 6379", bitnamiPod("redis-cluster", "node", 6379, "tcp-redis"), false);
    check(podLabels["kvc-client"] === "true", "client-labels: fullnameOverride kvc -> kvc-client");
  },
  "contract-redis-cluster-no-password"() {
    check(!secretRef("REDIS_PASSWORD"), "no REDIS_PASSWORD when redisCluster.usePassword is false");
  },
  // The bundled PgBouncer in front of the bundled PostgreSQL (issue 17).
  pgbouncer() {
    expectEnv("DATABASE_URL", `postgres://nodescale@${fullname}-pgbouncer:6432/nodescale`);
    expectEnv("DATABASE_REPLICA_URLS", `postgres://nodescale@${fullname}-pgbouncer:6432/nodescale_replica_1`);
    expectEnv("DATABASE_MIGRATE_URL", `postgres://nodescale@${release}-postgresql-primary:5432/nodescale`);
    expectEnv("PG_TRANSACTION_POOLING", "on");
    expectEnv("PG_PREPARED_STATEMENTS", undefined);
    const pbLabels = pgbouncer?.spec.template.metadata.labels ?? {};
    check(
      pbLabels[`${release}-postgresql-primary-client`] === "true" &&
        pbLabels[`${release}-postgresql-read-client`] === "true" &&
        pbLabels[`${release}-redis-client`] === undefined,
      "client-labels: PgBouncer's pods carry PostgreSQL's client labels, not Redis's",
    );
    check(
      pgbouncer?.spec.template.spec.containers[0].image === "bitnamilegacy/pgbouncer:1.24.1-debian-12-r10",
      `pgbouncer: the pinned image (${pgbouncer?.spec.template.spec.containers[0].image})`,
    );
    const pbSpec = pgbouncer?.spec.template.spec;
    check(
      same(pbSpec?.nodeSelector, values.pgbouncer.nodeSelector) &&
        same(pbSpec?.tolerations, values.pgbouncer.tolerations) &&
        podSpec.nodeSelector === undefined,
      "pgbouncer: its nodeSelector and tolerations are pgbouncer's, and they stay off the app pods",
    );
    // The app still reaches the primary itself, for its migrations.
    expectEgress(
      "to the PostgreSQL primary pod (migrations)",
      bitnamiPod("postgresql", "primary", 5432, "tcp-postgresql"),
    );
    expectTests(["readiness", "session", "replicas"]);
  },
  // Everything external: a managed PostgreSQL behind a PgBouncer of the user's, a Redis Cluster.
  "external-pooled"() {
    expectEnv("DATABASE_URL", "postgres://app@pgbouncer.example.internal:6432/shop");
    expectEnv(
      "DATABASE_REPLICA_URLS",
      "postgres://app@pgbouncer.example.internal:6432/shop_ro_1,postgres://app@pgbouncer.example.internal:6432/shop_ro_2",
    );
    expectEnv("DATABASE_MIGRATE_URL", "postgres://app@db-primary.example.internal:5432/shop");
    expectEnv("PG_TRANSACTION_POOLING", "on");
    expectEnv("REDIS_CLUSTER_NODES", "redis-0.example.internal:7000,redis-1.example.internal:7001");
    expectSecret("REDIS_PASSWORD", "shop-redis", "password");
    expectSecret("PGPASSWORD", "shop-db", "pg-password");
    check(!pgbouncer && !one("Service", `${fullname}-pgbouncer`), "no PgBouncer of the chart's own");
    expectEgress("to the external PgBouncer", external("10.20.5.5", 6432));
    expectEgress("to the external primary (migrations)", external("10.20.1.5", 5432));
    expectEgress("to a Redis Cluster node on 7000", external("10.20.3.7", 7000));
    expectEgress("to a Redis Cluster node on 7001", external("10.20.3.8", 7001));
    expectEgress("to the Redis Cluster bus (17000)", external("10.20.3.7", 17000), false);
    expectEgress("to PgBouncer's port outside 10.20.0.0/16", external("192.0.2.10", 6432), false);
  },
  // Bitnami's PostgreSQL policies hardened: PgBouncer's pods must carry the client labels.
  "contract-pgbouncer-hardened"() {
    const pbLabels = pgbouncer?.spec.template.metadata.labels ?? {};
    for (const label of [`${release}-postgresql-primary-client`, `${release}-postgresql-read-client`])
      check(pbLabels[label] === "true", `client-labels: hardened policies admit PgBouncer's pods (${label})`);
  },
  "redis-sentinel"() {
    expectEgress("to a Sentinel", bitnamiPod("redis", "node", 26379, "redis-sentinel"));
    expectEgress("to a Redis node (the master Sentinel names)", bitnamiPod("redis", "node", 6379, "redis"));
    expectEnv("REDIS_URL", undefined);
    expectEnv("REDIS_SENTINELS", `${release}-redis:26379`);
    expectEnv("REDIS_SENTINEL_MASTER", "mymaster");
    expectSecret("REDIS_PASSWORD", `${release}-redis`, "redis-password");
    expectEnv("DATABASE_REPLICA_URLS", "");
    expectTests(["readiness", "session"]);
  },
  // The wiring contract with the Bitnami charts (rendered by run.sh with --set overrides).
  "contract-bitnami-defaults"() {
    expectEnv("DATABASE_URL", `postgres://nodescale@${release}-postgresql-primary:5432/nodescale`);
    expectEnv("DATABASE_REPLICA_URLS", `postgres://nodescale@${release}-postgresql-read:5432/nodescale`);
    expectEnv("REDIS_URL", `redis://${release}-redis-master:6379/0`);
    expectSecret("PGPASSWORD", `${release}-postgresql`, "password");
    expectSecret("REDIS_PASSWORD", `${release}-redis`, "redis-password");
    expectSecret("SESSION_SECRETS", fullname, "session-secrets");
    // Bitnami's NetworkPolicies with allowExternal: false admit these (issue 13, item 3).
    for (const label of [
      `${release}-postgresql-primary-client`,
      `${release}-postgresql-read-client`,
      `${release}-redis-client`,
    ])
      check(podLabels[label] === "true", `client-labels: the pods carry ${label}: "true"`);
    check(
      podLabels[`${release}-postgresql-client`] === undefined,
      "client-labels: no <release>-postgresql-client (no replication policy admits it)",
    );
  },
  "contract-release-contains-chart-name"() {
    // Bitnami's common.names.fullname: a release name that contains the chart name is used
    // as is (release "mypostgresql": PostgreSQL is "mypostgresql", Redis "mypostgresql-redis").
    expectEnv("DATABASE_URL", `postgres://nodescale@${release}-primary:5432/nodescale`);
    expectEnv("DATABASE_REPLICA_URLS", `postgres://nodescale@${release}-read:5432/nodescale`);
    expectEnv("REDIS_URL", `redis://${release}-redis-master:6379/0`);
    expectSecret("PGPASSWORD", release, "password");
    expectSecret("REDIS_PASSWORD", `${release}-redis`, "redis-password");
    for (const label of [`${release}-primary-client`, `${release}-read-client`, `${release}-redis-client`])
      check(podLabels[label] === "true", `client-labels: the pods carry ${label}: "true"`);
  },
  "contract-existing-secrets"() {
    expectSecret("PGPASSWORD", "pg-creds", "app-password");
    expectSecret("REDIS_PASSWORD", "redis-creds", "secret");
    expectEnv("DATABASE_URL", "postgres://shop@pg-primary:5432/orders");
    expectEnv("DATABASE_REPLICA_URLS", "postgres://shop@pg-read:5432/orders");
    expectEnv("REDIS_URL", "redis://kv-master:6379/0");
  },
  "contract-standalone-postgresql"() {
    expectEnv("DATABASE_URL", `postgres://nodescale@${release}-postgresql:5432/nodescale`);
    check(
      podLabels[`${release}-postgresql-client`] === "true",
      `client-labels: standalone: ${release}-postgresql-client`,
    );
    check(
      !Object.keys(podLabels).some((l) => l.endsWith("-primary-client") || l.endsWith("-read-client")),
      "client-labels: standalone: no primary/read client labels",
    );
    expectEnv("DATABASE_REPLICA_URLS", "");
    expectTests(["readiness", "session"]);
  },
  // Bitnami's policies hardened (allowExternal: false on the primary, the replicas, Redis).
  "contract-client-labels-hardened"() {
    for (const label of [
      `${release}-postgresql-primary-client`,
      `${release}-postgresql-read-client`,
      `${release}-redis-client`,
    ])
      check(podLabels[label] === "true", `client-labels: hardened policies admit the pods (${label})`);
  },
  // A release name long enough that `<fullname>-primary-client` passes 63 characters.
  "contract-long-release-name"() {
    const pgFull = `${release}-postgresql`.slice(0, 63).replace(/-+$/, "");
    const primary = `${pgFull}-primary`.slice(0, 63).replace(/-+$/, "");
    check(
      cmData.DATABASE_URL?.startsWith(`postgres://nodescale@${primary}:`),
      `the primary host is Bitnami's truncated primary fullname ${primary}`,
    );
    check(
      !Object.keys(podLabels).some((l) => l.length > 63),
      `client-labels: keys over 63 characters are left out (${Object.keys(podLabels).join(", ")})`,
    );
  },
  // Bitnami's read Service listens on readReplicas.service.ports.postgresql (issue 13, item 7).
  "contract-replica-port"() {
    expectEnv("DATABASE_URL", `postgres://nodescale@${release}-postgresql-primary:5432/nodescale`);
    expectEnv("DATABASE_REPLICA_URLS", `postgres://nodescale@${release}-postgresql-read:5433/nodescale`);
  },
  // Bitnami reads global.postgresql.* before postgresql.auth.* and the service ports.
  "contract-global-postgresql"() {
    expectSecret("PGPASSWORD", "global-pg", "app-pw");
    expectEnv("DATABASE_URL", `postgres://orders_app@${release}-postgresql-primary:6543/orders`);
    expectEnv("DATABASE_REPLICA_URLS", `postgres://orders_app@${release}-postgresql-read:6543/orders`);
  },
  "private-registry-mesh"() {
    check(
      podSpec.imagePullSecrets?.some((s: { name: string }) => s.name === "regcred"),
      "defects: the app pods pull with regcred",
    );
    for (const p of testPods) {
      check(
        p.spec.imagePullSecrets?.some((s: { name: string }) => s.name === "regcred"),
        `defects: helm test pod ${p.metadata.name} pulls with regcred`,
      );
      check(
        p.metadata.annotations?.["sidecar.istio.io/inject"] === "false" && p.metadata.labels?.team === "shop",
        `defects: helm test pod ${p.metadata.name} takes tests.podAnnotations and tests.podLabels`,
      );
      check(hooks(p) === "test", `helm test pod ${p.metadata.name} stays a test hook`);
    }
    check(
      podSpec.automountServiceAccountToken === true && serviceAccount?.automountServiceAccountToken === true,
      "defects: serviceAccount.automount: true reaches the ServiceAccount and the pods",
    );
    expectTests(["readiness", "session", "replicas"]);
  },
  // The Services listen on other ports than the pods: the policy must allow the pods' ports,
  // which is where the packets arrive (issue 13, item 4).
  "contract-service-ports"() {
    expectEnv("DATABASE_URL", `postgres://nodescale@${release}-postgresql-primary:6543/nodescale`);
    expectEnv("DATABASE_REPLICA_URLS", `postgres://nodescale@${release}-postgresql-read:6544/nodescale`);
    expectEnv("REDIS_URL", `redis://${release}-redis-master:6380/0`);
    expectEgress(
      "through Service port 6543 to the primary's container port",
      bitnamiPod("postgresql", "primary", 5432, "tcp-postgresql"),
    );
    expectEgress(
      "through Service port 6544 to a replica's container port",
      bitnamiPod("postgresql", "read", 5432, "tcp-postgresql"),
    );
    expectEgress("through Service port 6380 to Redis's container port", bitnamiPod("redis", "master", 6379, "redis"));
  },
  "contract-container-ports"() {
    expectEgress("to the primary's container port 5444", bitnamiPod("postgresql", "primary", 5444, "tcp-postgresql"));
    expectEgress("to Redis's container port 6390", bitnamiPod("redis", "master", 6390, "redis"));
    expectEgress("to the old PostgreSQL port 5432", bitnamiPod("postgresql", "primary", 5432, "tcp-postgresql"), false);
  },
  // An external replica on another port than the primary (`host:port` in replicaHosts).
  "contract-external-replica-port"() {
    expectEnv(
      "DATABASE_REPLICA_URLS",
      "postgres://app@db-replica-1.example.internal:6433/shop,postgres://app@db-replica-2.example.internal:6432/shop",
    );
    expectEgress("to the external replica on 6433", external("10.20.2.2", 6433));
    expectEgress("to the external primary on 6432", external("10.20.1.5", 6432));
  },
  // The front door narrowed to ingress-nginx, Prometheus still scraping from elsewhere.
  "contract-ingress-from-narrowed"() {
    expectFrontDoors(["ingress-nginx (namespace ingress-nginx)"]);
    check(reaches(prometheusElsewhere, metricsPort), "front-door: Prometheus in namespace observability still scrapes");
    check(!reaches(prometheusElsewhere), "front-door: Prometheus does not reach the app's HTTP port");
  },
  // The deprecated pair still admits what it names.
  "contract-ingress-namespace-selector"() {
    expectFrontDoors(["Envoy Gateway's proxy (namespace envoy-gateway-system)"]);
  },
  // Conventions (issue 13, item 8): what helm create, podinfo and Bitnami users set.
  conventions() {
    const images = [
      ...initContainers.map((c) => c.image),
      ...podSpec.containers.map((c: { image: string }) => c.image),
      ...testPods.map((p) => p.spec.containers[0].image),
    ];
    check(
      images.every((i) => i.startsWith("registry.example.com/")),
      `conventions: global.imageRegistry prefixes every image, over image.registry (${[...new Set(images)].join(", ")})`,
    );
    for (const [what, spec] of [
      ["the app pods", podSpec],
      ...testPods.map((p) => [`test pod ${p.metadata.name}`, p.spec]),
    ])
      check(
        spec.imagePullSecrets?.some((s: { name: string }) => s.name === "mirror-creds"),
        `conventions: ${what} pull with global.imagePullSecrets (mirror-creds)`,
      );
    const chartObjects = objects.filter((o) => o.metadata.labels?.["app.kubernetes.io/instance"] === release);
    const missing = chartObjects.filter((o) => o.metadata.annotations?.["example.com/team"] !== "shop");
    check(
      chartObjects.length > 0 && missing.length === 0,
      `conventions: commonAnnotations on all ${chartObjects.length} objects (${missing.map((o) => `${o.kind}/${o.metadata.name}`).join(", ") || "none missing"})`,
    );
    check(
      testPods.every((p) => hooks(p) === "test"),
      "conventions: the test pods keep their hook annotation next to commonAnnotations",
    );
    for (const c of [app, migrate]) {
      const names = (c?.env ?? []).map((e: EnvVar) => e.name);
      check(
        names.includes("FEATURE_FLAGS_TOKEN") && names.includes("POD_IP"),
        `conventions: extraEnv (valueFrom a Secret and a field) reaches ${c?.name}`,
      );
      check(
        c?.env?.find((e: EnvVar) => e.name === "POD_IP")?.valueFrom?.fieldRef?.fieldPath === "status.podIP",
        `conventions: ${c?.name}'s POD_IP keeps its valueFrom`,
      );
      check(
        c?.envFrom?.[0]?.configMapRef?.name === fullname && c?.envFrom?.[1]?.secretRef?.name === "shop-extra",
        `conventions: extraEnvFrom follows the chart's ConfigMap in ${c?.name}`,
      );
    }
    check(
      initContainers.map((c) => c.name).join(",") === "wait-for-config,migrate",
      `conventions: initContainers run before the migration (${initContainers.map((c) => c.name).join(", ")})`,
    );
    check(
      podSpec.containers.map((c: { name: string }) => c.name).join(",") === `${app.name},log-shipper`,
      "conventions: extraContainers run beside the app",
    );
    check(
      service.spec.type === "NodePort" &&
        service.spec.ports[0].nodePort === 30080 &&
        service.spec.externalTrafficPolicy === "Local",
      "conventions: service.nodePort and service.externalTrafficPolicy reach the Service",
    );
    check(
      metricsService?.spec.type === "ClusterIP" && metricsService.spec.ports[0].nodePort === undefined,
      "conventions: the metrics Service stays ClusterIP",
    );
    check(
      deployment.spec.strategy.rollingUpdate.maxSurge === 1 &&
        deployment.spec.strategy.rollingUpdate.maxUnavailable === 0,
      "conventions: updateStrategy reaches the Deployment",
    );
    check(
      pdb?.spec.minAvailable === 1 && pdb.spec.maxUnavailable === undefined,
      "conventions: podDisruptionBudget.minAvailable replaces maxUnavailable",
    );
  },
  "contract-redis-no-auth"() {
    check(!secretRef("REDIS_PASSWORD"), "no REDIS_PASSWORD when redis.auth.enabled is false");
  },
};
// With the real Bitnami subcharts (after `helm dependency build`): every Service the app
// connects to and every Secret key it reads exists in the same render.
cases.full = () => {
  const hostPort = (url: string) => {
    const u = new URL(url);
    return [u.hostname, Number(u.port)] as const;
  };
  const urls = [
    cmData.DATABASE_URL,
    ...(cmData.DATABASE_REPLICA_URLS ? cmData.DATABASE_REPLICA_URLS.split(",") : []),
    cmData.REDIS_URL,
  ].filter((url): url is string => Boolean(url));
  const endpoints = urls.map(hostPort);
  for (const s of [
    ...(cmData.REDIS_SENTINELS ?? "").split(","),
    ...(cmData.REDIS_CLUSTER_NODES ?? "").split(","),
  ].filter(Boolean))
    endpoints.push([s.split(":")[0] ?? "", Number(s.split(":")[1])] as const);
  for (const [host, port] of endpoints) {
    const svc = one("Service", host);
    check(
      svc?.spec.ports.some((p: any) => p.port === port),
      `Service ${host}:${port} exists in the render`,
    );
  }
  // The bundled services pull the pinned charts' own default tags from bitnamilegacy.
  for (const o of objects.filter(
    (x) =>
      ["postgresql", "redis", "redis-cluster"].includes(x.metadata.labels?.["app.kubernetes.io/name"] ?? "") &&
      x.spec?.template?.spec,
  )) {
    const spec = o.spec.template.spec;
    for (const c of [...(spec.initContainers ?? []), ...spec.containers])
      check(/\/bitnamilegacy\//.test(c.image), `images: ${o.kind} ${o.metadata.name}/${c.name} pulls ${c.image}`);
  }
  for (const e of env) {
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) continue;
    const secret = one("Secret", ref.name);
    check(
      secret && ref.key in { ...secret.data, ...secret.stringData },
      `${e.name}: Secret ${ref.name} with key ${ref.key} exists in the render`,
    );
  }
};

// Combinations of preStop, drain, timeout and grace period (run.sh, shutdown_budget): the
// invariant above holds for each; here, a computed grace period is exactly the documented sum.
if (/^shutdown-budget-\d+$/.test(caseName)) {
  cases[caseName] = () => {
    const need =
      values.preStopSleepSeconds +
      Math.ceil((values.config.shutdownDrainMs + values.config.shutdownTimeoutMs + 5000) / 1000) +
      2;
    const want = values.terminationGracePeriodSeconds ?? need;
    check(
      podSpec.terminationGracePeriodSeconds === want,
      `terminationGracePeriodSeconds is ${values.terminationGracePeriodSeconds === null ? "preStop + ceil((drain + timeout + 5 s) / 1 s) + 2 s" : "the value set"}: ${want} (got ${podSpec.terminationGracePeriodSeconds})`,
    );
    expectEnv("SHUTDOWN_TIMEOUT_MS", String(values.config.shutdownTimeoutMs));
  };
}
const run = cases[caseName];
check(run, `expectations exist for case "${caseName}"`);
run?.();

// The failed ones again at the end, where a truncated log still shows them.
for (const message of failed) console.log(`  failed: ${message}`);
console.log(`  ${failures === 0 ? "all assertions hold" : `${failures} assertion(s) failed`}`);
process.exit(failures === 0 ? 0 : 1);
