// The image's run-time checks (issue 5), started by app/image/test.sh once it has found a way
// to run containers here. Against Redis and a PostgreSQL primary + streaming replica from the
// local topology (local/topology.ts), the image:
//   - runs as uid/gid 10001 with node as PID 1, on a read-only root filesystem with only /tmp
//     writable, all capabilities dropped, and no npm/yarn/corepack/compiler on its PATH;
//   - applies the migrations with `node dist/main.js migrate`, and a second run applies none;
//   - serves /readyz 200 with Redis, the primary and the replica up;
//   - on SIGTERM with POST /api/work requests in flight, answers them all 200 and exits 0
//     within SHUTDOWN_DRAIN_MS + 5 s.
//
// Input (environment, set by test.sh):
//   IMAGE_REF      the image as the runner names it
//   IMAGE_RUN      JSON array: the command up to and including `run` plus runner flags
//   IMAGE_CTL      JSON array: the runner command for `kill`, `inspect`, `rm` (e.g. ["podman"])
//   EXPECT_NODE    the Node version the image must report (v24.21.0)
//   SHUTDOWN_DRAIN_MS (default 2000), IMAGE_TEST_STACK (default image-test)
// Prints one line per check ("ok - ..." / "not ok - ..."); exits 1 when any check failed.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { freePort, HOST } from "../../local/net.ts";
import { loadTopology, REPO_ROOT, startTopology, type Topology } from "../../local/topology.ts";

type Reply = { status: number; headers: http.IncomingHttpHeaders; body: string; error?: string };

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") throw new Error(`${name} is not set (app/image/test.sh sets it)`);
  return value;
};
const jsonArray = (name: string): string[] => {
  const value: unknown = JSON.parse(env(name));
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
    throw new Error(`${name}: not a JSON string array`);
  return value;
};

const IMAGE_REF = env("IMAGE_REF");
const RUN = jsonArray("IMAGE_RUN");
const CTL = jsonArray("IMAGE_CTL");
const EXPECT_NODE = env("EXPECT_NODE");
const DRAIN_MS = Number(env("SHUTDOWN_DRAIN_MS", "2000"));
const EXIT_BOUND_MS = DRAIN_MS + 5000;
const STACK = env("IMAGE_TEST_STACK", "image-test");
const UID = 10001;
// What issue 5 asks for: ~200 KB of text, 500 hash rounds per request.
const WORK_TEXT = "the quick brown fox jumps over the lazy dog ".repeat(4650); // 204,600 bytes
const WORK_ITERATIONS = 500;
const MIGRATIONS = readdirSync(join(REPO_ROOT, "app", "migrations"))
  .filter((f) => /^\d{3,}_[\w-]+\.sql$/.test(f))
  .map((f) => f.replace(/\.sql$/, ""))
  .sort();

let failures = 0;
const ok = (what: string) => console.log(`ok - ${what}`);
const notOk = (what: string, why: string) => {
  failures++;
  console.log(`not ok - ${what}\n    ${why.replaceAll("\n", "\n    ")}`);
};
const check = (condition: boolean, what: string, why: string) => (condition ? ok(what) : notOk(what, why));
const show = (argv: string[]) =>
  argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(" ");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function request(
  url: string,
  options: { method?: string; body?: string; agent?: http.Agent; onSent?: () => void } = {},
) {
  return new Promise<Reply>((resolve) => {
    const req = http.request(
      url,
      {
        method: options.method ?? "GET",
        agent: options.agent,
        headers: options.body
          ? { "content-type": "application/json", "content-length": Buffer.byteLength(options.body) }
          : {},
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on("error", (e) => resolve({ status: 0, headers: {}, body: "", error: e.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out after 60 s")));
    req.on("error", (e) => resolve({ status: 0, headers: {}, body: "", error: e.message }));
    req.on("finish", () => options.onSent?.());
    req.end(options.body);
  });
}

/** The environment the app needs, as runner flags. */
function appEnv(stack: Topology, extra: Record<string, string> = {}): string[] {
  const base = stack.appEnv(0);
  const vars: Record<string, string> = {
    REDIS_URL: stack.redisUrl,
    DATABASE_URL: stack.databaseUrl,
    DATABASE_REPLICA_URLS: stack.replicaUrls.join(","),
    SESSION_SECRETS: base.SESSION_SECRETS ?? "",
    LOG_LEVEL: "info",
    ...extra,
  };
  return Object.entries(vars).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
}

/** The flags every run uses: what the chart's restricted security context gives the pod. */
const hardened = (name: string) => [
  "--name",
  name,
  "--network",
  "host",
  "--read-only",
  "--tmpfs",
  "/tmp:rw,nosuid,nodev,size=64m",
  "--cap-drop",
  "ALL",
  "--security-opt",
  "no-new-privileges",
];

function runToEnd(
  args: string[],
  timeoutMs = 120_000,
): { code: number | null; stdout: string; stderr: string; argv: string[] } {
  const argv = [...RUN, ...args];
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: "utf8", timeout: timeoutMs });
  return {
    code: r.status,
    stdout: r.stdout ?? "",
    stderr: `${r.stderr ?? ""}${r.error ? `\n${r.error.message}` : ""}`,
    argv,
  };
}

function ctl(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(CTL[0] as string, [...CTL.slice(1), ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

const removeContainer = (name: string) => ctl(["rm", "-f", name]);

// ---- 1. identity, file system, tools ---------------------------------------------------------

const PROBE = `
const fs = require("node:fs"), path = require("node:path");
const tryWrite = (p) => { try { fs.writeFileSync(p, "x"); fs.unlinkSync(p); return "ok"; } catch (e) { return e.code; } };
const tools = ["npm","npx","corepack","yarn","yarnpkg","pnpm","tsc","tsgo","node-gyp","gcc","cc","c++","g++","clang","make","python3"];
const found = tools.filter((t) => process.env.PATH.split(":").some((d) => fs.existsSync(path.join(d, t))));
console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), pid: process.pid,
  node: process.version, nodeEnv: process.env.NODE_ENV, cwd: process.cwd(), root: tryWrite("/probe"),
  app: tryWrite("/app/probe"), tmp: tryWrite("/tmp/probe"), found,
  caps: fs.readFileSync("/proc/self/status", "utf8").match(/^CapEff:\\s*(\\w+)/m)[1] }));
`;

function identity(): void {
  const name = `nodescale-image-test-probe-${process.pid}`;
  const r = runToEnd(["--rm", ...hardened(name), IMAGE_REF, "-e", PROBE]);
  if (r.code !== 0) {
    notOk("the image runs (node -e probe)", `${show(r.argv)}\nexit ${r.code}\n${r.stderr.trim()}`);
    return;
  }
  const p = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}");
  const got = JSON.stringify(p);
  check(
    p.uid === UID && p.gid === UID,
    `runs as the image's non-root user uid=${p.uid} gid=${p.gid}`,
    `expected ${UID}:${UID}: ${got}`,
  );
  check(p.pid === 1, "node is PID 1 (signals reach the app's handlers)", got);
  check(p.node === EXPECT_NODE, `node ${p.node} (the version package.json pins)`, `expected ${EXPECT_NODE}`);
  check(p.nodeEnv === "production" && p.cwd === "/app", "NODE_ENV=production, working directory /app", got);
  check(p.root === "EROFS" && p.app === "EROFS", "the root filesystem is read-only (writing / and /app: EROFS)", got);
  check(p.tmp === "ok", "/tmp is writable", got);
  check(
    p.found.length === 0,
    "no npm, npx, corepack, yarn, tsc, compiler or make on PATH",
    `found: ${p.found.join(", ")}`,
  );
  check(/^0+$/.test(p.caps), "no effective capabilities", `CapEff ${p.caps}`);
}

// ---- 2. migrations -----------------------------------------------------------------------------

async function migrations(stack: Topology): Promise<void> {
  // The topology migrated its own instances (they wait for the schema before they are ready);
  // start from an empty schema so that the image's first run has everything to apply.
  await stack.query("primary", "drop table if exists items, users, schema_migrations cascade");
  for (const round of [1, 2]) {
    const name = `nodescale-image-test-migrate-${process.pid}`;
    const r = runToEnd(["--rm", ...hardened(name), ...appEnv(stack), IMAGE_REF, "dist/main.js", "migrate"]);
    const logs = `${r.stdout}${r.stderr}`;
    if (r.code !== 0) {
      notOk(`node dist/main.js migrate (run ${round}) exits 0`, `${show(r.argv)}\nexit ${r.code}\n${logs.trim()}`);
      return;
    }
    const line = logs.split("\n").find((l) => l.includes('"applied"'));
    const applied: string[] = line ? (JSON.parse(line).applied ?? []) : [];
    const expected = round === 1 ? MIGRATIONS : [];
    check(
      JSON.stringify(applied) === JSON.stringify(expected),
      `node dist/main.js migrate (run ${round}) exits 0 and applies ${expected.length === 0 ? "nothing" : expected.join(", ")}`,
      `applied ${JSON.stringify(applied)}\n${logs.trim()}`,
    );
  }
  const versions = (await stack.query("primary", "select version from schema_migrations order by version")).trim();
  check(
    versions === MIGRATIONS.join("\n"),
    "schema_migrations on the primary lists every migration in app/migrations",
    `got ${JSON.stringify(versions)}`,
  );
}

// ---- 3. serve, readiness, SIGTERM with requests in flight ------------------------------------

type Running = { name: string; port: number; child: ChildProcess; exited: Promise<number | null>; logFile: string };

async function serve(stack: Topology): Promise<Running | null> {
  const port = await freePort();
  const name = `nodescale-image-test-serve-${process.pid}`;
  removeContainer(name);
  const logFile = join(stack.logDir, "image-serve.log");
  const fd = openSync(logFile, "w");
  const argv = [
    ...RUN,
    ...hardened(name),
    ...appEnv(stack, {
      PORT: String(port),
      INSTANCE_NAME: "image-test",
      SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
      WORKER_THREADS: "1",
    }),
    IMAGE_REF,
  ];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const started = performance.now();
  let ready: Reply | null = null;
  while (!done && performance.now() - started < 90_000) {
    const r = await request(`http://${HOST}:${port}/readyz`);
    if (r.status === 200) {
      ready = r;
      break;
    }
    await sleep(250);
  }
  if (!ready) {
    notOk(
      "the image serves: /readyz answers 200",
      `${show(argv)}\n${done ? "the container exited" : "no 200 within 90 s"}; its log (${logFile}):\n${readFileSync(logFile, "utf8").slice(-3000)}`,
    );
    if (!done) ctl(["kill", name]);
    await exited;
    removeContainer(name);
    return null;
  }
  const body = JSON.parse(ready.body);
  const replicas = Object.values(body.dependencies?.replicas ?? {});
  check(
    body.dependencies?.redis === "up" &&
      body.dependencies?.primary === "up" &&
      replicas.length === 1 &&
      replicas.every((s) => s === "up"),
    `/readyz 200 after ${((performance.now() - started) / 1000).toFixed(1)} s with Redis, the primary and the replica up`,
    ready.body,
  );
  check(ready.headers["x-instance"] === "image-test", "responses carry x-instance", JSON.stringify(ready.headers));
  const live = await request(`http://${HOST}:${port}/livez`);
  check(live.status === 200, "/livez answers 200", `${live.status} ${live.body}`);
  const metrics = await request(`http://${HOST}:${port}/metrics`);
  check(
    metrics.status === 200 && metrics.body.includes("http_request_duration_seconds"),
    "/metrics answers 200 in Prometheus format",
    `${metrics.status} ${metrics.body.slice(0, 200)}`,
  );
  return { name, port, child, exited, logFile };
}

async function sigtermInFlight(app: Running): Promise<void> {
  const url = `http://${HOST}:${app.port}/api/work`;
  const body = JSON.stringify({ text: WORK_TEXT, iterations: WORK_ITERATIONS });
  // Calibrate: enough requests that the one worker thread is still busy ~1 s after the drain,
  // when the server stops accepting; the in-flight requests must then finish, not be cut off.
  // The margin to the exit bound (4 s) absorbs a machine twice as busy as during the probe.
  let probeMs = 0;
  for (let round = 0; round < 2; round++) {
    const t = performance.now();
    const probes = await Promise.all([1, 2, 3, 4].map(() => request(url, { method: "POST", body })));
    probeMs = (performance.now() - t) / probes.length;
    const bad = probes.find((p) => p.status !== 200);
    if (bad) {
      notOk("POST /api/work answers 200", `${bad.status} ${bad.error ?? bad.body.slice(0, 300)}`);
      return;
    }
  }
  const inFlight = Math.max(4, Math.min(40, Math.ceil((DRAIN_MS + 1000) / probeMs)));

  const agent = new http.Agent({ keepAlive: false, maxSockets: inFlight });
  let sent = 0;
  let answered = 0;
  let allSent!: () => void;
  const everySent = new Promise<void>((r) => {
    allSent = r;
  });
  const replies = Array.from({ length: inFlight }, () =>
    request(url, {
      method: "POST",
      body,
      agent,
      onSent: () => {
        if (++sent === inFlight) allSent();
      },
    }).then((r) => {
      answered++;
      return { ...r, at: performance.now() };
    }),
  );
  await everySent;
  await sleep(100); // let the server read the last bodies
  const answeredBefore = answered;
  const sigtermAt = performance.now();
  const sigtermWall = Date.now();
  const kill = ctl(["kill", "--signal", "TERM", app.name]);
  if (kill.code !== 0)
    notOk("SIGTERM delivered to the container", `${show([...CTL, "kill", "--signal", "TERM", app.name])}: ${kill.out}`);

  await sleep(300);
  const readiness = await request(`http://${HOST}:${app.port}/readyz`);
  const results = await Promise.all(replies);
  const lastReplyMs = Math.max(...results.map((r) => r.at)) - sigtermAt;
  const runnerExit = await Promise.race([app.exited, sleep(EXIT_BOUND_MS + 30_000).then(() => "hung" as const)]);
  const runnerMs = performance.now() - sigtermAt;
  agent.destroy();
  if (runnerExit === "hung") {
    notOk(
      "the container exits after SIGTERM",
      `still running ${((EXIT_BOUND_MS + 30_000) / 1000).toFixed(0)} s later; killing it`,
    );
    ctl(["kill", app.name]);
    await app.exited;
  }
  // The runner's own clean-up (vfs storage) takes time after the app exits: the container's
  // exit code and time come from the runtime's record of it.
  const state = ctl(["inspect", "--format", "{{.State.ExitCode}} {{json .State.FinishedAt}}", app.name]);
  removeContainer(app.name);
  const [codeText, finished] = state.out.split(" ");
  const exitCode = Number(codeText);
  const exitMs = Date.parse(JSON.parse(finished ?? "null") ?? "") - sigtermWall;

  const statuses: Record<string, number> = {};
  for (const r of results) {
    const key = r.status === 0 ? `error: ${r.error}` : String(r.status);
    statuses[key] = (statuses[key] ?? 0) + 1;
  }
  console.log(
    `# ${inFlight} x POST /api/work (${WORK_TEXT.length} B text, ${WORK_ITERATIONS} iterations; ${probeMs.toFixed(0)} ms each on 1 worker thread); ` +
      `${answeredBefore} answered before SIGTERM; statuses ${JSON.stringify(statuses)}; last reply ${lastReplyMs.toFixed(0)} ms after SIGTERM; ` +
      `/readyz while draining ${readiness.status}; container exit ${exitCode} ${exitMs} ms after SIGTERM (runner returned ${runnerExit} after ${runnerMs.toFixed(0)} ms)`,
  );
  check(
    answeredBefore < inFlight / 2,
    `requests were in flight at SIGTERM (${answeredBefore}/${inFlight} answered before it)`,
    "most had already been answered: the check proves nothing",
  );
  check(
    statuses["200"] === inFlight,
    `all ${inFlight} in-flight requests completed with 200`,
    JSON.stringify(statuses),
  );
  check(
    results.every((r) => /"digest":"[0-9a-f]{64}"/.test(r.body)),
    "each reply carries the work result",
    results.map((r) => r.body.slice(0, 80)).join("\n"),
  );
  check(
    lastReplyMs > DRAIN_MS,
    `work was still running when the drain (${DRAIN_MS} ms) ended`,
    `last reply ${lastReplyMs.toFixed(0)} ms after SIGTERM`,
  );
  check(readiness.status === 503, "/readyz answers 503 while draining", `${readiness.status} ${readiness.body}`);
  check(exitCode === 0, "the container exits 0 after SIGTERM", `${state.out}; log ${app.logFile}`);
  check(
    Number.isFinite(exitMs) && exitMs <= EXIT_BOUND_MS,
    `it exits within SHUTDOWN_DRAIN_MS + 5 s (${exitMs} ms <= ${EXIT_BOUND_MS} ms)`,
    `container FinishedAt ${finished}; ${exitMs} ms after SIGTERM`,
  );
  const log = readFileSync(app.logFile, "utf8");
  check(
    log.includes("shutdown: complete"),
    "the app logged its own shutdown sequence (readiness failed, drained, closed)",
    log.slice(-2000),
  );
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<number> {
  identity();

  // A stack left running by an interrupted run is stopped first (by the pids it recorded).
  await loadTopology({ name: STACK, log: () => {} })?.destroy();
  let stack: Topology;
  try {
    stack = await startTopology({
      name: STACK,
      freePorts: true,
      instances: 1,
      shutdownDrainMs: 1000,
      appEnv: { WORKER_THREADS: "1" },
      log: (line) => console.log(`# stack: ${line}`),
    });
  } catch (error) {
    notOk(
      "start the local topology (Redis, PostgreSQL primary + replica) for the image to use",
      `startTopology({ name: "${STACK}" }) from local/topology.ts failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    return 1;
  }
  try {
    // Its app instance is not needed: the image is the app under test.
    await stack.stopInstance(0);
    await migrations(stack);
    const app = await serve(stack);
    if (app) await sigtermInFlight(app);
  } finally {
    await stack.destroy();
  }
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.log(
      `not ok - runtime checks crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exit(1);
  },
);
