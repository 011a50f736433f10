// The one-machine path: PM2 cluster mode with app/ecosystem.config.cjs, one worker per core.
// `pm2 reload` replaces every worker while a client sends steady open-loop traffic straight
// to PM2's port: no request may fail. PM2 (AGPL-3.0) is a dev dependency for this test only.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { freePorts } from "../../../local/net.ts";
import { buildApp, type Pm2Cluster, startPm2Cluster } from "../../../local/pm2.ts";
import { request, startTestStack, summarizeReplies, teardown, trafficAround } from "../../../local/test/helpers.ts";
import type { Topology } from "../../../local/topology.ts";

const RATE = 250;
const WORKERS = 2;

let stack: Topology | undefined;
let cluster: Pm2Cluster | undefined;

before(async () => {
  await buildApp();
  stack = await startTestStack("pm2", { instances: 1 });
  const [port = 0, metricsPort = 0] = await freePorts(2);
  cluster = await startPm2Cluster({
    env: { ...stack.appEnv(0), LOG_LEVEL: "warn" },
    port,
    metricsPort,
    workers: WORKERS,
  });
});

after(async () => {
  await cluster?.stop();
  await teardown(stack);
});

test(`pm2 reload of every worker under ${RATE} req/s loses no request`, { timeout: 180_000 }, async (t) => {
  assert.ok(cluster);
  const pm2 = cluster;
  const before = await pm2.workers();
  assert.equal(before.length, WORKERS);
  assert.ok(
    before.every((w) => w.status === "online"),
    "every worker is online before the reload",
  );

  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const { replies, sendingMs, rate, actionResult } = await trafficAround({
    rate: RATE,
    warmupMs: 1000,
    cooldownMs: 1000,
    maxMs: 120_000,
    send: () => request(`${pm2.url}/livez`, { agent, timeoutMs: 10_000 }),
    action: async () => {
      const started = Date.now();
      await pm2.pm2(["reload", "nodescale"]);
      return Date.now() - started;
    },
  });
  agent.destroy();

  const { failed, perInstance, failures, line } = summarizeReplies(replies, sendingMs, rate);
  const summary = `${line}; reload took ${actionResult} ms`;
  t.diagnostic(summary);
  console.log(`measured: ${summary}`);

  const afterReload = await pm2.workers();
  const oldPids = new Set(before.map((w) => w.pid));
  assert.equal(afterReload.length, WORKERS);
  assert.ok(
    afterReload.every((w) => !oldPids.has(w.pid)),
    "every worker was replaced",
  );
  assert.ok(rate >= 200, `the client kept at least 200 req/s (got ${rate})`);
  assert.ok(Object.keys(perInstance).length >= WORKERS, "more than one worker served traffic");
  assert.equal(failed.length, 0, `no request failed during pm2 reload: ${JSON.stringify(failures)}`);
});
