// Assertions of k8s-tests/static/run.sh on the objects kube-validate decoded (its -json
// output) and on the dry run of kind-up. One subcommand per check; prints what it verified,
// exits 1 with the reason on the first failure.
//
//   node k8s-tests/static/assert.ts cluster  objects.json
//   node k8s-tests/static/assert.ts render   objects.json <ingress|gateway> <image> gateway-objects.json
//   node k8s-tests/static/assert.ts dry-run  dry-run.txt <ingress|gateway> versions.env
//   node k8s-tests/static/assert.ts envoy-rollout gateway-objects.json
//   node k8s-tests/static/assert.ts envoy-idle    chart-objects.json gateway-objects.json

import { readFileSync } from "node:fs";

type Obj = Record<string, unknown> & { kind?: string; metadata?: { name?: string; namespace?: string } };

function fail(message: string): never {
  console.error(`not ok - ${message}`);
  process.exit(1);
}
function ok(condition: unknown, message: string): void {
  if (!condition) fail(message);
  console.log(`ok - ${message}`);
}
function objects(path: string): Obj[] {
  return JSON.parse(readFileSync(path, "utf8")) as Obj[];
}
// biome-ignore lint/suspicious/noExplicitAny: walking untyped JSON
function dig(o: any, ...path: (string | number)[]): any {
  return path.reduce((v, k) => (v == null ? undefined : v[k]), o);
}
function one(all: Obj[], kind: string): Obj {
  const found = all.filter((o) => o.kind === kind);
  if (found.length !== 1) fail(`expected exactly one ${kind}, found ${found.length}`);
  return found[0] as Obj;
}

function cluster(path: string): void {
  const c = one(objects(path), "Cluster");
  ok(c.name === "nodescale", `the cluster is named nodescale, as up.sh and down.sh expect (${String(c.name)})`);
  const nodes = (c.nodes ?? []) as Obj[];
  const planes = nodes.filter((n) => n.role === "control-plane");
  const workers = nodes.filter((n) => n.role === "worker");
  ok(
    planes.length === 1 && workers.length === 2,
    `one control plane and two workers (${planes.length}, ${workers.length})`,
  );
  const cp = planes[0];
  ok(dig(cp, "labels", "ingress-ready") === "true", "the control plane is labelled ingress-ready=true");
  const maps = (dig(cp, "extraPortMappings") ?? []) as Obj[];
  for (const port of [80, 443]) {
    const m = maps.find((x) => x.hostPort === port);
    ok(m && m.containerPort === port, `host port ${port} maps to the control plane's port ${port}`);
    ok(m?.listenAddress === "127.0.0.1", `host port ${port} listens on loopback only`);
  }
  ok(!JSON.stringify(c).includes("image"), "no node image in cluster.yaml: up.sh passes the pinned --image");
}

function containers(all: Obj[]): { owner: string; c: Obj }[] {
  const out: { owner: string; c: Obj }[] = [];
  for (const o of all) {
    const spec = o.kind === "Pod" ? dig(o, "spec") : dig(o, "spec", "template", "spec");
    for (const c of [...(dig(spec, "containers") ?? []), ...(dig(spec, "initContainers") ?? [])] as Obj[]) {
      out.push({ owner: `${o.kind}/${o.metadata?.name}`, c });
    }
  }
  return out;
}

// Does some NetworkPolicy rule let pods of namespace NS reach the app's HTTP port: a rule with
// no `from` (any source), or a peer whose namespaceSelector selects NS by name (or all)?
function admits(all: Obj[], ns: string): boolean {
  const rules = all
    .filter((o) => o.kind === "NetworkPolicy")
    .flatMap((o) => (dig(o, "spec", "ingress") ?? []) as Obj[])
    .filter((r) => ((r.ports ?? []) as Obj[]).some((p) => p.port === "http"));
  return rules.some((r) => {
    const from = r.from as Obj[] | undefined;
    if (!from || from.length === 0) return true;
    return from.some((peer) => {
      const sel = peer.namespaceSelector as Obj | undefined;
      const pods = peer.podSelector as Obj | undefined;
      if (!sel || (pods && (Object.keys(pods.matchLabels ?? {}).length > 0 || pods.matchExpressions))) return false;
      const labels = (sel.matchLabels ?? {}) as Record<string, string>;
      if (Object.keys(labels).length === 0 && !sel.matchExpressions) return true;
      return labels["kubernetes.io/metadata.name"] === ns && Object.keys(labels).length === 1;
    });
  });
}

function render(path: string, mode: string, image: string, gatewayPath: string): void {
  const all = objects(path);
  const app = containers(all);
  ok(app.length >= 3, `the app, its migrate initContainer and the test pods have containers (${app.length})`);
  for (const { owner, c } of app) {
    ok(c.image === image, `${owner} runs ${image} (${String(c.image)})`);
    ok(c.imagePullPolicy === "Never", `${owner} never pulls (the image was loaded with kind load)`);
  }
  const hpa = one(all, "HorizontalPodAutoscaler");
  const down = dig(hpa, "spec", "behavior", "scaleDown", "stabilizationWindowSeconds");
  ok(typeof down === "number" && down <= 60, `the HPA scales down after a short stabilization window (${down}s)`);
  ok(dig(hpa, "spec", "minReplicas") >= 2, "at least two replicas, so requests spread over pods");
  const cm = all.find((o) => o.kind === "ConfigMap" && dig(o, "data", "LOGIN_RATE_LIMIT_PER_MINUTE"));
  ok(Number(dig(cm, "data", "LOGIN_RATE_LIMIT_PER_MINUTE")) >= 500, "the login rate limit is raised for the tests");
  if (mode === "ingress") {
    const ing = one(all, "Ingress");
    ok(!all.some((o) => o.kind === "HTTPRoute"), "no HTTPRoute on the ingress path");
    ok(dig(ing, "spec", "ingressClassName") === "nginx", "the Ingress is of class nginx");
    ok(!dig(ing, "spec", "rules", 0, "host"), "the Ingress matches any host (http://127.0.0.1 reaches it)");
    ok(admits(all, "ingress-nginx"), "the app's NetworkPolicy lets the ingress-nginx namespace reach its HTTP port");
  } else {
    const route = one(all, "HTTPRoute");
    ok(!all.some((o) => o.kind === "Ingress"), "no Ingress on the Gateway API path");
    const gw = one(objects(gatewayPath), "Gateway");
    const ref = dig(route, "spec", "parentRefs", 0);
    ok(
      ref.name === gw.metadata?.name && ref.namespace === gw.metadata?.namespace,
      `the HTTPRoute attaches to the Gateway of gateway.yaml (${ref.namespace}/${ref.name})`,
    );
    const listeners = (dig(gw, "spec", "listeners") ?? []) as Obj[];
    ok(
      listeners.some((l) => l.name === ref.sectionName && l.port === 80),
      `the Gateway has listener ${ref.sectionName} on port 80`,
    );
    ok(
      dig(gw, "spec", "listeners", 0, "allowedRoutes", "namespaces", "from") === "All",
      "the Gateway admits routes from the app's namespace",
    );
    ok(!dig(route, "spec", "hostnames"), "the HTTPRoute matches any host");
    ok(
      admits(all, gw.metadata?.namespace as string),
      `the app's NetworkPolicy lets the gateway's namespace (${gw.metadata?.namespace}) reach its HTTP port`,
    );
    const proxy = one(objects(gatewayPath), "EnvoyProxy");
    const ports = dig(
      proxy,
      "spec",
      "provider",
      "kubernetes",
      "envoyDeployment",
      "patch",
      "value",
      "spec",
      "template",
      "spec",
      "containers",
      0,
      "ports",
    ) as Obj[];
    ok(
      ports?.some((p) => p.hostPort === 80 && p.containerPort === 10080),
      "Envoy's listener port 80 (container port 10080) is on host port 80",
    );
    ok(
      dig(proxy, "spec", "provider", "kubernetes", "envoyDeployment", "pod", "nodeSelector", "ingress-ready") ===
        "true",
      "Envoy runs on the ingress-ready node",
    );
  }
}

// One Envoy pod holding host port 80: a rollout that surges a second pod waits forever for
// the port, so the proxy must be replaced in place (Recreate, or no surge and one pod down).
function envoyReplacedInPlace(gatewayPath: string): void {
  const proxy = one(objects(gatewayPath), "EnvoyProxy");
  const deployment = dig(proxy, "spec", "provider", "kubernetes", "envoyDeployment");
  const strategy = dig(deployment, "strategy");
  const surge = dig(strategy, "rollingUpdate", "maxSurge");
  const down = dig(strategy, "rollingUpdate", "maxUnavailable");
  ok(dig(deployment, "replicas") === 1, "one Envoy replica (the one node with host port 80)");
  ok(
    strategy?.type === "Recreate" ||
      (strategy?.type === "RollingUpdate" && [0, "0", "0%"].includes(surge) && (down === 1 || down === "100%")),
    `Envoy's single hostPort pod is replaced in place, never surged (strategy ${JSON.stringify(strategy ?? "default: 25% surge, 25% unavailable")})`,
  );
}

/** A Gateway API Duration ("1h", "60s", "1m30s", "500ms") in milliseconds. */
function durationMs(d: unknown): number {
  if (typeof d !== "string" || !/^(\d+(h|m|s|ms))+$/.test(d)) fail(`not a Gateway API duration: ${String(d)}`);
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const m of d.matchAll(/(\d+)(ms|h|m|s)/g)) total += Number(m[1]) * (unit[m[2] as string] as number);
  return total;
}

// Envoy's upstream connections idle for an hour by default; the app closes an idle one after
// KEEP_ALIVE_TIMEOUT_MS. Envoy must give a connection up before the app does, or a request
// races the app's close and gets a 503.
function envoyIdleBelowApp(appPath: string, gatewayPath: string): void {
  const app = objects(appPath);
  const gatewayObjects = objects(gatewayPath);
  const gw = one(gatewayObjects, "Gateway");
  const cm = app.find((o) => o.kind === "ConfigMap" && dig(o, "data", "KEEP_ALIVE_TIMEOUT_MS"));
  const appMs = Number(dig(cm, "data", "KEEP_ALIVE_TIMEOUT_MS"));
  ok(appMs > 0, `the app's keep-alive timeout is set (KEEP_ALIVE_TIMEOUT_MS=${appMs})`);
  const policies = gatewayObjects.filter(
    (o) =>
      o.kind === "BackendTrafficPolicy" &&
      o.metadata?.namespace === gw.metadata?.namespace &&
      ((dig(o, "spec", "targetRefs") ?? []) as Obj[]).some((r) => r.kind === "Gateway" && r.name === gw.metadata?.name),
  );
  ok(policies.length === 1, `one BackendTrafficPolicy targets Gateway ${gw.metadata?.name} (${policies.length})`);
  const idle = dig(policies[0], "spec", "timeout", "http", "connectionIdleTimeout");
  const idleMs = idle === undefined ? 3_600_000 : durationMs(idle);
  ok(
    idleMs < appMs,
    `Envoy drops an idle upstream connection after ${idle ?? "1h (default)"}, before the app does (${appMs} ms)`,
  );
}

function dryRun(path: string, mode: string, versionsPath: string): void {
  const text = readFileSync(path, "utf8");
  const pins = new Map<string, string>();
  for (const line of readFileSync(versionsPath, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) pins.set(m[1], m[2]);
  }
  const commands = text.split("\n").filter((l) => l.trim() && !l.startsWith("#"));
  ok(commands.length >= 10, `the dry run prints the command sequence (${commands.length} commands)`);
  ok(!/latest/i.test(text), "no `latest` anywhere in the dry run");
  const want = [
    "KIND_NODE_IMAGE",
    "METRICS_SERVER_CHART_VERSION",
    "METRICS_SERVER_VERSION",
    "APP_IMAGE_TAG",
    ...(mode === "gateway"
      ? ["GATEWAY_API_CRDS_VERSION", "ENVOY_GATEWAY_VERSION"]
      : ["INGRESS_NGINX_CHART_VERSION", "INGRESS_NGINX_CONTROLLER_VERSION"]),
  ];
  for (const key of want) {
    const v = pins.get(key);
    ok(v && text.includes(v), `${key}=${v} from tools/versions.env appears in the dry run`);
  }
  // kind, helm and kubectl are the user's when within range, else installed: said per tool.
  const tools = new Map<string, string>();
  for (const name of ["kind", "helm", "kubectl"]) {
    const m = new RegExp(`^# ${name}: (use|install \\S+ at) (\\S+)`, "m").exec(text);
    ok(m, `the dry run says which ${name} it uses (${m?.[0] ?? "nothing"})`);
    tools.set(name, (m?.[2] ?? "").replace(/[(,]$/, ""));
  }
  const values = new Set(pins.values());
  // Every version-like argument is a pin of tools/versions.env.
  const versionArgs = [
    ...text.matchAll(/--version (\S+)/g),
    ...text.matchAll(/--image (\S+)/g),
    ...text.matchAll(/image\.tag=(\S+)/g),
    ...text.matchAll(/releases\/download\/([^/\s]+)\//g),
  ].map((m) => m[1] as string);
  ok(versionArgs.length >= 3, `found ${versionArgs.length} version arguments: ${versionArgs.join(", ")}`);
  for (const v of versionArgs) ok(values.has(v), `${v} is a pin in tools/versions.env`);
  const helm = tools.get("helm") as string;
  const kubectl = tools.get("kubectl") as string;
  for (const c of commands.filter(
    (l) =>
      (l.startsWith(`${helm} upgrade --install `) || l.startsWith(`${helm} template `)) &&
      !l.includes(" charts/nodescale "),
  )) {
    ok(/--version \S+/.test(c), `a third-party chart is installed at a pinned --version: ${c.slice(0, 80)}...`);
  }
  for (const c of commands.filter((l) => l.startsWith(`${kubectl} `) || l.includes(` | ${kubectl} `))) {
    ok(c.includes("--context kind-nodescale"), `kubectl only talks to kind-nodescale: ${c.slice(0, 70)}...`);
  }
  for (const c of commands.filter((l) => /^\S+ (upgrade|install|uninstall) /.test(l) && l.startsWith(`${helm} `))) {
    ok(c.includes("--kube-context kind-nodescale"), `helm only talks to kind-nodescale: ${c.slice(0, 70)}...`);
  }
  ok(/kind load docker-image nodescale:\S+ /.test(text), "the app image is loaded into kind under its pinned tag");
  const order = [
    "kind create cluster",
    "kind load docker-image",
    "metrics-server",
    "chart-deps.sh",
    "upgrade --install nodescale",
    "rollout status",
  ];
  const positions = order.map((s) => text.indexOf(s));
  ok(
    positions.every((p, i) => p >= 0 && (i === 0 || p > (positions[i - 1] as number))),
    `the steps run in order: ${order.join(" -> ")}`,
  );
  ok(!text.includes("dependency update"), "no helm dependency update (it needs the registry on every run)");
  // The Kubernetes minors the front door's project lists (versions.env, with sources): kind-up
  // says so when the cluster's is not one of them.
  const minor = Number((pins.get("KUBE_VERSION") as string).split(".")[1]);
  const [door, supported] =
    mode === "gateway"
      ? ["Envoy Gateway", pins.get("ENVOY_GATEWAY_KUBE_SUPPORTED") as string]
      : ["ingress-nginx", pins.get("INGRESS_NGINX_KUBE_SUPPORTED") as string];
  const [min, max] = supported.split("..").map((v) => Number(v.split(".")[1]));
  const noted = new RegExp(
    `^# note: ${door} \\S+ lists Kubernetes ${supported.replace("..", " to ")} as supported; this cluster is 1\\.${minor}`,
    "m",
  ).test(text);
  const outside = minor < (min as number) || minor > (max as number);
  ok(
    noted === outside,
    `${door} lists Kubernetes ${supported}; the cluster is 1.${minor}: ${outside ? "the dry run says it is untested upstream" : "no note"}`,
  );
  if (mode === "gateway") {
    ok(text.includes("standard-install.yaml"), "the Gateway API CRDs are the standard channel");
    ok(!text.includes("ingress-nginx"), "no ingress-nginx on the Gateway API path");
    ok(text.includes("values-kind-gateway.yaml"), "the chart gets the HTTPRoute values");
  } else {
    ok(!/envoy|gateway-api|values-kind-gateway/i.test(text), "no Gateway API on the ingress path");
  }
}

const [cmd, ...args] = process.argv.slice(2);
switch (cmd) {
  case "cluster":
    cluster(args[0] as string);
    break;
  case "render":
    render(args[0] as string, args[1] as string, args[2] as string, args[3] as string);
    break;
  case "envoy-rollout":
    envoyReplacedInPlace(args[0] as string);
    break;
  case "envoy-idle":
    envoyIdleBelowApp(args[0] as string, args[1] as string);
    break;
  case "dry-run":
    dryRun(args[0] as string, args[1] as string, args[2] as string);
    break;
  default:
    fail(`unknown subcommand ${cmd}`);
}
