// The capacity plan's arithmetic on a small made-up bench whose answers are worked out by
// hand below, so that a wrong weight, rounding or threshold shows as a wrong number.
//
// Mix: item-read 3 : item-write 1. Per request, weighted: app 0.75*0.2 + 0.25*0.6 = 0.3 ms,
// Redis 1.25 commands, 0.75 replica and 0.5 primary statements; PostgreSQL CPU: replica reads
// 0.75*0.05 = 0.0375 ms, primary writes 0.25*0.1 = 0.025 ms. Login: 100 ms, 4 commands,
// 1 statement whose primary CPU was not measured: 1000/4000 = 0.25 ms (PG_WRITES_PER_CORE).
// nginx 0.05 ms (the ramp shape). No operating point, poller or pinned reads: saturation
// costs only. Default assumptions. `full` further down adds those.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  acrossRuns,
  assumptions,
  bottleneck,
  clusterClientCost,
  latestBench,
  latestBenches,
  main,
  mixCosts,
  pgBouncerSize,
  pinnedReads,
  plan,
  redisClusterSize,
  replicasText,
  spreadOf,
  switchRates,
  walk,
  walls,
} from "../capacity.ts";

const bench = {
  startedAt: "2026-01-01T00:00:00Z",
  quick: false,
  durationS: 10,
  mix: [
    { endpoint: "item-read", weight: 3 },
    { endpoint: "item-write", weight: 1 },
  ],
  endpoints: [
    {
      name: "item-read",
      cpuMsPerRequest: 0.2,
      redisCommandsPerRequest: 1,
      pgReplicaStatementsPerRequest: 1,
      redisCpuMsPerRequest: 0.01,
      pgReplicaCpuMsPerRequest: 0.05,
    },
    {
      name: "item-write",
      cpuMsPerRequest: 0.6,
      redisCommandsPerRequest: 2,
      pgPrimaryStatementsPerRequest: 2,
      pgPrimaryCpuMsPerRequest: 0.1,
    },
    { name: "login", cpuMsPerRequest: 100, redisCommandsPerRequest: 4, pgPrimaryStatementsPerRequest: 1 },
  ],
  shapes: [{ shape: "ramp", cpuMsPerRequest: { nginx: 0.05 }, requests: 1 }],
  anchors: { express: { cpuMsPerRequest: 0.1 }, nodeHttp: { cpuMsPerRequest: 0.05 } },
} as unknown as Parameters<typeof plan>[0];

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} != ${expected}`);

describe("mixCosts", () => {
  it("weights each endpoint's costs by the mix", () => {
    const c = mixCosts(bench);
    close(c.appCpuMs, 0.3, "app CPU");
    close(c.redisCmds, 1.25, "Redis commands");
    close(c.redisCpuMs, 0.0075, "Redis CPU");
    close(c.pgReplica, 0.75, "replica statements");
    close(c.pgPrimary, 0.5, "primary statements");
    close(c.pgReplicaCpuMs, 0.0375, "replica CPU");
    close(c.pgPrimaryCpuMs, 0.025, "primary CPU");
    assert.equal(c.pgReplayCpuMs, 0, "no replica CPU measured during writes");
    assert.equal(c.pinned, null);
    assert.deepEqual(c.assumedPg, []);
    assert.deepEqual(c.login, {
      appCpuMs: 100,
      redisCmds: 4,
      pgPrimary: 1,
      pgPrimaryCpuMs: 0.25,
      pgPrimaryCpuMeasured: false,
      measured: true,
    });
    assert.equal(c.nginxCpuMs, 0.05);
    assert.match(c.source, /^saturation \(closed loop\)/);
    assert.deepEqual(c.statementClasses, { pointReadMs: 0.05, listMs: null, writeMs: 0.05, replayMsPerWrite: null });
    assert.deepEqual(c.poller, { primaryPerS: 0, replicaPerS: 0, measured: false, msPerStatement: 0.05 });
  });

  it("prices an endpoint without PostgreSQL CPU by its statements, and says so", () => {
    const bare = {
      ...bench,
      endpoints: bench.endpoints.map((e) => ({
        ...e,
        pgPrimaryCpuMsPerRequest: undefined,
        pgReplicaCpuMsPerRequest: undefined,
      })),
    } as typeof bench;
    const c = mixCosts(bare);
    // 0.25 * 2 statements * 1000/4000 ms; 0.75 * 1 * 1000/10,000 ms
    close(c.pgPrimaryCpuMs, 0.125, "primary CPU from PG_WRITES_PER_CORE");
    close(c.pgReplicaCpuMs, 0.075, "replica CPU from PG_READS_PER_CORE");
    assert.deepEqual(c.assumedPg, ["item-write primary", "item-read replica"]);
  });

  it("charges no server CPU to an endpoint that sends it no statement, and prices one whose CPU was too small to see", () => {
    const noisy = {
      ...bench,
      endpoints: bench.endpoints.map((e) =>
        e.name === "item-read"
          ? { ...e, pgPrimaryStatementsPerRequest: 0.01, pgPrimaryCpuMsPerRequest: 0.06 }
          : e.name === "login"
            ? { ...e, pgPrimaryStatementsPerRequest: 2, pgPrimaryCpuMsPerRequest: 0 }
            : e,
      ),
    } as typeof bench;
    const c = mixCosts(noisy);
    // item-read's 0.06 ms on the primary was autovacuum or a checkpoint, not its 0.01 statements
    close(c.pgPrimaryCpuMs, 0.025, "primary CPU: item-write's only");
    // 2 statements at 1000/4000 ms each
    assert.equal(c.login.pgPrimaryCpuMs, 0.5);
    assert.equal(c.login.pgPrimaryCpuMeasured, false);
    const measured = mixCosts({
      ...bench,
      endpoints: bench.endpoints.map((e) => (e.name === "login" ? { ...e, pgPrimaryCpuMsPerRequest: 0.3 } : e)),
    } as typeof bench);
    assert.deepEqual([measured.login.pgPrimaryCpuMs, measured.login.pgPrimaryCpuMeasured], [0.3, true]);
  });

  it("uses the given mix over the bench's, and names an endpoint the bench lacks", () => {
    close(mixCosts(bench, [{ endpoint: "item-write", weight: 7 }]).appCpuMs, 0.6, "write-only mix");
    assert.throws(() => mixCosts(bench, [{ endpoint: "work", weight: 1 }]), {
      message: "the bench has no measurement of work",
    });
    // Without a mix of its own, the bench is weighed by the shapes' API mix, which has more routes.
    assert.throws(() => mixCosts({ ...bench, mix: undefined }), /the bench has no measurement of item-list/);
  });

  it("falls back to stated login and ingress costs when the bench has none", () => {
    const bare = {
      ...bench,
      endpoints: bench.endpoints.filter((e) => e.name !== "login"),
      shapes: [],
    } as typeof bench;
    const c = mixCosts(bare);
    assert.deepEqual(c.login, {
      appCpuMs: 200,
      redisCmds: 8,
      pgPrimary: 1,
      pgPrimaryCpuMs: 0.25,
      pgPrimaryCpuMeasured: false,
      measured: false,
    });
    assert.equal(c.nginxCpuMs, 0.1);
    assert.equal(c.nginxMeasured, false);
  });
});

describe("plan", () => {
  it("sizes every part for 10,000 req/s", () => {
    const p = plan(bench, 10_000, assumptions({}));
    assert.equal(p.targetRps, 10_000);
    close(p.logins, 10, "logins/s");
    close(p.app.cores, 4, "app cores: (10,000 x 0.3 + 10 x 100) ms/s");
    assert.deepEqual(
      { pods: p.app.pods, rpsPerPod: p.app.rpsPerPod, minPods: p.app.minPods, maxPods: p.app.maxPods },
      { pods: 7, rpsPerPod: 1500, minPods: 2, maxPods: 10 },
    );
    assert.equal(p.app.coresAtMax, 10);
    close(p.ingress.cores, (0.05 * 10) / 0.6, "ingress cores");
    assert.equal(p.ingress.pods, 2);
    assert.deepEqual(p.redis, { opsPerS: 12_540, shards: 1, shardOps: 50_000, cluster: null, clusterClient: null });
    assert.equal(p.pg.readsPerS, 7500);
    // 10,000 x 0.0375 ms = 0.375 busy cores, at 60 %
    close(p.pg.readCores, 0.625, "replica cores");
    assert.equal(p.pg.replicas, 1);
    assert.equal(p.pg.writesPerS, 5010);
    // (10,000 x 0.025 + 10 logins x 0.25) ms = 0.2525 busy cores, at 60 %
    close(p.pg.primaryCores, 0.2525 / 0.6, "primary cores");
    assert.equal(p.pg.primaryFits, true);
    assert.deepEqual([p.pg.replayCores, p.pg.replayFits, p.pg.pinnedReads], [0, true, 0]);
    assert.deepEqual(p.pg.pollerStatementsPerS, { primary: 0, eachReplica: 0 });
    assert.equal(p.pg.connectionsPerServer, 100);
    assert.equal(p.pg.needsPooler, false);
    assert.equal(p.pg.pooler, null);
    close(p.load["app pods (HPA)"], 7, "app load");
    close(p.load["ingress controller"], (0.05 * 10) / 0.6 / 2, "ingress load");
    close(p.load["Redis (one shard)"], 12_540 / 50_000, "Redis load");
    close(p.load["PostgreSQL replica reads"], 0.625 / 8, "replica load");
    close(p.load["PostgreSQL primary writes"], 0.2525 / 0.6 / 64, "primary load");
    close(p.load["PostgreSQL connections"], 100 / 500, "connection load");
  });

  it("keeps two pods at least, and follows the assumptions", () => {
    const tiny = plan(bench, 100, assumptions({}));
    assert.deepEqual([tiny.app.pods, tiny.app.minPods, tiny.app.maxPods, tiny.ingress.pods], [1, 2, 2, 2]);
    assert.equal(tiny.redis.shards, 1);
    assert.equal(tiny.pg.replicas, 1);
    const faster = plan(
      bench,
      10_000,
      assumptions({ CPU_SPEED: "2", POD_CPU: "2", HEADROOM: "2", MIN_FRACTION: "0.5" }),
    );
    close(faster.app.cores, 2, "half the cores on cores twice as fast");
    assert.deepEqual([faster.app.pods, faster.app.minPods, faster.app.maxPods], [2, 2, 4]);
  });

  it("finds every wall at 1,000,000 req/s, hardest to fix first", () => {
    const p = plan(bench, 1_000_000, assumptions({}));
    // replicas: 1M x 0.0375 ms = 37.5 busy cores over 8 x 0.6 = 4.8 per replica -> 8
    assert.deepEqual(
      {
        pods: p.app.pods,
        maxPods: p.app.maxPods,
        ingress: p.ingress.pods,
        shards: p.redis.shards,
        replicas: p.pg.replicas,
      },
      { pods: 667, maxPods: 868, ingress: 42, shards: 26, replicas: 8 },
    );
    // (1M x 0.025 + 1,000 x 0.25) ms = 25.25 busy cores -> 42.08 at 60 %: one primary holds it
    close(p.pg.primaryCores, 25.25 / 0.6, "primary cores");
    assert.equal(p.pg.primaryFits, true);
    assert.equal(p.pg.needsPooler, true);
    const found = walls(p, assumptions({}));
    assert.deepEqual(
      found.map((w) => [w.name, Number(w.severity.toFixed(3))]),
      [
        ["Redis", 25.08],
        ["PostgreSQL connections", 17.36],
        ["PostgreSQL reads", 7.813],
        ["ingress", 20.833],
        ["app CPU", 333.5],
      ],
    );
    assert.deepEqual(
      found.map((w) => w.action),
      [
        "26 shards: turn on Redis Cluster, 26 primaries with 1 replica(s) each, 52 nodes (redis.enabled=false redisCluster.enabled=true redisCluster.cluster.nodes=52 redisCluster.cluster.replicas=1); one Redis primary, with Sentinel, only fails over",
        // hand-worked below, in "PgBouncer"
        "8,680 per server: turn on PgBouncer (transaction pooling), pgbouncer.enabled=true pgbouncer.replicaCount=84 pgbouncer.defaultPoolSize=2 pgbouncer.maxClientConnections=97650: PostgreSQL then sees at most 170 per server (84 pods + 1 in a rollout, x 2)",
        "postgresql.readReplicas.replicaCount=8; the app spreads reads over DATABASE_REPLICA_URLS",
        "42 controller replicas",
        "HPA 67..868 pods (stateless: sessions in Redis)",
      ],
    );
    assert.equal(bottleneck(p).name, "Redis");
    // a primary of at most 40 cores does not hold 42.08
    const small = walls(
      plan(bench, 1_000_000, assumptions({ PG_PRIMARY_MAX_CORES: "40" })),
      assumptions({ PG_PRIMARY_MAX_CORES: "40" }),
    )[0];
    assert.equal(small?.name, "PostgreSQL primary (writes)");
    close(small?.severity ?? 0, 25.25 / 0.6 / 40, "primary severity");
    assert.equal(
      small?.action,
      "42 cores of writes: more than one primary; shard writes (Citus) or batch them through a queue",
    );
  });

  it("names the app's CPU as the only wall at 10,000 req/s, and nothing below two pods", () => {
    const p = plan(bench, 10_000, assumptions({}));
    assert.deepEqual(walls(p, assumptions({})), [
      { name: "app CPU", action: "HPA 2..10 pods (stateless: sessions in Redis)", severity: 3.5 },
    ]);
    assert.equal(bottleneck(p).name, "app CPU");
    const idle = bottleneck(plan(bench, 100, assumptions({})));
    assert.deepEqual(idle, {
      name: "nothing yet",
      action: "the HPA minimum (2 pods, for the PodDisruptionBudget) idles; one Redis, one primary, one replica",
      severity: 0,
    });
  });

  it("puts a wall exactly past one unit: 3 app pods, 3 ingress pods, 2 shards, 2 replicas, 501 connections", () => {
    const A = assumptions({});
    const p = plan(bench, 10_000, A);
    const names = (q: typeof p) => walls(q, A).map((w) => w.name);
    assert.deepEqual(names({ ...p, app: { ...p.app, pods: 2 } }), []);
    assert.deepEqual(names({ ...p, ingress: { ...p.ingress, pods: 3 } }), ["ingress", "app CPU"]);
    assert.deepEqual(names({ ...p, redis: { ...p.redis, shards: 2 } }), ["Redis", "app CPU"]);
    assert.deepEqual(names({ ...p, pg: { ...p.pg, replicas: 2 } }), ["PostgreSQL reads", "app CPU"]);
    assert.deepEqual(names({ ...p, pg: { ...p.pg, needsPooler: true, connectionsPerServer: 501 } }), [
      "PostgreSQL connections",
      "app CPU",
    ]);
    const atLimit = plan(bench, 10_000, assumptions({ PG_MAX_CONNECTIONS: "100" }));
    assert.equal(atLimit.pg.needsPooler, false, "exactly max_connections still fits");
    const atCores = plan(bench, 10_000, assumptions({ PG_PRIMARY_MAX_CORES: String(p.pg.primaryCores) }));
    assert.equal(atCores.pg.primaryFits, true, "exactly the largest primary still fits");
    const below = plan(bench, 10_000, assumptions({ PG_PRIMARY_MAX_CORES: String(p.pg.primaryCores * 0.999) }));
    assert.equal(below.pg.primaryFits, false);
  });
});

describe("assumptions", () => {
  it("take a positive number from the environment, the default when unset or empty", () => {
    const A = assumptions({ POD_CPU: "2", HEADROOM: "" });
    assert.equal(A.POD_CPU?.value, 2);
    assert.equal(A.HEADROOM?.value, 1.3);
    assert.equal(A.TARGET_UTILIZATION?.value, 0.6);
    assert.equal(Object.keys(A).length, 22);
    assert.deepEqual(
      [A.POD_CPU?.basis, A.HEADROOM?.basis, A.CPU_SPEED?.basis, A.PG_UTILIZATION?.basis],
      ["set", "policy", "assumed", "policy"],
    );
    for (const a of Object.values(A)) {
      assert.ok(a.unit.length > 0 && a.why.length > 0, `${a.key} says what it is`);
      assert.ok(a.value > 0);
    }
  });

  for (const raw of ["abc", "0", "-1", "Infinity"])
    it(`refuse ${raw} with one line naming the variable`, () => {
      assert.throws(() => assumptions({ REDIS_UTILIZATION: raw }), {
        message: `REDIS_UTILIZATION=${raw}: expected a positive number`,
      });
    });
});

describe("latestBench", () => {
  it("picks the newest full run, a quick one only when there is nothing else", () => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-test-"));
    try {
      assert.equal(latestBench(join(dir, "missing")), null);
      assert.equal(latestBench(dir), null);
      writeFileSync(join(dir, "2026-01-02.json"), JSON.stringify({ quick: true }));
      assert.equal(latestBench(dir), join(dir, "2026-01-02.json"));
      writeFileSync(join(dir, "2026-01-01.json"), JSON.stringify({ quick: false }));
      writeFileSync(join(dir, "2026-01-03.json"), JSON.stringify({ quick: true }));
      writeFileSync(join(dir, "2026-01-04.html"), "<html>");
      assert.equal(latestBench(dir), join(dir, "2026-01-01.json"));
      writeFileSync(join(dir, "2026-01-05.json"), JSON.stringify({ quick: false }));
      assert.equal(latestBench(dir), join(dir, "2026-01-05.json"));
      // BENCH_PHASES=endpoints: newer, full length, but without the phases capacity sizes from
      writeFileSync(join(dir, "2026-01-06.json"), JSON.stringify({ quick: false, phasesNotRun: ["shapes"] }));
      assert.equal(latestBench(dir), join(dir, "2026-01-05.json"));
      writeFileSync(join(dir, "2026-01-07.json"), JSON.stringify({ quick: false, phasesNotRun: [] }));
      assert.equal(latestBench(dir), join(dir, "2026-01-07.json"));
      // another topology's run is not the plain stack's, and is found only when asked for
      writeFileSync(join(dir, "2026-01-08.json"), JSON.stringify({ quick: false, topology: { name: "pgbouncer" } }));
      assert.equal(latestBench(dir), join(dir, "2026-01-07.json"));
      assert.equal(latestBench(dir, "pgbouncer"), join(dir, "2026-01-08.json"));
      assert.equal(latestBench(dir, "redis-cluster"), null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("make capacity", () => {
  // In process, so that a mutation test sees what the printing code does; one run below goes
  // through the real command line.
  const run = (env: Record<string, string>, args: string[] = []) => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-cli-"));
    const file = join(dir, "bench.json");
    writeFileSync(file, JSON.stringify(bench));
    const stdout: string[] = [];
    const stderr: string[] = [];
    try {
      const status = main(
        args,
        { BENCH_JSON: file, ...env },
        (s) => stdout.push(`${s}\n`),
        (s) => stderr.push(`${s}\n`),
      );
      return { status, stdout: stdout.join(""), stderr: stderr.join("") };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("prints the plan for TARGET_RPS: needs, HPA range and the walls", () => {
    const r = run({ TARGET_RPS: "10000" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^capacity from .*bench\.json \(bench of 2026-01-01T00:00:00Z\)$/m);
    assert.match(r.stdout, /^ {2}app {15}4\.0 cores busy -> 7 pods of 1 core at 60 % \(1,500 req\/s per pod\)$/m);
    assert.match(r.stdout, /^ {2}HPA {15}minReplicas 2, maxReplicas 10 \(10 cores at max\)$/m);
    assert.match(r.stdout, /^ {2}Redis {13}12,540 ops\/s -> 1 shard\(s\) at 50,000 ops\/s each$/m);
    assert.match(r.stdout, /^walls, hardest to fix first .*the first is the bottleneck:$/m);
    assert.match(r.stdout, /^ {2}app CPU {22}x3\.5 {4}HPA 2\.\.10 pods/m);
  });

  it("says when nothing is a wall yet", () => {
    const r = run({ TARGET_RPS: "100" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^bottleneck: nothing yet: the HPA minimum/m);
  });

  it("walks 100 to 1,000,000 req/s in decades, one table row each", () => {
    const r = run({}, ["--walk"]);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.split("\n").filter((l) => /^\| [\d,]+ \|/.test(l));
    assert.deepEqual(
      rows.map((l) => l.split("|")[1]?.trim()),
      ["100", "1,000", "10,000", "100,000", "1,000,000"],
    );
    assert.match(rows[4] ?? "", /\| Redis \|.*; also: PostgreSQL connections, PostgreSQL reads, ingress, app CPU \|$/);
  });

  it("refuses a TARGET_RPS that is not a number of at least 1, in one line and before any output", () => {
    for (const raw of ["abc", "0"]) {
      const r = run({ TARGET_RPS: raw });
      assert.equal(r.status, 2);
      assert.equal(r.stderr, `capacity: TARGET_RPS=${raw}: expected a number >= 1\n`);
      assert.equal(r.stdout, "");
    }
  });

  it("runs as a command: exit code and output through the process", () => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-cli-"));
    const file = join(dir, "bench.json");
    writeFileSync(file, JSON.stringify(bench));
    try {
      const script = join(import.meta.dirname, "..", "capacity.ts");
      const env = { PATH: process.env.PATH, BENCH_JSON: file };
      const ok = spawnSync(process.execPath, [script], { env: { ...env, TARGET_RPS: "10000" }, encoding: "utf8" });
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /^ {2}HPA {15}minReplicas 2, maxReplicas 10 \(10 cores at max\)$/m);
      const bad = spawnSync(process.execPath, [script], { env: { ...env, TARGET_RPS: "abc" }, encoding: "utf8" });
      assert.equal(bad.status, 2);
      assert.equal(bad.stderr, "capacity: TARGET_RPS=abc: expected a number >= 1\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The same bench with what a current `make bench` adds: the endpoints again at the operating
// point (open loop at 60 % of a core), the idle replica-lag polls of its 2 instances, and the
// share of item reads read-your-writes sent to the primary in the ramp.
//   app 0.75*0.4 + 0.25*0.8 = 0.5 ms; primary CPU 0.25*0.2 = 0.05 ms; replica reads
//   0.75*0.08 = 0.06 ms; replay 0.25*0.04 = 0.01 ms on each replica; pinned 1 of 4 = 0.25 with
//   25 users writing 50 items in the 10 s ramp (0.2 writes/s each): a window of
//   T = -ln(0.75) / 0.2 s, so at USER_WRITES_PER_S 0.2 the share is 0.25 again, and at the
//   default 0.01 it is 1 - exp(-0.01 T) = 1 - 0.75^0.05;
//   poller 8/2 = 4 statements/s per pod on the primary, 2/2 = 1 on each replica, priced like
//   a point read (0.08 ms).
const full = {
  ...bench,
  instances: 2,
  users: 25,
  background: { primaryPerS: 8, replicaPerS: 2 },
  operatingPoint: {
    utilization: 0.6,
    endpoints: [
      {
        name: "item-read",
        cpuMsPerRequest: 0.4,
        redisCommandsPerRequest: 1,
        pgReplicaStatementsPerRequest: 1,
        pgReplicaCpuMsPerRequest: 0.08,
        pgPrimaryCpuMsPerRequest: 0,
      },
      {
        name: "item-write",
        cpuMsPerRequest: 0.8,
        redisCommandsPerRequest: 2,
        pgPrimaryStatementsPerRequest: 2,
        pgPrimaryCpuMsPerRequest: 0.2,
        pgReplicaCpuMsPerRequest: 0.04,
      },
    ],
  },
  shapes: [
    {
      shape: "ramp",
      cpuMsPerRequest: { nginx: 0.05 },
      requests: 1,
      durationS: 10,
      routes: [
        { route: "GET /api/items/:id", requests: 4, dbRoutes: { primary: 1, replica: 3 } },
        { route: "POST /api/items", requests: 50, dbRoutes: { primary: 50 } },
      ],
    },
  ],
} as unknown as Parameters<typeof plan>[0];

describe("the operating point, PostgreSQL by statement class, the poller and pinned reads", () => {
  it("takes each endpoint's costs from the operating point, and prices each statement class", () => {
    const c = mixCosts(full);
    assert.equal(c.source, "operating point: open loop at 0.6 of a core");
    close(c.appCpuMs, 0.5, "app CPU");
    close(c.pgPrimaryCpuMs, 0.05, "primary CPU");
    close(c.pgReplicaCpuMs, 0.06, "replica read CPU");
    close(c.pgReplayCpuMs, 0.01, "replay CPU");
    assert.equal(c.pinned?.measured, 0.25);
    assert.equal(c.pinned?.users, 25);
    assert.equal(c.pinned?.writesPerUserS, 0.2);
    close(c.pinned?.windowS ?? 0, -Math.log(0.75) / 0.2, "pinned window");
    close(c.pinned?.atScale ?? 0, 1 - 0.75 ** 0.05, "pinned share at 0.01 writes/s per user");
    close(pinnedReads(full, assumptions({ USER_WRITES_PER_S: "0.2" }))?.atScale ?? 0, 0.25, "the bench's own rate");
    assert.deepEqual(c.statementClasses, { pointReadMs: 0.08, listMs: null, writeMs: 0.1, replayMsPerWrite: 0.04 });
    assert.deepEqual(c.poller, { primaryPerS: 4, replicaPerS: 1, measured: true, msPerStatement: 0.08 });
    assert.equal(pinnedReads({ ...full, shapes: [] } as typeof full), null);
  });

  // users who write as often as the bench's: a quarter of the reads pinned, as measured
  const asBench = () => assumptions({ USER_WRITES_PER_S: "0.2" });

  it("sizes 100,000 req/s: pinned reads and polls on the primary, replay and polls on every replica", () => {
    const p = plan(full, 100_000, asBench());
    // app (100,000 x 0.5 + 100 logins x 100) ms = 60 cores -> 100 pods, max 130
    assert.deepEqual([p.app.pods, p.app.maxPods, p.app.minPods], [100, 130, 10]);
    // primary: (100,000 x 0.05 + 100 x 0.25 + 100,000 x 0.06 x 0.25) ms = 6.525 cores,
    // + 130 pods x 4 polls x 0.08 ms = 0.0416 -> 6.5666 busy, 10.944 at 60 %
    close(p.pg.primaryCores, 6.5666 / 0.6, "primary cores");
    // reads: 100,000 x 0.06 x 0.75 = 4.5 busy cores; a replica has 4.8 - 1.0 replay
    // - 130 x 1 x 0.08 ms (0.0104) = 3.7896 for them -> 2 replicas
    close(p.pg.readCores, 4.5 / 0.6, "read cores");
    assert.equal(p.pg.replicas, 2);
    close(p.pg.replayCores, 1, "replay cores");
    assert.equal(p.pg.replayFits, true, "exactly one core of replay still fits");
    assert.deepEqual(p.pg.pollerStatementsPerS, { primary: 520, eachReplica: 130 });
    // at the default 0.01 writes/s per user, pinned = 1 - 0.75^0.05: fewer reads on the primary
    const pinned = 1 - 0.75 ** 0.05;
    const q = plan(full, 100_000, assumptions({}));
    close(q.pg.primaryCores, (5.025 + 6 * pinned + 0.0416) / 0.6, "primary cores, few pinned");
    close(q.pg.readCores, (6 * (1 - pinned)) / 0.6, "read cores, few pinned");
  });

  it("takes replay from the replica's startup process where the bench measured it apart", () => {
    const apart = {
      ...full,
      operatingPoint: {
        ...full.operatingPoint,
        endpoints: full.operatingPoint?.endpoints.map((e) =>
          e.name === "item-write" ? { ...e, pgReplayCpuMsPerRequest: 0.03 } : e,
        ),
      },
    } as typeof full;
    const p = plan(apart, 100_000, asBench());
    // replay: 100,000 x 0.25 x 0.03 ms = 0.75 cores; taking the writes in: 0.04 ms -> 1.0
    close(p.pg.replayCores, 0.75, "replay cores");
    close(p.pg.replicaWriteCores, 1, "write cores per replica");
    assert.equal(p.pg.replicas, 2);
    assert.equal(mixCosts(apart).statementClasses.replayMsPerWrite, 0.03);
  });

  it("puts WAL replay first past one core, before Redis and the rest", () => {
    const A = asBench();
    const p = plan(full, 200_000, A);
    const found = walls(p, A);
    assert.deepEqual(
      found.map((w) => w.name),
      ["PostgreSQL WAL replay", "Redis", "PostgreSQL connections", "PostgreSQL reads", "ingress", "app CPU"],
    );
    close(found[0]?.severity ?? 0, 2, "replay severity");
    assert.equal(
      found[0]?.action,
      "2.0 cores of replay on every replica, done by one process: no replica keeps up; fewer or smaller writes, or shard them",
    );
    // By cores alone a replica would have 4.8 - 2.0 - 260 x 0.08 ms (0.0208) = 2.7792 for 9 busy,
    // 4 replicas; but replay is one process, so no count of them keeps up, and the plan says so.
    assert.equal(p.pg.replicas, Number.POSITIVE_INFINITY);
  });

  it("says when a replica has no room left for reads", () => {
    const A = assumptions({ PG_REPLICA_CORES: "1" });
    const p = plan(full, 100_000, A);
    assert.equal(p.pg.replicas, Number.POSITIVE_INFINITY);
    const reads = walls(p, A).find((w) => w.name === "PostgreSQL reads");
    assert.equal(
      reads?.action,
      "a replica of 1 cores has no room for reads after replay and polls: bigger replicas (PG_REPLICA_CORES)",
    );
  });

  it("prints where each cost comes from and each assumption's basis", () => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-cli-"));
    const file = join(dir, "bench.json");
    writeFileSync(file, JSON.stringify(full));
    const lines: string[] = [];
    try {
      assert.equal(
        main([], { BENCH_JSON: file, TARGET_RPS: "100000", CPU_SPEED: "1" }, (s) => lines.push(s), assert.fail),
        0,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const out = lines.join("\n");
    assert.match(
      out,
      /^measured per request \(bench, weighted by the mix; from the operating point: open loop at 0\.6 of a core\):$/m,
    );
    assert.match(
      out,
      /^ {2}per statement {5}point read 0\.080 ms, list not measured \(replica CPU\); write 0\.100 ms per statement/m,
    );
    assert.match(
      out,
      /^ {2}replica poller {4}4\.0 statements\/s per pod on the primary, 1\.0 on each replica \(measured idle\)/m,
    );
    assert.match(
      out,
      /^ {2}pinned reads {6}25\.0 % of item reads went to the primary \(read-your-writes\) in the ramp, 25 users writing 0\.20\/s each: pinned 1\.44 s after a write -> 1\.43 % at USER_WRITES_PER_S \(assumed\)$/m,
    );
    assert.match(out, /^ {2}CPU_SPEED +1 x this machine +\[set\]/m);
    assert.match(out, /^ {2}LOGIN_FRACTION +0\.001 logins per request \[assumed\]/m);
    assert.match(out, /^ {2}POD_CPU +1 cores +\[policy\]/m);
    assert.match(out, /^ {2}REDIS_OPS_PER_CORE +100000 ops\/s +\[assumed; Redis CPU not measured\]/m);
    assert.match(out, /^ {2}Redis {13}1\.25 commands {2}\(login: 4\) {2}Redis CPU not measured$/m);
  });
});

describe("several bench runs", () => {
  // the fixture with item-read at 0.2 (the base), 0.3 and 0.1 ms of app CPU: mix costs 0.3,
  // 0.375 and 0.225 ms; at 10,000 req/s + 10 logins of 100 ms: 4, 4.75 and 3.25 cores,
  // / 0.6 per pod -> 7, 8 and 6 pods
  const withRead = (ms: number, knee: number) =>
    ({
      ...bench,
      kneeRps: knee,
      endpoints: bench.endpoints.map((e) => (e.name === "item-read" ? { ...e, cpuMsPerRequest: ms } : e)),
    }) as typeof bench;
  const runs = [withRead(0.2, 900), withRead(0.3, 800), withRead(0.1, 1200)];

  it("spreadOf gives the median, the lowest and the highest", () => {
    assert.deepEqual(spreadOf([8, 6, 7]), { median: 7, low: 6, high: 8 });
    assert.deepEqual(spreadOf([4, 1, 3, 2]), { median: 2.5, low: 1, high: 4 });
    assert.deepEqual(spreadOf([]), { median: 0, low: 0, high: 0 });
  });

  it("sizes the target from each run and names the median one", () => {
    const a = acrossRuns(runs, 10_000, assumptions({}));
    assert.equal(a.runs, 3);
    assert.deepEqual(a.pods, { median: 7, low: 6, high: 8 });
    close(a.appCpuMs.median, 0.3, "median app CPU");
    close(a.appCpuMs.low, 0.225, "lowest app CPU");
    close(a.appCpuMs.high, 0.375, "highest app CPU");
    assert.deepEqual(a.knee, { median: 900, low: 800, high: 1200 });
    assert.deepEqual(a.bottlenecks, ["app CPU", "app CPU", "app CPU"]);
    assert.equal(a.median, 0, "the first run has the median pods");
  });

  it("prints the spread over the runs of a BENCH_JSON list, then the median run's plan", () => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-runs-"));
    const files = runs.map((b, i) => {
      const f = join(dir, `run-${i}.json`);
      writeFileSync(f, JSON.stringify(b));
      return f;
    });
    const lines: string[] = [];
    try {
      const status = main([], { BENCH_JSON: files.join(","), TARGET_RPS: "10000" }, (x) => lines.push(x), assert.fail);
      assert.equal(status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const out = lines.join("\n");
    assert.match(
      out,
      /^over 3 bench runs \(.*run-0\.json, .*run-1\.json, .*run-2\.json\), at 10,000 req\/s, median \(low-high\):$/m,
    );
    assert.match(
      out,
      /^ {2}app CPU 0\.300 \(0\.225-0\.375\) ms\/req; app pods 7 \(6-8\); primary cores 0\.4 \(0\.4-0\.4\); replicas 1 \(1-1\); knee 900 \(800-1,200\) req\/s$/m,
    );
    assert.match(out, /^capacity from .*run-0\.json/m);
    assert.match(out, /^ {2}app {15}4\.0 cores busy -> 7 pods/m);
  });

  it("refuses a BENCH_RUNS that is not a whole number of at least 1", () => {
    const errs: string[] = [];
    assert.equal(
      main([], { BENCH_RUNS: "0" }, assert.fail, (x) => errs.push(x)),
      2,
    );
    assert.deepEqual(errs, ["capacity: BENCH_RUNS=0: expected a whole number >= 1"]);
  });

  it("latestBenches takes the newest full runs, oldest first", () => {
    const dir = mkdtempSync(join(tmpdir(), "capacity-latest-"));
    try {
      for (const [name, quick] of [
        ["2026-01-01", false],
        ["2026-01-02", true],
        ["2026-01-03", false],
        ["2026-01-04", false],
      ] as const)
        writeFileSync(join(dir, `${name}.json`), JSON.stringify({ quick }));
      assert.deepEqual(latestBenches(dir, 2), [join(dir, "2026-01-03.json"), join(dir, "2026-01-04.json")]);
      assert.deepEqual(latestBenches(dir, 9).length, 3);
      assert.deepEqual(latestBenches(join(dir, "missing"), 3), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The two switches of issue 17, sized by hand.
describe("Redis Cluster", () => {
  it("is not needed for one shard, and has 3 primaries at least", () => {
    assert.equal(redisClusterSize(1), null);
    // 2 shards: Redis Cluster cannot have fewer than 3 primaries
    assert.deepEqual(redisClusterSize(2), {
      primaries: 3,
      replicasPerPrimary: 1,
      nodes: 6,
      values: [
        "redis.enabled=false",
        "redisCluster.enabled=true",
        "redisCluster.cluster.nodes=6",
        "redisCluster.cluster.replicas=1",
      ],
    });
  });

  it("counts every node for Bitnami's cluster.nodes: primaries x (1 + replicas)", () => {
    // 42 shards with 2 replicas each: 42 x 3 = 126 nodes
    const c = redisClusterSize(42, assumptions({ REDIS_CLUSTER_REPLICAS: "2" }));
    assert.deepEqual([c?.primaries, c?.replicasPerPrimary, c?.nodes], [42, 2, 126]);
    assert.ok(c?.values.includes("redisCluster.cluster.nodes=126"));
  });

  it("is in the plan past one shard: 100,000 req/s of the small bench need 3 shards", () => {
    // 100,000 x 1.25 + 100 logins x 4 = 125,400 ops/s over 50,000 per shard -> 3 shards
    const p = plan(bench, 100_000, assumptions({}));
    assert.equal(p.redis.shards, 3);
    assert.equal(p.redis.cluster?.nodes, 6);
    assert.match(walls(p, assumptions({}))[0]?.action ?? "", /^3 shards: turn on Redis Cluster, 3 primaries/);
  });
});

describe("PgBouncer", () => {
  it("sizes max_client_conn, pods and default_pool_size so that PostgreSQL sees a bounded count", () => {
    // clients: (868 + ceil(868 x 0.25) = 217) pods x PG_POOL_MAX 10 x (1 primary + 8 replicas) = 97,650
    // pods: 1,251,000 statements/s x 1/30 ms = 41.7 cores at 0.5 -> 84
    // pool: 2 x 42.08 primary cores = 84.2 -> 85 server connections over 84 pods -> 2 each;
    // PostgreSQL sees (84 + 1) x 2 = 170, within 500 - 10
    const s = pgBouncerSize(
      { maxPods: 868, replicas: 8, statementsPerS: 1_251_000, msPerStatement: 1 / 30, serverCores: 25.25 / 0.6 },
      assumptions({}),
    );
    assert.deepEqual([s.maxClientConn, s.pods, s.poolSize, s.perServer, s.fits], [97_650, 84, 2, 170, true]);
    close(s.cores, 41.7, "PgBouncer cores");
    assert.deepEqual(s.values, [
      "pgbouncer.enabled=true",
      "pgbouncer.replicaCount=84",
      "pgbouncer.defaultPoolSize=2",
      "pgbouncer.maxClientConnections=97650",
    ]);
  });

  it("keeps two pods for a small load, and says when the pools do not fit max_connections", () => {
    // 3,000 statements/s x 0.02 ms = 0.06 cores -> still 2 pods; 2 x 8 cores = 16 -> 8 per pod;
    // (2 + 1) x 8 = 24 per server; 10 pods x 10 x 2 pools... (10 + 3) x 10 x 2 = 260 clients
    const small = pgBouncerSize(
      { maxPods: 10, replicas: 1, statementsPerS: 3000, msPerStatement: 0.02, serverCores: 8 },
      assumptions({}),
    );
    assert.deepEqual([small.pods, small.poolSize, small.perServer, small.maxClientConn], [2, 8, 24, 260]);
    // max_connections 30 leaves 20: 24 does not fit
    const tight = pgBouncerSize(
      { maxPods: 10, replicas: 1, statementsPerS: 3000, msPerStatement: 0.02, serverCores: 8 },
      assumptions({ PG_MAX_CONNECTIONS: "30" }),
    );
    assert.equal(tight.fits, false);
  });

  it("takes PgBouncer's CPU per statement from a pgbouncer bench when given one", () => {
    // PgBouncer 0.01 ms per read, 0.02 ms per write: 0.75 x 0.01 + 0.25 x 0.02 = 0.0125 ms per
    // request over 0.75 + 0.5 statements = 0.01 ms per statement
    const pgb = {
      ...bench,
      startedAt: "2026-01-02T00:00:00Z",
      topology: { name: "pgbouncer" },
      endpoints: bench.endpoints.map((e) =>
        e.name === "item-read"
          ? { ...e, pgbouncerCpuMsPerRequest: 0.01 }
          : e.name === "item-write"
            ? { ...e, pgbouncerCpuMsPerRequest: 0.02 }
            : e,
      ),
    } as typeof bench;
    const p = plan(bench, 1_000_000, assumptions({}), { pgbouncer: pgb });
    close(p.pg.pooler?.msPerStatement ?? 0, 0.01, "ms per statement");
    // 1,251,000 x 0.01 ms = 12.51 cores at 0.5 -> 26 pods; 85 connections over 26 -> 4 each
    assert.deepEqual([p.pg.pooler?.pods, p.pg.pooler?.poolSize, p.pg.pooler?.perServer], [26, 4, 108]);
    assert.equal(p.pg.pooler?.measuredBy, "2026-01-02T00:00:00Z");
    assert.equal(plan(bench, 1_000_000, assumptions({})).pg.pooler?.measuredBy, null);
  });
});

describe("a cluster client's cost", () => {
  it("is the mix's app CPU in Express units against the plain run, back in the plain run's ms", () => {
    // plain: 0.3 ms over Express 0.1 = x3; cluster: app 0.75 x 0.3 + 0.25 x 0.9 = 0.45 ms over
    // Express 0.125 = x3.6: +0.6 x 0.1 = +0.06 ms per request
    const cluster = {
      ...bench,
      startedAt: "2026-01-03T00:00:00Z",
      anchors: { ...bench.anchors, express: { cpuMsPerRequest: 0.125 } },
      endpoints: bench.endpoints.map((e) =>
        e.name === "item-read"
          ? { ...e, cpuMsPerRequest: 0.3, redisCpuMsPerRequest: 0.02 }
          : e.name === "item-write"
            ? { ...e, cpuMsPerRequest: 0.9 }
            : e,
      ),
    } as typeof bench;
    const k = clusterClientCost(bench, cluster);
    close(k.xExpress.plain, 3, "plain x Express");
    close(k.xExpress.cluster, 3.6, "cluster x Express");
    close(k.appMsDelta, 0.06, "ms per request");
    // 1.25 commands per 0.75 x 0.02 = 0.015 ms of Redis CPU: 83,333 a core-second
    assert.equal(Math.round(k.redisCmdsPerCoreS ?? 0), 83_333);
    // 100,000 req/s need 3 shards: app cores 100,000 x 0.3 + 100 logins x 100 ms = 40, + 100,000 x
    // 0.06 ms = 46 -> 77 pods at 0.6
    const p = plan(bench, 100_000, assumptions({}), { redisCluster: cluster });
    assert.equal(p.redis.clusterClient?.pods, 77);
    assert.equal(p.app.pods, 67, "not folded into the plan's own pods");
    assert.equal(plan(bench, 10_000, assumptions({}), { redisCluster: cluster }).redis.clusterClient, null);
    // a run with an operating point against one without: both priced at saturation
    assert.equal(k.basis, "saturation");
    assert.equal(clusterClientCost(full, cluster).basis, "saturation");
    close(clusterClientCost(full, cluster).xExpress.plain, 3, "full at saturation is bench's x3");
    assert.equal(clusterClientCost(full, full).basis, "operating point");
  });
});

describe("a plan in which no replica keeps up", () => {
  it("says so in words, never Infinity", () => {
    assert.equal(replicasText(Number.POSITIVE_INFINITY), "none keeps up");
    assert.equal(replicasText(3), "3");
    // replay of 0.6 ms per request: 1,000,000 req/s leave an 8-core replica no room
    const heavy = {
      ...bench,
      endpoints: bench.endpoints.map((e) => (e.name === "item-write" ? { ...e, pgReplicaCpuMsPerRequest: 0.6 } : e)),
    } as typeof bench;
    assert.equal(plan(heavy, 1_000_000, assumptions({})).pg.replicas, Number.POSITIVE_INFINITY);
    const rows: string[] = [];
    walk(heavy, assumptions({}), (l) => rows.push(l));
    const top = rows.filter((l) => l.startsWith("| 1,000,000 |"))[0] ?? "";
    assert.match(top, /^\| 1,000,000 \|.*\| 750,000 \(none keeps up\) \|/);
    assert.doesNotMatch(rows.join("\n"), /Infinity/);
  });
});

describe("switchRates", () => {
  it("finds the first rate at which each switch turns on", () => {
    const A = assumptions({});
    const on = switchRates(bench, A);
    // Redis: 1.25 + 0.001 x 4 = 1.254 commands per request past 50,000 ops/s: 39,872.4 -> 39,873
    assert.equal(on.redisCluster, 39_873);
    // PgBouncer: 0.4 ms of app CPU per request (0.3 + 0.001 x 100): 39 pods (maxReplicas 51,
    // 510 connections) past 38 x 0.6 / 0.0004 = 57,000 req/s
    const r = on.pgbouncer as number;
    assert.ok(r >= 56_990 && r <= 57_010, String(r));
    assert.equal(plan(bench, r, A).pg.needsPooler, true);
    assert.equal(plan(bench, r - 1, A).pg.needsPooler, false);
    assert.equal(plan(bench, r, A).app.maxPods, 51);
  });

  it("says so under the walk's table", () => {
    const rows: string[] = [];
    walk(bench, assumptions({}), (l) => rows.push(l));
    assert.match(
      rows.at(-1) ?? "",
      /^The switches: Redis Cluster from 39,873 req\/s \(Redis past one shard: 50,000 ops\/s\); PgBouncer from 5\d,\d{3} req\/s/,
    );
    assert.equal(switchRates(bench, assumptions({ REDIS_OPS_PER_CORE: "1e9" })).redisCluster, null);
  });
});
