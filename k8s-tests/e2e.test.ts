// `make e2e`: the scaling claims of nodescale proved on a live cluster (the current
// kubeconfig context; `make kind-up` makes one). Each check is a named test, run in order;
// traffic goes only to the cluster's front door (E2E_URL, default http://127.0.0.1), bounded
// in count and time. Results (replies per check, the HPA's replicas over time as JSON and as
// an SVG chart) land in k8s-tests/results/.
//
// With no reachable cluster the file stops at once with one line saying so (exit 1): it never
// hangs and never skips.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { allowedToSkip, type CheckId, cannotRun, detect, E2E_CHECKS } from "./lib/capabilities.ts";
import { replicasSvg, type Sample } from "./lib/chart.ts";
import {
  BASE_URL,
  CHART,
  helm,
  type Json,
  kubectl,
  kubectlJson,
  NAMESPACE,
  preflight,
  RELEASE,
  RESULTS_DIR,
} from "./lib/cluster.ts";
import { Client, countBy, type Reply, sleep, steadyTraffic, summarize } from "./lib/http.ts";

const reason = await preflight();
if (reason) {
  console.error(`e2e: no reachable cluster to test: ${reason}`);
  process.exit(1);
}

// What this cluster can prove: on the simulated cluster (kwok nodes, no containers) only the
// checks about the API server and the controllers run; the others fail with the reason, or
// are skipped with it when E2E_SKIP_UNSUPPORTED names the cluster's kind (make e2e-sim).
const caps = detect(await kubectlJson(["get", "nodes"]));
console.log(`cluster: ${caps.kind}`);

function check(id: CheckId, fn: () => Promise<void>): void {
  const name = `${id}: ${E2E_CHECKS[id].name}`;
  const why = cannotRun(id, caps);
  if (why === undefined) test(name, fn);
  else if (allowedToSkip(caps)) test(name, { skip: why }, () => {});
  else test(name, () => assert.fail(`${why} (E2E_SKIP_UNSUPPORTED=${caps.kind} skips it, saying so)`));
}

// The real-node cluster's front door is the app's Service: kube-proxy picks a pod per
// connection, so one keep-alive client would only ever meet one pod. A connection per request
// stands for many clients there; an ingress or gateway balances requests on kept connections.
const KEEP_ALIVE = caps.kind !== "cluster-real";

mkdirSync(RESULTS_DIR, { recursive: true });
const clients: Client[] = [];
function client(maxSockets?: number): Client {
  const c = new Client(BASE_URL, maxSockets, KEEP_ALIVE);
  clients.push(c);
  return c;
}
after(() => {
  for (const c of clients) c.close();
});

function record(name: string, data: unknown): string {
  const file = path.join(RESULTS_DIR, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return path.relative(process.cwd(), file);
}
const SELECTOR = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/name=nodescale`;

async function appPods(): Promise<Json[]> {
  const pods = await kubectlJson(["get", "pods", "-l", SELECTOR]);
  return pods.items.filter(
    (p: Json) =>
      !p.metadata.labels?.["app.kubernetes.io/component"] || p.metadata.labels["app.kubernetes.io/component"] === "app",
  );
}
function isReady(p: Json): boolean {
  return (
    !p.metadata.deletionTimestamp && p.status?.conditions?.some((c: Json) => c.type === "Ready" && c.status === "True")
  );
}
async function deploymentSettled(): Promise<boolean> {
  const d = await kubectlJson(["get", "deployment", RELEASE]);
  const s = d.status ?? {};
  const want = d.spec.replicas ?? 1;
  return (
    s.observedGeneration >= d.metadata.generation &&
    s.updatedReplicas === want &&
    s.readyReplicas === want &&
    (s.replicas ?? want) === want
  );
}
async function until(what: string, seconds: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(2000);
  }
  throw new Error(`${what}: not within ${seconds}s${last ? ` (${last})` : ""}`);
}

/** Steady traffic of logged-in reads around an action; every request must be answered. */
async function noRequestLost(name: string, action: () => Promise<void>, rate = 25) {
  const c = client(128);
  const user = await c.login(`e2e-${name}`);
  const traffic = steadyTraffic({ rate, maxMs: 8 * 60_000, send: () => c.request("GET", "/api/me") });
  await sleep(5000);
  const beforeAction = traffic.elapsedMs();
  await action();
  await sleep(8000); // after the pods settled: the old ones are gone from every endpoint list
  const { replies, sendingMs } = await traffic.stop();
  const s = summarize(replies, sendingMs);
  const wrongUser = s.ok.filter((r) => !r.body.includes(user));
  const file = record(name, {
    line: s.line,
    actionAtMs: beforeAction,
    failures: s.failed.slice(0, 50),
    replies: replies.map(({ body: _b, setCookie: _c, ...r }) => r),
  });
  console.log(`${name}: ${s.line} (${file})`);
  assert.ok(replies.length >= rate * 10, `too little traffic to prove anything: ${replies.length} requests`);
  assert.equal(
    s.failed.length,
    0,
    `${s.failed.length} of ${replies.length} requests lost: ${JSON.stringify(s.failures)}`,
  );
  assert.equal(wrongUser.length, 0, `${wrongUser.length} answers lost the session`);
  return { replies, summary: s };
}

/** Whether the release runs the Bitnami PostgreSQL and Redis (else external services). */
async function bundledServices(): Promise<boolean> {
  const cm = await kubectlJson(["get", "configmap", RELEASE]);
  return String(cm.data?.DATABASE_URL ?? "").includes(`@${RELEASE}-postgresql`);
}

check("pods-ready", async () => {
  const pods = await kubectlJson(["get", "pods"]);
  const running = pods.items.filter((p: Json) => p.status.phase !== "Succeeded");
  const notReady = running.filter((p: Json) => !isReady(p)).map((p: Json) => `${p.metadata.name} (${p.status.phase})`);
  console.log(`pods in ${NAMESPACE}: ${running.map((p: Json) => p.metadata.name).join(", ")}`);
  // The simulated and the real-node cluster run the chart with external services.
  if (await bundledServices()) {
    assert.ok(
      running.length >= 4,
      `expected the app, PostgreSQL primary and replica, and Redis; found ${running.length} pods`,
    );
  }
  assert.deepEqual(notReady, [], "pods not ready");
  const app = (await appPods()).filter(isReady);
  assert.ok(app.length >= 2, `at least two app pods ready (${app.length})`);
});

check("reachable-through-ingress", async () => {
  const app = (await appPods()).filter(isReady);
  const ingress = await kubectl(["get", "ingress,httproute", "-o", "name"]).catch(() =>
    kubectl(["get", "ingress", "-o", "name"]),
  );
  console.log(`front door: ${ingress.trim().replace(/\n/g, ", ")} at ${BASE_URL}`);
  const c = client();
  for (const p of ["/livez", "/readyz"]) {
    const r = await c.request("GET", p);
    assert.equal(r.status, 200, `GET ${p} through the front door: HTTP ${r.status} ${r.error ?? ""}`);
    assert.ok(
      r.instance && app.some((pod: Json) => pod.metadata.name === r.instance),
      `x-instance names an app pod (${r.instance})`,
    );
  }
  // /metrics and the dependency detail live on the internal metrics port only.
  const metrics = await c.request("GET", "/metrics");
  assert.equal(metrics.status, 404, `GET /metrics through the front door must not answer (HTTP ${metrics.status})`);
});

check("session-across-pods", async () => {
  const c = client();
  const user = await c.login("e2e-session");
  const replies: Reply[] = [];
  for (let i = 0; i < 100; i++) replies.push(await c.request("GET", "/api/me"));
  const s = summarize(replies, 1);
  console.log(`GET /api/me x100 as ${user}: ${s.line}`);
  assert.equal(s.failed.length, 0, `failed: ${JSON.stringify(s.failures)}`);
  assert.ok(
    s.ok.every((r) => r.body.includes(user)),
    "every answer is the logged-in user",
  );
  assert.ok(
    Object.keys(s.perInstance).length >= 2,
    `served by ${Object.keys(s.perInstance).length} pod(s): ${JSON.stringify(s.perInstance)}`,
  );
  const anonymous = await client().request("GET", "/api/me");
  assert.equal(anonymous.status, 401, "without the cookie: 401");
});

check("replica-reads", async () => {
  const cm = await kubectlJson(["get", "configmap", RELEASE]);
  const replicaUrls = String(cm.data?.DATABASE_REPLICA_URLS ?? "");
  assert.ok(replicaUrls, "DATABASE_REPLICA_URLS names at least one replica");
  if (await bundledServices()) {
    const readService = `${RELEASE}-postgresql-read`;
    assert.ok(
      replicaUrls.includes(readService),
      `DATABASE_REPLICA_URLS points at ${readService} (${replicaUrls.replace(/:[^:@/]*@/, ":***@")})`,
    );
    const slices = await kubectlJson(["get", "endpointslices", "-l", `kubernetes.io/service-name=${readService}`]);
    const ready = slices.items.flatMap((s: Json) => s.endpoints ?? []).filter((e: Json) => e.conditions?.ready);
    assert.ok(ready.length >= 1, `the ${readService} Service has a ready endpoint (${ready.length})`);
  }

  const writer = client();
  await writer.login("e2e-writer");
  const routes: string[] = [];
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) {
    const title = `e2e item ${i} ${Date.now()}`;
    const created = await writer.request("POST", "/api/items", { title, body: "read your writes" });
    assert.equal(created.status, 201, `POST /api/items: HTTP ${created.status} ${created.body}`);
    const id = JSON.parse(created.body).id ?? JSON.parse(created.body).item?.id;
    ids.push(id);
    const own = await writer.request("GET", `/api/items/${id}`);
    assert.equal(
      own.status,
      200,
      `the writer reads item ${id} at once: HTTP ${own.status} (x-db-route ${own.dbRoute})`,
    );
    assert.ok(own.body.includes(title), `the writer reads what it wrote (item ${id})`);
    routes.push(own.dbRoute ?? "?");
  }
  console.log(`read-your-writes: 20 writes read back at once, routes ${JSON.stringify(countBy(routes, (r) => r))}`);

  const reader = client();
  const id = ids.at(-1);
  let route = "";
  await until("an anonymous read of a new item is served by a replica", 30, async () => {
    const r = await reader.request("GET", `/api/items/${id}`);
    route = r.dbRoute ?? "";
    return r.status === 200 && r.dbRoute === "replica";
  });
  console.log(`anonymous read of item ${id}: x-db-route ${route}`);
});

check("helm-test", async () => {
  const r = await helm(["test", RELEASE, "--logs", "--timeout", "5m"], 6 * 60_000);
  console.log(
    r.stdout
      .split("\n")
      .filter((l) => /Phase|ok -|not ok|passed/.test(l))
      .join("\n"),
  );
  assert.equal(r.code, 0, `helm test ${RELEASE} failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
});

check("rolling-upgrade-no-loss", async () => {
  const before = new Set((await appPods()).map((p) => p.metadata.name));
  const { summary } = await noRequestLost("rolling-upgrade", async () => {
    const r = await helm(
      [
        "upgrade",
        RELEASE,
        CHART,
        "--reuse-values",
        "--set-string",
        `podAnnotations.e2e-rollout=${Date.now()}`,
        "--wait",
        "--timeout",
        "5m",
      ],
      6 * 60_000,
    );
    assert.equal(
      r.code,
      0,
      `helm upgrade failed (kind-up fetches the chart's dependencies first: k8s-tests/kind/chart-deps.sh): ${r.stderr.slice(-2000)}`,
    );
    await until("the rollout finished", 300, deploymentSettled);
  });
  const after = new Set((await appPods()).filter(isReady).map((p) => p.metadata.name));
  assert.ok(
    [...after].every((n) => !before.has(n)),
    `every pod was replaced (before ${[...before].join(", ")}; after ${[...after].join(", ")})`,
  );
  assert.ok(
    Object.keys(summary.perInstance).some((n) => after.has(n)) &&
      Object.keys(summary.perInstance).some((n) => before.has(n)),
    "the traffic was served by old pods and then new ones",
  );
});

check("pod-delete-no-loss", async () => {
  const pods = (await appPods()).filter(isReady);
  assert.ok(pods.length >= 2, "two ready pods to delete one of");
  const victim = pods[0].metadata.name;
  await noRequestLost("pod-deletion", async () => {
    await kubectl(["delete", "pod", victim, "--wait=true", "--timeout=120s"], 150_000);
    await until("the Deployment is back to full strength", 180, deploymentSettled);
  });
  const now = (await appPods()).map((p) => p.metadata.name);
  assert.ok(!now.includes(victim), `${victim} is gone`);
});

check("hpa-burst", async () => {
  const hpa = await kubectlJson(["get", "hpa", RELEASE]);
  const minReplicas: number = hpa.spec.minReplicas ?? 1;
  const maxReplicas: number = hpa.spec.maxReplicas;
  const downWindow: number = hpa.spec.behavior?.scaleDown?.stabilizationWindowSeconds ?? 300;
  assert.ok(
    downWindow <= 120,
    `the scale-down stabilization window is short enough for a test (${downWindow}s; values-kind.yaml sets 30s)`,
  );
  assert.ok(maxReplicas > minReplicas, "the HPA has room to scale");
  await until(`the HPA is back at ${minReplicas} replicas before the burst`, 240, async () => {
    const h = await kubectlJson(["get", "hpa", RELEASE]);
    return h.status.currentReplicas === minReplicas && h.status.desiredReplicas === minReplicas;
  });

  const samples: Sample[] = [];
  const started = Date.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const h = await kubectlJson(["get", "hpa", RELEASE]);
        const cpu = h.status.currentMetrics?.find((m: Json) => m.resource?.name === "cpu")?.resource.current
          .averageUtilization;
        samples.push({
          t: Math.round((Date.now() - started) / 1000),
          current: h.status.currentReplicas ?? 0,
          desired: h.status.desiredReplicas ?? 0,
          cpu,
        });
      } catch {
        // a failed poll is a gap in the record, not a failure
      }
      await sleep(5000);
    }
  })();
  const peak = () => Math.max(0, ...samples.map((s) => s.current));

  // The burst: CPU work on the worker threads, 16 at a time, until the HPA added pods
  // (at most 4 minutes).
  const burstFrom = (Date.now() - started) / 1000;
  const worker = client(32);
  const text = "nodescale scales ".repeat(4000);
  let stopBurst = false;
  let sent = 0;
  let failedWork = 0;
  const burstDeadline = Date.now() + 4 * 60_000;
  const loops = Array.from({ length: 16 }, async () => {
    while (!stopBurst && Date.now() < burstDeadline) {
      const r = await worker.request("POST", "/api/work", { text, iterations: 200 }, 30_000);
      sent++;
      if (r.status !== 200) failedWork++;
    }
  });
  await until("the HPA scales up under the burst", 240, async () => peak() > minReplicas);
  await sleep(20_000); // let it settle at its new size while the burst goes on
  stopBurst = true;
  await Promise.all(loops);
  const burstTo = (Date.now() - started) / 1000;
  const up = peak();
  console.log(
    `burst: ${sent} POST /api/work (${failedWork} not 200) in ${Math.round(burstTo - burstFrom)}s; replicas ${minReplicas} -> ${up}`,
  );

  let downError: Error | undefined;
  try {
    await until(
      `the HPA scales back down to ${minReplicas}`,
      downWindow + 240,
      async () => (samples.at(-1)?.current ?? 0) === minReplicas,
    );
  } catch (error) {
    downError = error as Error;
  }
  await sleep(5000);
  sampling = false;
  await sampler;

  const json = record("hpa-replicas", {
    minReplicas,
    maxReplicas,
    scaleDownStabilizationSeconds: downWindow,
    burst: { from: burstFrom, to: burstTo, requests: sent, failed: failedWork },
    samples,
  });
  const svg = path.join(RESULTS_DIR, "hpa-replicas.svg");
  writeFileSync(
    svg,
    replicasSvg({
      title: `HPA ${RELEASE}: replicas over time (burst of POST /api/work)`,
      samples,
      burst: { from: burstFrom, to: burstTo },
      minReplicas,
      maxReplicas,
    }),
  );
  console.log(`replicas over time: ${samples.map((s) => `${s.t}s:${s.current}`).join(" ")}`);
  console.log(`recorded ${json}; drawn ${path.relative(process.cwd(), svg)}`);
  assert.ok(up > minReplicas, `scaled up from ${minReplicas} (peak ${up})`);
  if (downError) throw downError;
  assert.equal(samples.at(-1)?.current, minReplicas, "back at minReplicas after the burst");
});
