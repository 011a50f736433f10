// readiness-saturated-pool (issue 13, chart item 2) on real pods: a slow database must not
// take every pod out of the Service at once. A psql session on the host's primary holds an
// ACCESS EXCLUSIVE lock on `items`, and each pod gets more item writes than its primary pool
// has connections, so every pool is taken and requests queue. For one probe period more than
// the readiness probe's failureThreshold, the kubelet keeps every pod Ready, and /readyz on
// each pod IP answers 200 within the probe's timeout. Every write is answered 201 or a JSON
// 503, and the table holds exactly the writes answered 201.
//
// metrics-port (item 5): /metrics answers on the internal `<release>-metrics` Service and
// never on the app's Service, which is what an Ingress or HTTPRoute routes to.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { Client, type Reply } from "../lib/http.ts";
import {
  appPods,
  backingServices,
  eventually,
  getJson,
  isReady,
  type Json,
  NAMESPACE,
  RELEASE,
  realCluster,
  serviceUrl,
  sleep,
} from "./lib.ts";

const c = await realCluster();
const stack = backingServices(c);
const clients: Client[] = [];
let holder: ChildProcess | undefined;
after(() => {
  for (const x of clients) x.close();
  holder?.kill("SIGKILL");
});
function client(base: string): Client {
  const x = new Client(base, 256);
  clients.push(x);
  return x;
}

/** One sample of a Prometheus gauge (`name{pool="primary"} 3`). */
function gauge(metrics: string, name: string, pool: string): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name}{pool="${pool}"}`));
  return line === undefined ? Number.NaN : Number(line.split(" ")[1]);
}

/** The pod's container port by name (the chart's `http` and `metrics`). */
function port(pod: Json, name: string): number {
  const found = pod.spec.containers
    .flatMap((x: Json) => x.ports ?? [])
    .find((p: Json) => p.name === name)?.containerPort;
  assert.ok(found, `pod ${pod.metadata.name} declares a '${name}' port`);
  return found;
}

const LOCK_APP = "nodescale-readiness-test";

/** A psql session that takes the lock and keeps it until killed (or 120 s at most). */
function holdItemsLock(): ChildProcess {
  const sql = "begin; lock table items in access exclusive mode; select pg_sleep(120);";
  return spawn(join(stack.pgBinDir, "psql"), [stack.databaseUrl, "-X", "-q", "-c", sql], {
    env: { ...process.env, PGAPPNAME: LOCK_APP },
    stdio: "ignore",
  });
}

async function releaseItemsLock(): Promise<void> {
  await stack.query(
    "primary",
    `select pg_terminate_backend(pid) from pg_stat_activity where application_name = '${LOCK_APP}'`,
  );
  holder = undefined;
}

test("readiness-saturated-pool: every pod stays Ready while its primary pool is taken and writes queue", async () => {
  const pods = (await appPods(c)).filter(isReady);
  assert.ok(pods.length >= 2, `at least two ready app pods (${pods.length})`);
  const deployment = await getJson(c, ["deployment", RELEASE, "-n", NAMESPACE]);
  const app = deployment.spec.template.spec.containers.find((x: Json) => x.name === "nodescale");
  const probe = app.readinessProbe;
  const env = (name: string, fallback: number) =>
    Number(app.env?.find((e: Json) => e.name === name)?.value ?? fallback);
  const poolMax = env("PG_POOL_MAX", 10);
  const statementTimeoutMs = env("PG_STATEMENT_TIMEOUT_MS", 15_000);
  // One probe period more than the kubelet needs to mark a pod unready.
  const rounds = probe.failureThreshold + 1;
  assert.ok(
    rounds * (probe.periodSeconds + probe.timeoutSeconds) * 1000 < statementTimeoutMs,
    `${rounds} rounds end before the first writes' statement timeout (${statementTimeoutMs} ms) frees their connections`,
  );

  const writer = client(await serviceUrl(c));
  await writer.login("real-readiness");
  const marker = `readiness-${Date.now().toString(36)}`;
  // Each pod straight at its IP: the writer's session, and what the kubelet and a scrape see.
  const reach = pods.map((pod) => {
    const http = `http://${pod.status.podIP}:${port(pod, "http")}`;
    const session = client(http);
    session.cookie = writer.cookie;
    return {
      name: pod.metadata.name,
      session,
      prober: client(http),
      scraper: client(`http://${pod.status.podIP}:${port(pod, "metrics")}`),
    };
  });
  const writes: Promise<Reply>[] = [];
  // More writes than the pool has connections, on every pod: each pool is taken and the rest
  // queue (a queued write gives up after PG_CONNECT_TIMEOUT_MS, so every round adds more).
  const queueWrites = () => {
    for (const pod of reach) {
      for (let i = 0; i < poolMax + 5; i++) {
        writes.push(pod.session.request("POST", "/api/items", { title: `${marker}-${writes.length}` }, 60_000));
      }
    }
  };

  holder = holdItemsLock();
  try {
    await eventually("the test's psql session holds the lock on items", 30_000, async () => {
      const granted = await stack.query(
        "primary",
        "select count(*) from pg_locks l join pg_class r on r.oid = l.relation " +
          "where r.relname = 'items' and l.mode = 'AccessExclusiveLock' and l.granted",
      );
      return Number(granted.trim()) === 1;
    });
    queueWrites();
    for (const pod of reach) {
      await eventually(`${pod.name}: the primary pool is taken and writes queue`, 10_000, async () => {
        const m = (await pod.scraper.request("GET", "/metrics")).body;
        return (
          gauge(m, "nodescale_pg_pool_idle_connections", "primary") === 0 &&
          gauge(m, "nodescale_pg_pool_waiting_requests", "primary") >= 1
        );
      });
    }
    console.log(
      `pools of ${poolMax} taken on ${pods.length} pods; probe every ${probe.periodSeconds}s, ` +
        `timeout ${probe.timeoutSeconds}s, failing after ${probe.failureThreshold}`,
    );

    for (let round = 0; round < rounds; round++) {
      if (round > 0) queueWrites();
      for (const pod of reach) {
        const r = await pod.prober.request("GET", "/readyz", undefined, probe.timeoutSeconds * 1000);
        assert.equal(
          r.status,
          200,
          `${pod.name}: /readyz within the probe's timeout: ${r.status} ${r.error ?? r.body}`,
        );
        const m = (await pod.scraper.request("GET", "/metrics")).body;
        assert.equal(gauge(m, "nodescale_pg_pool_idle_connections", "primary"), 0, "the pool is still taken");
      }
      await sleep(probe.periodSeconds * 1000);
      const now = await appPods(c);
      assert.deepEqual(
        now.filter((p: Json) => !isReady(p)).map((p: Json) => p.metadata.name),
        [],
        "no pod left the Service while its pool was saturated",
      );
    }
  } finally {
    await releaseItemsLock();
  }

  // A write that waited too long is refused with a JSON 503 the client can retry; every one
  // that was answered 201 is in the table, and no other row is.
  const replies = await Promise.all(writes);
  const statuses: Record<number, number> = {};
  for (const r of replies) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  console.log(`${writes.length} writes while saturated: ${JSON.stringify(statuses)}`);
  const unexpected = replies.filter((r) => r.status !== 201 && r.status !== 503);
  assert.deepEqual(
    unexpected.map((r) => `${r.status} ${r.error ?? r.body}`),
    [],
    "only 201 or 503",
  );
  for (const r of replies.filter((x) => x.status === 503)) {
    assert.ok(JSON.parse(r.body).error?.code, `503 with a JSON error code (${r.body})`);
  }
  const rows = await stack.query("primary", `select count(*) from items where title like '${marker}-%'`);
  assert.equal(Number(rows.trim()), statuses[201] ?? 0, "rows in the table = writes answered 201");
  const after = await writer.request("POST", "/api/items", { title: `${marker}-after` });
  assert.equal(after.status, 201, `a write after the lock went: ${after.status} ${after.body}`);
});

test("metrics-port: /metrics answers on the metrics Service, never on the app's Service", async () => {
  const svc = await getJson(c, ["service", `${RELEASE}-metrics`, "-n", NAMESPACE]);
  const metricsPort = svc.spec.ports.find((p: Json) => p.name === "metrics")?.port;
  assert.ok(metricsPort, `the Service ${RELEASE}-metrics has a 'metrics' port`);
  const internal = client(`http://${svc.spec.clusterIP}:${metricsPort}`);
  const scrape = await internal.request("GET", "/metrics");
  assert.equal(scrape.status, 200, `GET /metrics on ${RELEASE}-metrics: ${scrape.status} ${scrape.error ?? ""}`);
  assert.match(scrape.body, /^nodescale_pg_pool_connections\{pool="primary"\} \d+/m, "the app's pool gauges");

  const front = client(await serviceUrl(c));
  const pub = await front.request("GET", "/metrics");
  assert.equal(pub.status, 404, `GET /metrics on the app's Service must not answer (${pub.status})`);
  const ready = await front.request("GET", "/readyz");
  assert.equal(ready.status, 200);
  assert.deepEqual(
    Object.keys(JSON.parse(ready.body)),
    ["status"],
    `/readyz on the app's Service: status only (${ready.body})`,
  );
});
