// Where the read router sends a read, decided from what its polls saw. The pools here are
// stand-ins that answer the router's two poll queries with the WAL positions a test sets, so
// that each case can put a replica exactly at a hex-width boundary or exactly at the lag bound,
// with the clock under the test's control. The real replica is exercised by the integration
// tests (read-your-writes, lag-based skipping, a replica stopped mid-traffic).

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import type pg from "pg";
import type { Database } from "../../src/db/pools.ts";
import { createReadRouter, type ReadRouter } from "../../src/db/replicas.ts";
import type { ReadNeed } from "../../src/db/watermarks.ts";
import type { Logger } from "../../src/logger.ts";
import { createMetrics, type Metrics } from "../../src/metrics.ts";

type ReplicaAnswer = { replay: string | null; idleMs?: number | null } | Error;

/** A pool that answers the primary's or a replica's poll query from a value the test sets. */
function standIn(answer: () => unknown): pg.Pool & { queries: number } {
  const pool = {
    queries: 0,
    async query() {
      pool.queries++;
      // A promise holds the poll until the test settles it.
      const raw = answer();
      const value = raw instanceof Promise ? await raw : raw;
      if (value instanceof Error) throw value;
      return { rows: [value] };
    },
  };
  return pool as unknown as pg.Pool & { queries: number };
}

function fixture(replicaCount: number, maxLagMs = 1000) {
  const state = {
    primary: "0/1000" as string | Error,
    replicas: Array.from({ length: replicaCount }, (): ReplicaAnswer => ({ replay: "0/1000", idleMs: 0 })),
  };
  const primary = standIn(() => (state.primary instanceof Error ? state.primary : { lsn: state.primary }));
  const replicas = state.replicas.map((_, i) =>
    standIn(() => {
      const a = state.replicas[i] as ReplicaAnswer;
      return a instanceof Error ? a : { replay: a.replay, idle_ms: a.idleMs ?? null };
    }),
  );
  const db: Database = {
    primary: { name: "primary", pool: primary },
    replicas: replicas.map((pool, i) => ({ name: `replica-${i + 1}`, pool })),
    close: async () => undefined,
  };
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const record = (level: string) => (fields: Record<string, unknown> | string, message?: string) => {
    lines.push(
      typeof fields === "string" ? { level, message: fields, fields: {} } : { level, message: message ?? "", fields },
    );
  };
  const log = { info: record("info"), warn: record("warn"), error: record("error") } as unknown as Logger;
  const metrics = createMetrics();
  return {
    state,
    primary,
    replicas,
    lines,
    metrics,
    /** The router, created once the state is set: its first poll runs at creation. A long
     * interval leaves every later poll to the test. */
    start: () => createReadRouter(db, { maxLagMs, pollIntervalMs: 3_600_000 }, log, metrics),
  };
}

async function sample(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `${name} is registered`);
  const { values } = await metric.get();
  const found = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return found?.value;
}

const ANY: ReadNeed = { kind: "any" };
const after = (lsn: string): ReadNeed => ({ kind: "after", lsn });

const route = (router: ReadRouter, lsn?: string) => {
  const r = router.choose(lsn === undefined ? ANY : after(lsn));
  return `${r.route}:${r.name}`;
};

describe("read router", () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ["Date", "setTimeout"], now: 1_000_000 });
  });
  afterEach(() => {
    mock.timers.reset();
  });

  it("sends every read to the primary when there is no replica, and counts why", async () => {
    const { metrics, primary, start } = fixture(0);
    const router = start();
    const r = router.choose(ANY);
    assert.equal(r.route, "primary");
    assert.equal(r.name, "primary");
    assert.equal(r.pool, primary);
    assert.equal(r.reason, "no-replicas");
    assert.equal(await sample(metrics, "nodescale_db_reads_total", { route: "primary", reason: "no-replicas" }), 1);
    assert.equal(primary.queries, 0, "no background poll without replicas");
    router.close();
  });

  it("sends a read to a replica only once a poll has seen it streaming", async () => {
    const { metrics, replicas, start } = fixture(1);
    const router = start();
    // The first poll started at creation but has not answered yet.
    assert.equal(route(router), "primary:primary");
    assert.equal(router.choose(ANY).reason, "replicas-unavailable");
    await router.poll();
    const r = router.choose(ANY);
    assert.deepEqual([r.route, r.name, r.reason], ["replica", "replica-1", "ok"]);
    assert.equal(r.pool, replicas[0]);
    assert.equal(await sample(metrics, "nodescale_db_reads_total", { route: "replica", reason: "no-recent-write" }), 1);
    assert.equal(await sample(metrics, "nodescale_pg_replica_up", { replica: "replica-1" }), 1);
    assert.equal(await sample(metrics, "nodescale_pg_replica_lag_seconds", { replica: "replica-1" }), 0);
    router.close();
  });

  describe("read-your-writes across hex-width boundaries", () => {
    const cases: [replay: string, written: string][] = [
      ["0/FFFFFFFF", "1/0"],
      ["0/FFFFFFF", "0/10000000"],
      ["9/FFFFFFFF", "A/0"],
      ["F/FFFFFFFF", "10/0"],
    ];
    for (const [replay, written] of cases) {
      it(`a replica at ${replay} does not serve a user who wrote at ${written}; at ${written} it does`, async () => {
        const { state, metrics, start } = fixture(1);
        state.primary = written;
        state.replicas[0] = { replay, idleMs: 0 };
        const router = start();
        await router.poll();
        const behind = router.choose(after(written));
        assert.deepEqual([behind.route, behind.reason], ["primary", "read-your-writes"]);
        assert.equal(
          await sample(metrics, "nodescale_db_reads_total", { route: "primary", reason: "read-your-writes" }),
          1,
        );
        assert.equal(route(router, replay), "replica:replica-1", "a user whose write it has replayed");
        state.replicas[0] = { replay: written, idleMs: 0 };
        await router.poll();
        assert.equal(route(router, written), "replica:replica-1");
        assert.equal(await sample(metrics, "nodescale_db_reads_total", { route: "replica", reason: "caught-up" }), 2);
        router.close();
      });
    }
  });

  it("skips a replica that lags past the bound, and takes it back when it catches up", async () => {
    const maxLagMs = 1000;
    const { state, metrics, lines, start } = fixture(1, maxLagMs);
    state.primary = "0/100";
    state.replicas[0] = { replay: "0/100", idleMs: 0 };
    const router = start();
    await router.poll();
    // The primary moves on; the replica stays. Its lag is the time since the primary first
    // passed what the replica has replayed.
    mock.timers.tick(500);
    state.primary = "0/200";
    await router.poll();
    assert.equal(route(router), "replica:replica-1", "lag 0 ms at the first sample past it");
    mock.timers.tick(maxLagMs);
    await router.poll();
    assert.equal(route(router), "replica:replica-1", "lag exactly at the bound is still served");
    assert.equal(await sample(metrics, "nodescale_pg_replica_lag_seconds", { replica: "replica-1" }), maxLagMs / 1000);
    mock.timers.tick(1);
    await router.poll();
    const skipped = router.choose(ANY);
    assert.deepEqual([skipped.route, skipped.reason], ["primary", "replicas-unavailable"]);
    assert.equal(await sample(metrics, "nodescale_pg_replica_up", { replica: "replica-1" }), 0);
    assert.equal(await sample(metrics, "nodescale_pg_replica_lag_seconds", { replica: "replica-1" }), -1);
    const out = lines.find((l) => l.message === "replica taken out of the read rotation");
    assert.deepEqual(out && [out.level, out.fields.replica, out.fields.reason], ["warn", "replica-1", "lag 1001 ms"]);

    state.replicas[0] = { replay: "0/200", idleMs: 0 };
    mock.timers.tick(10);
    await router.poll();
    assert.equal(route(router), "replica:replica-1");
    assert.ok(lines.some((l) => l.level === "info" && l.message === "replica back in the read rotation"));
    router.close();
  });

  it("judges lag across an LSN width change by position, not by text", async () => {
    const { state, start } = fixture(1, 1000);
    state.primary = "0/FFFFFFFF";
    state.replicas[0] = { replay: "0/FFFFFFFF", idleMs: 0 };
    const router = start();
    await router.poll();
    mock.timers.tick(100);
    state.primary = "1/0";
    await router.poll();
    mock.timers.tick(1001);
    await router.poll();
    assert.equal(route(router), "primary:primary", "0/FFFFFFFF is behind 1/0 by 1001 ms");
    router.close();
  });

  it("trusts a replica's own idle time when it is behind every sample kept", async () => {
    const { state, start } = fixture(1, 1000);
    state.primary = "0/200";
    state.replicas[0] = { replay: "0/100", idleMs: 5000 };
    const router = start();
    await router.poll();
    assert.equal(route(router), "primary:primary", "behind the only sample and idle 5 s: skipped");
    const fresh = fixture(1, 1000);
    fresh.state.primary = "0/200";
    fresh.state.replicas[0] = { replay: "0/100", idleMs: null };
    const freshRouter = fresh.start();
    await freshRouter.poll();
    assert.equal(route(freshRouter), "replica:replica-1", "no idle time known: lag 0 until history says more");
    router.close();
    freshRouter.close();
  });

  it("keeps judging lag from the history when the primary does not answer a poll", async () => {
    const { state, start } = fixture(1, 1000);
    state.primary = "0/100";
    state.replicas[0] = { replay: "0/100", idleMs: 0 };
    const router = start();
    await router.poll();
    mock.timers.tick(10);
    state.primary = "0/200";
    await router.poll();
    state.primary = new Error("primary away");
    mock.timers.tick(1001);
    await router.poll();
    assert.equal(route(router), "primary:primary", "still at 0/100, 1001 ms after the primary passed it");
    router.close();
  });

  it("forgets samples older than the bound, so an old burst does not count against a replica", async () => {
    const maxLagMs = 1000;
    const { state, start } = fixture(1, maxLagMs);
    state.primary = "0/100";
    state.replicas[0] = { replay: "0/100", idleMs: 0 };
    const router = start();
    await router.poll();
    for (let i = 0; i < 5; i++) {
      mock.timers.tick(1000);
      state.primary = `0/${(0x200 + i).toString(16)}`;
      state.replicas[0] = { replay: state.primary, idleMs: 0 };
      await router.poll();
    }
    // Far later, the replica is one sample behind: lag is the time since that sample only.
    mock.timers.tick(200);
    state.primary = "0/300";
    await router.poll();
    mock.timers.tick(maxLagMs);
    await router.poll();
    assert.equal(route(router), "replica:replica-1", `${maxLagMs} ms behind the last sample`);
    router.close();
  });

  it("takes out a replica that is not streaming or fails its poll, with a metric", async () => {
    const { state, metrics, lines, start } = fixture(1);
    const router = start();
    await router.poll();
    assert.equal(route(router), "replica:replica-1");
    state.replicas[0] = { replay: null };
    await router.poll();
    assert.equal(route(router), "primary:primary");
    assert.equal(lines.at(-1)?.fields.reason, "not a streaming replica");
    state.replicas[0] = { replay: "0/1000" };
    await router.poll();
    assert.equal(route(router), "replica:replica-1");
    state.replicas[0] = new Error("connection refused");
    await router.poll();
    assert.equal(route(router), "primary:primary");
    assert.equal(lines.at(-1)?.fields.reason, "connection refused");
    assert.equal(await sample(metrics, "nodescale_dependency_errors_total", { service: "replica-1", kind: "poll" }), 1);
    router.close();
  });

  it("logs a replica's leaving and its return once each, however many polls it stays out", async () => {
    const { state, lines, start } = fixture(1);
    const router = start();
    await router.poll();
    const before = lines.length;
    state.replicas[0] = new Error("connection refused");
    for (let i = 0; i < 3; i++) await router.poll();
    state.replicas[0] = { replay: "0/1000", idleMs: 0 };
    for (let i = 0; i < 3; i++) await router.poll();
    assert.deepEqual(
      lines.slice(before).map((l) => `${l.level} ${l.message}`),
      ["warn replica taken out of the read rotation", "info replica back in the read rotation"],
    );
    router.close();
  });

  it("sends a read whose position is unknown to the primary, however healthy the replicas", async () => {
    const { metrics, start } = fixture(2);
    const router = start();
    await router.poll();
    assert.equal(route(router), "replica:replica-1");
    const r = router.choose({ kind: "unknown" });
    assert.deepEqual([r.route, r.reason], ["primary", "position-unknown"]);
    assert.equal(
      await sample(metrics, "nodescale_db_reads_total", { route: "primary", reason: "position-unknown" }),
      1,
    );
    router.close();
  });

  it("markDown takes a replica out until its next good poll; an unknown name changes nothing", async () => {
    const { start } = fixture(1);
    const router = start();
    await router.poll();
    router.markDown("replica-9", new Error("not ours"));
    assert.equal(route(router), "replica:replica-1");
    router.markDown("replica-1", new Error("query failed"));
    assert.equal(route(router), "primary:primary");
    router.markDown("replica-1", "a string reason");
    await router.poll();
    assert.equal(route(router), "replica:replica-1");
    router.close();
  });

  it("spreads reads over healthy replicas in turn, and skips one that lacks the session's write", async () => {
    const { state, start } = fixture(3);
    state.primary = "0/3000";
    state.replicas = [
      { replay: "0/3000", idleMs: 0 },
      { replay: "0/2000", idleMs: 0 },
      { replay: "0/3000", idleMs: 0 },
    ];
    const router = start();
    await router.poll();
    const order = Array.from({ length: 6 }, () => route(router).split(":")[1]);
    assert.deepEqual(order, ["replica-1", "replica-2", "replica-3", "replica-1", "replica-2", "replica-3"]);
    const caughtUp = Array.from({ length: 4 }, () => route(router, "0/3000").split(":")[1]);
    assert.deepEqual(caughtUp, ["replica-1", "replica-3", "replica-1", "replica-3"]);
    router.close();
  });

  it("polls in the background every interval until closed", async () => {
    const metrics = createMetrics();
    const replica = standIn(() => ({ replay: "0/1", idle_ms: 0 }));
    const primary = standIn(() => ({ lsn: "0/1" }));
    const db: Database = {
      primary: { name: "primary", pool: primary },
      replicas: [{ name: "replica-1", pool: replica }],
      close: async () => undefined,
    };
    const log = { info() {}, warn() {} } as unknown as Logger;
    const router = createReadRouter(db, { maxLagMs: 1000, pollIntervalMs: 250 }, log, metrics);
    await Promise.resolve();
    assert.equal(replica.queries, 1, "one poll at creation");
    for (let i = 2; i <= 4; i++) {
      mock.timers.tick(250);
      // Let the poll's promise chain settle before the next interval.
      for (let j = 0; j < 10; j++) await Promise.resolve();
      assert.equal(replica.queries, i, `poll ${i} after ${(i - 1) * 250} ms`);
    }
    router.close();
    mock.timers.tick(1000);
    for (let j = 0; j < 10; j++) await Promise.resolve();
    assert.equal(replica.queries, 4, "no poll after close()");
  });

  it("does not poll again when closed while a poll is still waiting for its answer", async () => {
    let answer!: () => void;
    const held = new Promise<void>((resolve) => {
      answer = resolve;
    });
    let hold = false;
    const replica = standIn(() =>
      hold ? held.then(() => ({ replay: "0/1", idle_ms: 0 })) : { replay: "0/1", idle_ms: 0 },
    );
    const primary = standIn(() => ({ lsn: "0/1" }));
    const db: Database = {
      primary: { name: "primary", pool: primary },
      replicas: [{ name: "replica-1", pool: replica }],
      close: async () => undefined,
    };
    const log = { info() {}, warn() {} } as unknown as Logger;
    const router = createReadRouter(db, { maxLagMs: 1000, pollIntervalMs: 250 }, log, createMetrics());
    for (let j = 0; j < 10; j++) await Promise.resolve();
    hold = true;
    mock.timers.tick(250);
    for (let j = 0; j < 10; j++) await Promise.resolve();
    assert.equal(replica.queries, 2, "the second poll is waiting for the replica");
    router.close();
    answer();
    for (let j = 0; j < 10; j++) await Promise.resolve();
    mock.timers.tick(1000);
    for (let j = 0; j < 10; j++) await Promise.resolve();
    assert.equal(replica.queries, 2, "no poll after close(), even one whose round was in flight");
  });
});
