// A rolling restart (`make local-restart`, i.e. `node local/cli.ts restart`) while a client
// sends steady open-loop traffic through nginx: no request may fail.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { REPO_ROOT, type Topology } from "../topology.ts";
import { request, startTestStack, summarizeReplies, teardown, trafficAround } from "./helpers.ts";

const INSTANCES = 2;
const RATE = 250; // requests per second, open loop (issued on schedule, whether or not earlier ones finished)
const WARMUP_MS = 1000; // traffic before the restart starts
const COOLDOWN_MS = 1000; // traffic after it ends
const MAX_MS = 90_000; // hard bound on the traffic phase

let stack: Topology | undefined;

before(async () => {
  stack = await startTestStack("restart", { instances: INSTANCES, shutdownDrainMs: 1000 });
});

after(async () => {
  await teardown(stack);
});

/** Run the CLI exactly as `make local-restart` does. */
function cliRestart(name: string): Promise<{ code: number | null; output: string; ms: number }> {
  const started = Date.now();
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
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - started });
    });
  });
}

test(`rolling restart under ${RATE} req/s loses no request`, { timeout: 150_000 }, async (t) => {
  assert.ok(stack);
  const url = `${stack.lbUrl}/livez`;
  const pidsBefore = stack.instances.map((i) => i.pid);
  const name = stack.name;
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const {
    replies,
    sendingMs,
    rate,
    actionResult: restart,
  } = await trafficAround({
    rate: RATE,
    warmupMs: WARMUP_MS,
    cooldownMs: COOLDOWN_MS,
    maxMs: MAX_MS,
    send: () => request(url, { agent, timeoutMs: 10_000 }),
    action: () => cliRestart(name),
  });
  agent.destroy();

  const { failed, perInstance, failures, line } = summarizeReplies(replies, sendingMs, rate);
  const summary = `${line}; restart took ${restart.ms} ms`;
  t.diagnostic(summary);
  console.log(`measured: ${summary}`);
  console.log(restart.output.trimEnd());

  assert.equal(restart.code, 0, `local/cli.ts restart exited ${restart.code}:\n${restart.output}`);
  const pidsAfter = stack.instances.map((i) => i.pid);
  for (let i = 0; i < INSTANCES; i++) {
    assert.ok(
      pidsAfter[i] !== null && pidsAfter[i] !== pidsBefore[i],
      `instance ${i + 1} was restarted (pid ${pidsBefore[i]} -> ${pidsAfter[i]})`,
    );
  }
  assert.ok(rate >= 200, `the client kept at least 200 req/s (got ${rate})`);
  assert.ok(replies.length >= (RATE * (WARMUP_MS + COOLDOWN_MS)) / 1000, "traffic covered the whole restart");
  assert.equal(failed.length, 0, `no request failed during the rolling restart: ${JSON.stringify(failures)}`);
  for (const instance of stack.instances)
    assert.ok((perInstance[instance.name] ?? 0) > 0, `${instance.name} served traffic`);
});
