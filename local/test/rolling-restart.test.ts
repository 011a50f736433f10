// A rolling restart (`make local-restart`, i.e. `node local/cli.ts restart`) while a client
// sends steady open-loop traffic through nginx: slow POSTs (CPU work on the worker pool, which
// nginx never retries on another instance, as they are not idempotent) mixed with GETs. No
// request may fail, and the client may not have had to send any request twice: a retry hides a
// connection the server dropped under a request.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { REPO_ROOT, type Topology } from "../topology.ts";
import { countBy, request, startTestStack, summarizeReplies, teardown, trafficAround } from "./helpers.ts";

const INSTANCES = 2;
const RATE = 60; // requests per second, open loop (issued on schedule, whether or not earlier ones finished)
const SLOW_POST = JSON.stringify({ text: "a slow post ".repeat(500), iterations: 1000 });

let stack: Topology | undefined;

before(async () => {
  stack = await startTestStack("restart", { instances: INSTANCES, shutdownDrainMs: 1000 });
});

after(async () => {
  await teardown(stack);
});

/** Run the CLI exactly as `make local-restart` does. */
function cliRestart(name: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, "local", "cli.ts"), "restart"], {
      cwd: REPO_ROOT,
      env: { ...process.env, STACK_NAME: name },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test(`rolling restart under ${RATE} req/s of slow POSTs and GETs: no failure, no retry`, {
  timeout: 240_000,
}, async (t) => {
  assert.ok(stack);
  const base = stack.lbUrl;
  const pidsBefore = stack.instances.map((i) => i.pid);
  const name = stack.name;
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  let n = 0;
  const {
    replies,
    sendingMs,
    rate,
    actionResult: restart,
  } = await trafficAround({
    rate: RATE,
    before: 50,
    after: 50,
    maxMs: 180_000,
    send: () =>
      n++ % 2 === 0
        ? request(`${base}/api/work`, { agent, method: "POST", body: SLOW_POST, timeoutMs: 30_000 })
        : request(`${base}/livez`, { agent, timeoutMs: 30_000 }),
    action: () => cliRestart(name),
  });
  agent.destroy();

  const { failed, perInstance, failures, retried, line } = summarizeReplies(replies, sendingMs, rate);
  const byPhase = countBy(replies, (r) => r.phase);
  const summary = `${line}; sent by phase ${JSON.stringify(byPhase)}`;
  t.diagnostic(summary);
  console.log(`observed: ${summary}`);
  console.log(restart.output.trimEnd());

  assert.equal(restart.code, 0, `local/cli.ts restart exited ${restart.code}:\n${restart.output}`);
  const pidsAfter = stack.instances.map((i) => i.pid);
  for (let i = 0; i < INSTANCES; i++) {
    assert.ok(
      pidsAfter[i] !== null && pidsAfter[i] !== pidsBefore[i],
      `instance ${i + 1} was restarted (pid ${pidsBefore[i]} -> ${pidsAfter[i]})`,
    );
  }
  assert.ok((byPhase.during ?? 0) > 0, "requests were sent while the restart ran");
  assert.equal(failed.length, 0, `no request failed during the rolling restart: ${JSON.stringify(failures)}`);
  assert.equal(retried, 0, "no request had to be sent twice");
  const posts = replies.filter((r) => r.body.includes('"digest"'));
  assert.ok(
    posts.some((r) => r.phase === "during"),
    "slow POSTs were answered from the restart's middle",
  );
  for (const instance of stack.instances)
    assert.ok((perInstance[instance.name] ?? 0) > 0, `${instance.name} served traffic`);
});
