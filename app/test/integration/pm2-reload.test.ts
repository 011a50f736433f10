// The one-machine path: PM2 cluster mode with app/ecosystem.config.cjs, two workers.
// - `pm2 reload` replaces every worker while a client sends steady open-loop traffic straight
//   to PM2's port, slow POSTs mixed with GETs: no request may fail, and none may have had to be
//   sent twice.
// - Each worker serves /metrics on its own port (METRICS_PORT + its index), so that the
//   request counts of the workers add up to what was sent.
// PM2 (AGPL-3.0) is a dev dependency for this test only.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { freePort, freePortBlock } from "../../../local/net.ts";
import { buildApp, type Pm2Cluster, startPm2Cluster } from "../../../local/pm2.ts";
import {
  countBy,
  request,
  startTestStack,
  summarizeReplies,
  teardown,
  trafficAround,
} from "../../../local/test/helpers.ts";
import type { Topology } from "../../../local/topology.ts";

const RATE = 60;
const WORKERS = 2;
const SLOW_POST = JSON.stringify({ text: "a slow post ".repeat(500), iterations: 1000 });

let stack: Topology | undefined;
let cluster: Pm2Cluster | undefined;
let metricsPorts: number[] = [];

before(async () => {
  await buildApp();
  stack = await startTestStack("pm2", { instances: 1 });
  const port = await freePort();
  // Worker i serves its metrics on metricsPort + i: a block of consecutive ports.
  metricsPorts = await freePortBlock(WORKERS);
  cluster = await startPm2Cluster({
    env: { ...stack.appEnv(0), LOG_LEVEL: "warn" },
    port,
    metricsPort: metricsPorts[0] as number,
    workers: WORKERS,
  });
});

after(async () => {
  await cluster?.stop();
  await teardown(stack);
});

/** The request count a worker's /metrics reports for GET /livez 200. */
async function livezCount(metricsPort: number): Promise<number> {
  const reply = await request(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(reply.status, 200, `worker metrics on port ${metricsPort}: ${reply.error ?? reply.status}`);
  const line = reply.body
    .split("\n")
    .find((l) => l.startsWith('http_request_duration_seconds_count{method="GET",route="/livez",status_code="200"}'));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

test("each worker serves its own metrics on METRICS_PORT + its index; together they count every request", async () => {
  assert.ok(cluster);
  const before = await Promise.all(metricsPorts.map(livezCount));
  const SENT = 40;
  const agent = new http.Agent({ keepAlive: false });
  const replies = [];
  for (let i = 0; i < SENT; i++) replies.push(await request(`${cluster.url}/livez`, { agent }));
  agent.destroy();
  const afterCounts = await Promise.all(metricsPorts.map(livezCount));
  const perWorker = afterCounts.map((n, i) => n - (before[i] ?? 0));
  console.log(`${SENT} GET /livez; counted per worker metrics port ${JSON.stringify(perWorker)}`);
  assert.deepEqual(
    countBy(replies, (r) => String(r.status)),
    { 200: SENT },
  );
  assert.equal(
    perWorker.reduce((a, b) => a + b, 0),
    SENT,
    "the workers' counts add up to what was sent",
  );
  assert.ok(
    perWorker.every((n) => n > 0),
    "each metrics port is a different worker, and each served some",
  );
});

test(`pm2 reload of every worker under ${RATE} req/s of slow POSTs and GETs: no failure, no retry`, {
  timeout: 180_000,
}, async (t) => {
  assert.ok(cluster);
  const pm2 = cluster;
  const workersBefore = await pm2.workers();
  assert.equal(workersBefore.length, WORKERS);
  assert.ok(
    workersBefore.every((w) => w.status === "online"),
    "every worker is online before the reload",
  );

  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  let n = 0;
  const { replies, sendingMs, rate } = await trafficAround({
    rate: RATE,
    before: 50,
    after: 50,
    maxMs: 120_000,
    send: () =>
      n++ % 2 === 0
        ? request(`${pm2.url}/api/work`, { agent, method: "POST", body: SLOW_POST, timeoutMs: 30_000 })
        : request(`${pm2.url}/livez`, { agent, timeoutMs: 30_000 }),
    action: () => pm2.pm2(["reload", "nodescale"]),
  });
  agent.destroy();

  const { failed, perInstance, failures, retried, line } = summarizeReplies(replies, sendingMs, rate);
  const byPhase = countBy(replies, (r) => r.phase);
  const summary = `${line}; sent by phase ${JSON.stringify(byPhase)}`;
  t.diagnostic(summary);
  console.log(`observed: ${summary}`);

  const workersAfter = await pm2.workers();
  const oldPids = new Set(workersBefore.map((w) => w.pid));
  assert.equal(workersAfter.length, WORKERS);
  assert.ok(
    workersAfter.every((w) => !oldPids.has(w.pid)),
    "every worker was replaced",
  );
  assert.ok((byPhase.during ?? 0) > 0, "requests were sent while the reload ran");
  assert.ok(Object.keys(perInstance).length >= WORKERS, "more than one worker served traffic");
  assert.equal(failed.length, 0, `no request failed during pm2 reload: ${JSON.stringify(failures)}`);
  assert.equal(retried, 0, "no request had to be sent twice");
});
