// SIGTERM on an instance with 50 requests in flight (POST /api/work, straight to the instance,
// not through nginx): every request completes with 200 and the process exits 0 within
// SHUTDOWN_DRAIN_MS + 5 s.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import type { Topology } from "../topology.ts";
import { countBy, type Reply, request, startTestStack, teardown } from "./helpers.ts";

const IN_FLIGHT = 50;
const DRAIN_MS = 1000;
const EXIT_BOUND_MS = DRAIN_MS + 5000;
/** What the 50 requests should cost together on the instance's single worker thread. */
const TARGET_TOTAL_WORK_MS = 2500;
const PHRASE = "the quick brown fox jumps over the lazy dog ";
const PROBE_REPEATS = 400; // ~17 KiB of text
const ITERATIONS = 1000;

let stack: Topology | undefined;

before(async () => {
  stack = await startTestStack("sigterm", { instances: 1, shutdownDrainMs: DRAIN_MS, appEnv: { WORKER_THREADS: "1" } });
});

after(async () => {
  await teardown(stack);
});

function work(url: string, text: string, agent?: http.Agent, onSent?: () => void): Promise<Reply> {
  return request(`${url}/api/work`, {
    method: "POST",
    body: JSON.stringify({ text, iterations: ITERATIONS }),
    agent,
    timeoutMs: 30_000,
    onSent,
  });
}

test(`SIGTERM with ${IN_FLIGHT} requests in flight: all complete, exit 0 within drain + 5 s`, {
  timeout: 120_000,
}, async (t) => {
  assert.ok(stack);
  const instance = stack.instances[0];
  assert.ok(instance?.pid, "the instance is running");

  // Calibrate: size the text so the 50 together keep the single worker busy ~2.5 s on any
  // machine, well past the drain: requests are still running when the server stops accepting.
  const probeText = PHRASE.repeat(PROBE_REPEATS);
  const PROBES = 10;
  let probeMs = 0;
  for (let round = 0; round < 2; round++) {
    // Round 0 warms up; round 1 measures throughput (10 at once queue on the one worker).
    const probeStart = performance.now();
    const probes: Reply[] = await Promise.all(Array.from({ length: PROBES }, () => work(instance.url, probeText)));
    probeMs = (performance.now() - probeStart) / PROBES;
    for (const p of probes) {
      assert.equal(p.status, 200, `POST /api/work answers 200 (got ${p.status}: ${p.body || p.error})`);
    }
  }
  const repeats = Math.max(
    10,
    Math.min(40_000, Math.round((PROBE_REPEATS * TARGET_TOTAL_WORK_MS) / IN_FLIGHT / probeMs)),
  );
  const text = PHRASE.repeat(repeats);

  // Fire 50 on 50 connections; SIGTERM once all are sent and none has been answered.
  const agent = new http.Agent({ keepAlive: false, maxSockets: IN_FLIGHT });
  let sent = 0;
  let allSent!: () => void;
  const everySent = new Promise<void>((r) => {
    allSent = r;
  });
  let answered = 0;
  const fired = performance.now();
  const replies = Array.from({ length: IN_FLIGHT }, () =>
    work(instance.url, text, agent, () => {
      if (++sent === IN_FLIGHT) allSent();
    }).then((reply) => {
      answered++;
      return reply;
    }),
  );
  await everySent;
  await new Promise((r) => setTimeout(r, 50)); // let the server read the last bodies
  const answeredBeforeSigterm = answered;
  const sigtermAt = performance.now();
  const exit = stack.stopInstance(0);

  // While draining, readiness fails (the load balancer's signal to stop sending).
  await new Promise((r) => setTimeout(r, 100));
  const readiness = await request(`${instance.url}/readyz`, { timeoutMs: 2000 });

  const results = await Promise.all(replies);
  const lastReplyMs = performance.now() - sigtermAt;
  const exitInfo = await exit;
  agent.destroy();

  const statuses = countBy(results, (r) => (r.status === 0 ? `error: ${r.error}` : String(r.status)));
  const summary =
    `probe ${probeMs.toFixed(1)} ms per task for ${probeText.length} B x ${ITERATIONS} iterations -> ${text.length} B each; ` +
    `${answeredBeforeSigterm} of ${IN_FLIGHT} answered before SIGTERM; statuses ${JSON.stringify(statuses)}; ` +
    `last reply ${lastReplyMs.toFixed(0)} ms after SIGTERM (fired ${(sigtermAt - fired).toFixed(0)} ms before it); ` +
    `/readyz while draining: ${readiness.status}; exit ${exitInfo?.code} after ${exitInfo?.ms} ms (bound ${EXIT_BOUND_MS} ms)`;
  t.diagnostic(summary);
  console.log(`measured: ${summary}`);

  assert.ok(
    answeredBeforeSigterm < IN_FLIGHT / 2,
    `most requests were still in flight at SIGTERM (${answeredBeforeSigterm} answered already)`,
  );
  assert.deepEqual(statuses, { 200: IN_FLIGHT }, "every in-flight request completed with 200");
  assert.ok(
    lastReplyMs > DRAIN_MS,
    `requests were still running after the drain, when the server stopped accepting (last reply ${lastReplyMs.toFixed(0)} ms after SIGTERM)`,
  );
  for (const r of results) assert.match(r.body, /"digest":"[0-9a-f]{64}"/, "each reply carries the work result");
  assert.equal(readiness.status, 503, "/readyz answers 503 while draining");
  assert.ok(exitInfo, "the instance was running at SIGTERM");
  assert.equal(exitInfo.killed, false, "the instance exited by itself (no SIGKILL)");
  assert.equal(exitInfo.code, 0, `the instance exited 0 (code ${exitInfo.code}, signal ${exitInfo.signal})`);
  assert.ok(exitInfo.ms <= EXIT_BOUND_MS, `the instance exited within SHUTDOWN_DRAIN_MS + 5 s (${exitInfo.ms} ms)`);
});
