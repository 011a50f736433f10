// What a cluster can prove, for the end-to-end suite (k8s-tests/*.test.ts, `make e2e`).
//
// The simulated cluster (`make cluster-sim-up`) is a real control plane, but its nodes and
// pods are kwok's: a pod becomes Running and Ready without any container starting, nothing
// listens on a pod IP, and no kube-proxy, CNI, DNS or ingress controller runs. So an e2e check
// that sends traffic to the app, or waits for a container to do something, cannot run there;
// one about what the API server and the controllers do (objects accepted, pods scheduled and
// Ready, rollouts, the HPA acting on the metrics API) can.
//
// The real-node cluster (`make cluster-real-up`) runs real containers on a real kubelet with
// kube-proxy, CoreDNS and metrics-server, but no ingress controller or Gateway (no image of
// one can be had without a registry) and a bridge CNI that enforces no NetworkPolicy. Its
// front door is the app's Service, reached from the host through kube-proxy.
//
// Wiring (suggested): the suite detects the cluster once, then for each check
//   const why = cannotRun("helm-test", caps);
//   test(name, { skip: why && allowedToSkip(caps) ? why : false }, ...)
//   and when `why` is set but skipping is not allowed, the test fails with `why`.
// `make e2e-sim` sets E2E_SKIP_UNSUPPORTED=cluster-sim (the explicit permission DESIGN.md asks
// for: no test is skipped silently); on kind nothing is skipped.
// Data only, no side effects: importing this file does not touch a cluster.

/** Something an e2e check needs from the cluster. */
export type Need =
  | "api-server" // objects accepted by a real API server
  | "scheduler-and-controllers" // pods scheduled, ReplicaSets rolled, Jobs completed
  | "running-containers" // the app's processes really run in the pods
  | "pod-network" // pod IPs reachable, Services routed (kube-proxy / CNI), cluster DNS
  | "front-door" // one address that balances over the app's pods (Ingress, Gateway or Service)
  | "ingress-controller" // an Ingress or Gateway implementation serving traffic
  | "network-policy" // NetworkPolicies enforced by the CNI
  | "metrics-api" // metrics.k8s.io served (metrics-server), so the HPA acts
  | "real-cpu-load"; // CPU usage caused by real requests (not simulated usage)

export type ClusterKind = "kind" | "cluster-sim" | "cluster-real" | "other";

export interface Capabilities {
  kind: ClusterKind;
  has: ReadonlySet<Need>;
  /** Why a missing need is missing on this cluster. */
  why: Readonly<Partial<Record<Need, string>>>;
}

export const CLUSTER_SIM: Capabilities = {
  kind: "cluster-sim",
  has: new Set<Need>(["api-server", "scheduler-and-controllers", "metrics-api"]),
  why: {
    "running-containers":
      "kwok's pods run no container: they turn Running and Ready by kwok's Stages, so no app process answers",
    "pod-network": "no kube-proxy, CNI or cluster DNS runs on the simulated cluster: pod and Service IPs lead nowhere",
    "front-door": "nothing answers on a pod or Service IP of the simulated cluster",
    "ingress-controller": "no ingress controller or Gateway implementation can run without containers",
    "network-policy": "no CNI runs on the simulated cluster",
    "real-cpu-load":
      "CPU usage on kwok is simulated (a ClusterResourceUsage), not caused by requests: hpa.test.ts covers the HPA with it",
  },
};

const EVERYTHING: readonly Need[] = [
  "api-server",
  "scheduler-and-controllers",
  "running-containers",
  "pod-network",
  "front-door",
  "ingress-controller",
  "network-policy",
  "metrics-api",
  "real-cpu-load",
];

/** A cluster with real nodes (kind, or any other): everything is assumed present. */
export function realCluster(kind: ClusterKind): Capabilities {
  return { kind, has: new Set<Need>(EVERYTHING), why: {} };
}

export const CLUSTER_REAL: Capabilities = {
  kind: "cluster-real",
  has: new Set<Need>(EVERYTHING.filter((n) => n !== "ingress-controller" && n !== "network-policy")),
  why: {
    "ingress-controller":
      "no ingress controller or Gateway image can be had without a registry: the real-node cluster's front door is the app's Service (kube-proxy), so the Ingress and HTTPRoute are rendered and validated only",
    "network-policy":
      "the real node's CNI is Debian's bridge plugin, which enforces no NetworkPolicy: the chart's policies are rendered and validated only (make chart-test)",
  },
};

/** The label cluster-real.sh gives its node (kubelet --node-labels). */
export const REAL_NODE_LABEL = "nodescale.dev/cluster";

/** The e2e checks of issue 6 and what each needs. Ids are stable: the suite refers to them. */
export const E2E_CHECKS = {
  "pods-ready": { name: "all pods ready", needs: ["api-server", "scheduler-and-controllers"] },
  "reachable-through-ingress": {
    name: "the app reachable through the ingress (or gateway)",
    needs: ["running-containers", "pod-network", "ingress-controller"],
  },
  "session-across-pods": {
    name: "a login, then 100 requests served by at least 2 pods with the session intact",
    needs: ["running-containers", "pod-network", "front-door"],
  },
  "replica-reads": {
    name: "item reads served by a read replica; read-your-writes holds",
    needs: ["running-containers", "pod-network", "front-door"],
  },
  "helm-test": {
    name: "helm test passes",
    // kwok completes only Job-owned pods; a bare test pod would stay Running, and its
    // "result" would say nothing about the app.
    needs: ["running-containers", "pod-network"],
  },
  "rolling-upgrade-no-loss": {
    name: "a rolling upgrade under steady load loses no request",
    needs: ["running-containers", "pod-network", "front-door"],
  },
  "pod-delete-no-loss": {
    name: "deleting a pod under load loses no request",
    needs: ["running-containers", "pod-network", "front-door"],
  },
  "hpa-burst": {
    name: "the HPA scales up under a load burst and back down after",
    needs: ["scheduler-and-controllers", "metrics-api", "real-cpu-load", "running-containers", "front-door"],
  },
} as const satisfies Record<string, { name: string; needs: readonly Need[] }>;

export type CheckId = keyof typeof E2E_CHECKS;

/** Why `check` cannot run on this cluster, or undefined when it can. */
export function cannotRun(check: CheckId, caps: Capabilities): string | undefined {
  const missing = E2E_CHECKS[check].needs.filter((n: Need) => !caps.has.has(n));
  if (missing.length === 0) return undefined;
  return `cannot run on ${caps.kind}: ${missing.map((n) => caps.why[n] ?? `no ${n}`).join("; ")}`;
}

/** Whether the run was told to skip what this cluster cannot do (E2E_SKIP_UNSUPPORTED=<kind>). */
export function allowedToSkip(caps: Capabilities, env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.E2E_SKIP_UNSUPPORTED ?? "").split(",").includes(caps.kind);
}

/**
 * The cluster's kind from its nodes (`kubectl get nodes -o json`): every node a kwok node
 * (annotation kwok.x-k8s.io/node=fake) means the simulated cluster; every node labelled
 * REAL_NODE_LABEL=cluster-real the real-node cluster; kind's nodes run a kindest/node image
 * (`kubeletVersion` real, providerID `kind://...`).
 */
export function detect(nodes: {
  items: {
    metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
    spec?: { providerID?: string };
  }[];
}): Capabilities {
  const items = nodes.items;
  if (items.length > 0 && items.every((n) => n.metadata.annotations?.["kwok.x-k8s.io/node"] === "fake")) {
    return CLUSTER_SIM;
  }
  if (items.length > 0 && items.every((n) => n.metadata.labels?.[REAL_NODE_LABEL] === "cluster-real")) {
    return CLUSTER_REAL;
  }
  if (items.length > 0 && items.every((n) => n.spec?.providerID?.startsWith("kind://"))) return realCluster("kind");
  return realCluster("other");
}
