// The one-machine path: PM2 cluster mode with app/ecosystem.config.cjs, one worker per core.
// `pm2 reload` replaces every worker while a client sends steady open-loop traffic straight
// to PM2's port: no request may fail. PM2 (AGPL-3.0) is a dev dependency for this test only.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { freePorts } from "../../../local/net.ts";
import { request, startTestStack, summarizeReplies, teardown, trafficAround } from "../../../local/test/helpers.ts";
import { REPO_ROOT, type Topology } from "../../../local/topology.ts";

const run = promisify(execFile);
const APP_DIR = join(REPO_ROOT, "app");
const PM2 = join(REPO_ROOT, "node_modules", ".bin", "pm2");
const RATE = 250;
const WORKERS = 2;

let stack: Topology | undefined;
let pm2Home = "";
let port = 0;

type Pm2Process = { name: string; pid: number; pm2_env: { status: string } };

function pm2(args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(PM2, args, {
    cwd: APP_DIR,
    env: { ...process.env, ...env, PM2_HOME: pm2Home },
    timeout: 90_000,
  });
}

async function workers(): Promise<Pm2Process[]> {
  const { stdout } = await pm2(["jlist"]);
  return (JSON.parse(stdout) as Pm2Process[]).filter((p) => p.name === "nodescale");
}

before(async () => {
  // PM2 runs the built app, as on a VM.
  await run(
    process.execPath,
    [join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: APP_DIR,
    },
  );
  stack = await startTestStack("pm2", { instances: 1 });
  pm2Home = await mkdtemp(join(tmpdir(), "nodescale-pm2-"));
  const [appPort = 0, metricsPort = 0] = await freePorts(2);
  port = appPort;
  const env = stack.appEnv(0);
  await pm2(["start", "ecosystem.config.cjs"], {
    ...env,
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
    INSTANCE_NAME: "",
    PM2_INSTANCES: String(WORKERS),
    LOG_LEVEL: "warn",
  });
});

after(async () => {
  if (pm2Home !== "") {
    await pm2(["kill"]).catch(() => undefined);
    await rm(pm2Home, { recursive: true, force: true });
  }
  await teardown(stack);
});

test(`pm2 reload of every worker under ${RATE} req/s loses no request`, { timeout: 180_000 }, async (t) => {
  const before = await workers();
  assert.equal(before.length, WORKERS);
  assert.ok(
    before.every((w) => w.pm2_env.status === "online"),
    "every worker is online before the reload",
  );

  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const { replies, sendingMs, rate, actionResult } = await trafficAround({
    rate: RATE,
    warmupMs: 1000,
    cooldownMs: 1000,
    maxMs: 120_000,
    send: () => request(`http://127.0.0.1:${port}/livez`, { agent, timeoutMs: 10_000 }),
    action: async () => {
      const started = Date.now();
      await pm2(["reload", "nodescale"]);
      return Date.now() - started;
    },
  });
  agent.destroy();

  const { failed, perInstance, failures, line } = summarizeReplies(replies, sendingMs, rate);
  const summary = `${line}; reload took ${actionResult} ms`;
  t.diagnostic(summary);
  console.log(`measured: ${summary}`);

  const afterReload = await workers();
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
