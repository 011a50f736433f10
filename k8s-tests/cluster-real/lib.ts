// Helpers of the real-node cluster's tests: find the running cluster (`make cluster-real-up`
// writes .local/cluster-real/cluster.env), install the chart on it the way kind-up does, and
// reach the host's Redis and PostgreSQL (local/) the pods use. Commands and waits come from
// the simulated cluster's helpers.
import { join } from "node:path";
import { loadTopology, type Topology } from "../../local/topology.ts";
import { assertApiReady, clusterEnv, type Result, ROOT, run, strippedChart } from "../cluster-sim/lib.ts";

export { eventually, must, ROOT, run, sleep, strippedChart } from "../cluster-sim/lib.ts";

export const STATE = process.env.CLUSTER_REAL_STATE ?? join(ROOT, ".local/cluster-real");
export const BIN = join(ROOT, "tools/bin");
/** What kind-up installs with (k8s-tests/kind/up.sh): the same values, the same flags. */
export const KIND_VALUES = process.env.CLUSTER_REAL_KIND_VALUES ?? join(ROOT, "k8s-tests/kind/values-kind.yaml");
export const NAMESPACE = "nodescale";
export const RELEASE = "nodescale";
/**
 * Another chart to install instead of charts/nodescale, to show what an older chart does
 * (with CLUSTER_REAL_KIND_VALUES, that chart's own kind values, and CLUSTER_REAL_EXTRA_VALUES,
 * one more values file after the cluster's own).
 */
export const CHART_SOURCE = process.env.CLUSTER_REAL_CHART ?? join(ROOT, "charts/nodescale");

export interface RealCluster {
  kubeconfig: string;
  server: string;
  node: string;
  nodeIp: string;
  serviceCidr: string;
  podCidr: string;
  /** values-external.yaml: the chart's external-services mode pointed at the host's stack */
  values: string;
  stack: string;
  appImage: string;
  imageTag: string;
}

/** The running real-node cluster, or an error that says how to start one (never a skip). */
export async function realCluster(): Promise<RealCluster> {
  const need = clusterEnv(join(STATE, "cluster.env"), "real-node cluster", "cluster-real");
  const appImage = need("CLUSTER_REAL_APP_IMAGE");
  const c: RealCluster = {
    kubeconfig: need("KUBECONFIG"),
    server: need("CLUSTER_REAL_SERVER"),
    node: need("CLUSTER_REAL_NODE"),
    nodeIp: need("CLUSTER_REAL_NODE_IP"),
    serviceCidr: need("CLUSTER_REAL_SERVICE_CIDR"),
    podCidr: need("CLUSTER_REAL_POD_CIDR"),
    values: need("CLUSTER_REAL_VALUES"),
    stack: need("CLUSTER_REAL_STACK"),
    appImage,
    imageTag: appImage.slice(appImage.lastIndexOf(":") + 1),
  };
  await assertApiReady(c.kubeconfig, c.server, "real-node cluster", "cluster-real");
  return c;
}

export function kubectl(c: RealCluster, args: string[], timeoutMs = 120_000): Promise<Result> {
  return run(join(BIN, "kubectl"), ["--kubeconfig", c.kubeconfig, "--request-timeout=30s", ...args], { timeoutMs });
}

export async function kubectlMust(c: RealCluster, args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await kubectl(c, args, timeoutMs);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

// biome-ignore lint/suspicious/noExplicitAny: untyped JSON from kubectl
export type Json = any;

export async function getJson(c: RealCluster, args: string[]): Promise<Json> {
  return JSON.parse(await kubectlMust(c, ["get", ...args, "-o", "json"]));
}

/** Helm 4 with its cache and config kept in the cluster's state folder. */
export function helm(c: RealCluster, args: string[], timeoutMs = 15 * 60_000): Promise<Result> {
  return run(join(BIN, "helm4"), ["--kubeconfig", c.kubeconfig, ...args], {
    timeoutMs,
    env: {
      HELM_CACHE_HOME: join(STATE, "helm/cache"),
      HELM_CONFIG_HOME: join(STATE, "helm/config"),
      HELM_DATA_HOME: join(STATE, "helm/data"),
    },
  });
}

/**
 * The chart as a user's cluster gets it here: a copy of CHART_SOURCE without its Bitnami
 * dependencies (they cannot be pulled on this machine, and Helm refuses a chart whose
 * declared dependencies are missing even when their condition is false).
 */
export function chartCopy(): { dir: string; dispose: () => void } {
  return strippedChart(CHART_SOURCE);
}

/**
 * `helm upgrade --install` exactly as k8s-tests/kind/up.sh runs it (values-kind.yaml, the
 * image tag, --wait, a 10-minute timeout), with the external services of this cluster and
 * any extra values files.
 */
export function installArgs(c: RealCluster, chartDir: string, namespace: string, extra: string[] = []): string[] {
  return [
    "upgrade",
    "--install",
    RELEASE,
    chartDir,
    "--namespace",
    namespace,
    "--create-namespace",
    "-f",
    KIND_VALUES,
    "-f",
    c.values,
    ...(process.env.CLUSTER_REAL_EXTRA_VALUES ? ["-f", process.env.CLUSTER_REAL_EXTRA_VALUES] : []),
    ...extra,
    "--set",
    `image.tag=${c.imageTag}`,
    "--wait",
    "--timeout",
    process.env.CLUSTER_REAL_HELM_TIMEOUT ?? "10m",
  ];
}

/** The host's Redis and PostgreSQL of this cluster (local/'s stack), to query or to stop. */
export function backingServices(c: RealCluster): Topology {
  const stack = loadTopology({ name: c.stack });
  if (!stack)
    throw new Error(`the stack '${c.stack}' of the real-node cluster is gone: make cluster-real-down cluster-real-up`);
  return stack;
}

/** The ClusterIP URL of the release's Service: the real-node cluster's front door. */
export async function serviceUrl(c: RealCluster, namespace = NAMESPACE): Promise<string> {
  const svc = await getJson(c, ["service", RELEASE, "-n", namespace]);
  const port = svc.spec.ports.find((p: Json) => p.name === "http")?.port ?? svc.spec.ports[0].port;
  return `http://${svc.spec.clusterIP}:${port}`;
}

export function isReady(pod: Json): boolean {
  return (
    !pod.metadata.deletionTimestamp &&
    pod.status?.conditions?.some((x: Json) => x.type === "Ready" && x.status === "True") === true
  );
}

/** The app's pods of the release (not the helm test pods). */
export async function appPods(c: RealCluster, namespace = NAMESPACE): Promise<Json[]> {
  const pods = await getJson(c, [
    "pods",
    "-n",
    namespace,
    "-l",
    `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/name=nodescale`,
  ]);
  return pods.items;
}
