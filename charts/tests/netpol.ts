// What a rendered NetworkPolicy lets through, evaluated the way the Kubernetes API defines it
// (networking.k8s.io/v1): a policy applies to the pods its podSelector selects; traffic is
// allowed when any rule of the direction matches both the peer and the port. A rule without
// `from`/`to` matches every peer; without `ports`, every port. A named port is the
// destination container's port of that name. Ports are those the packet carries at the
// destination pod, after a Service translated its port to the container's.
//
// Used by charts/tests/assert.ts to test the chart's policy against each kind of front door
// and each backing service, as traffic would meet it on a cluster.

export type Labels = Record<string, string>;

/** A pod (with its namespace's labels) or an address outside the pod network. */
export type Peer = {
  ip: string;
  pod?: { namespace: string; namespaceLabels: Labels; labels: Labels };
};

/** The pod a packet is addressed to, and the container port it reaches. */
export type Target = {
  namespace: string;
  labels: Labels;
  containerPorts: { name?: string; containerPort: number; protocol?: string }[];
  port: number;
};

type Selector = { matchLabels?: Labels; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
type PolicyPeer = {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: { cidr: string; except?: string[] };
};
type PolicyPort = { protocol?: string; port?: number | string; endPort?: number };
type Rule = { from?: PolicyPeer[]; to?: PolicyPeer[]; ports?: PolicyPort[] };
export type NetworkPolicy = {
  metadata: { namespace?: string };
  spec: { podSelector: Selector; policyTypes?: string[]; ingress?: Rule[]; egress?: Rule[] };
};

export function selects(selector: Selector | undefined, labels: Labels): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const value = labels[e.key] ?? "";
    if (e.operator === "In" && !(has && e.values?.includes(value))) return false;
    if (e.operator === "NotIn" && has && e.values?.includes(value)) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

function ipv4(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not IPv4: ${ip}`);
  return parts.reduce((n, p) => n * 256 + p, 0);
}

export function inCidr(ip: string, cidr: string): boolean {
  const [base = "", bits = "32"] = cidr.split("/");
  if (base.includes(":") || ip.includes(":")) return false;
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base) / size);
}

/** Whether `peer` matches one entry of a rule's from/to, seen from a policy in `policyNs`. */
function peerMatches(entry: PolicyPeer, peer: Peer, policyNs: string): boolean {
  if (entry.ipBlock) {
    return inCidr(peer.ip, entry.ipBlock.cidr) && !(entry.ipBlock.except ?? []).some((c) => inCidr(peer.ip, c));
  }
  const pod = peer.pod;
  if (!pod) return false;
  if (entry.namespaceSelector) {
    if (!selects(entry.namespaceSelector, pod.namespaceLabels)) return false;
  } else if (pod.namespace !== policyNs) {
    return false;
  }
  return selects(entry.podSelector, pod.labels);
}

function portMatches(ports: PolicyPort[] | undefined, target: Target): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? "TCP") !== "TCP") return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "string")
      return target.containerPorts.some((c) => c.name === p.port && c.containerPort === target.port);
    return p.endPort === undefined ? p.port === target.port : p.port <= target.port && target.port <= p.endPort;
  });
}

function applies(policy: NetworkPolicy, direction: "Ingress" | "Egress", namespace: string, labels: Labels) {
  const ns = policy.metadata.namespace ?? namespace;
  const types = policy.spec.policyTypes ?? (direction === "Ingress" ? ["Ingress"] : []);
  return ns === namespace && types.includes(direction) && selects(policy.spec.podSelector, labels);
}

/**
 * Whether `source` may open a TCP connection to `target`, by the policies in `policies`
 * (ingress side only: the source's own egress policies are the other half).
 */
export function ingressAllows(policies: NetworkPolicy[], source: Peer, target: Target): boolean {
  const relevant = policies.filter((p) => applies(p, "Ingress", target.namespace, target.labels));
  if (relevant.length === 0) return true;
  return relevant.some((p) =>
    (p.spec.ingress ?? []).some(
      (rule) =>
        portMatches(rule.ports, target) &&
        (!rule.from || rule.from.length === 0 || rule.from.some((f) => peerMatches(f, source, target.namespace))),
    ),
  );
}

/** Whether the pod `from` (in `namespace` with `labels`) may connect to `to` (egress side). */
export function egressAllows(
  policies: NetworkPolicy[],
  from: { namespace: string; labels: Labels },
  to: Peer,
  target: Target,
): boolean {
  const relevant = policies.filter((p) => applies(p, "Egress", from.namespace, from.labels));
  if (relevant.length === 0) return true;
  return relevant.some((p) =>
    (p.spec.egress ?? []).some(
      (rule) =>
        portMatches(rule.ports, target) &&
        (!rule.to || rule.to.length === 0 || rule.to.some((t) => peerMatches(t, to, from.namespace))),
    ),
  );
}
