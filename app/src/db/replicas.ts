import type pg from "pg";
import { Counter, Gauge } from "prom-client";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { parseLsn } from "./lsn.ts";
import type { Database, NamedPool } from "./pools.ts";
import type { ReadNeed } from "./watermarks.ts";

// Chooses where a read runs. A replica serves a read only when it is up, no further behind
// than the configured bound, and, for a user who has written, has replayed past that user's
// last write (read-your-writes). Otherwise the primary serves it; so does a read whose
// position is unknown (Redis did not answer), since it may be the writer's own.
//
// What each replica has replayed is polled in the background, so the request path adds no
// round trip; a stale poll only under-reports progress, which sends a read to the primary,
// never to a replica that lacks the reader's write.

export type ReadRoute = { route: "replica" | "primary"; pool: pg.Pool; name: string; reason: string };

type ReplicaState = {
  replica: NamedPool;
  healthy: boolean;
  replayLsn: bigint | null;
  lagMs: number;
};

export type ReadRouter = {
  choose(need: ReadNeed): ReadRoute;
  /** Takes a replica out of rotation after a failed query, until the next successful poll. */
  markDown(name: string, error: unknown): void;
  /** Polls once (the background loop calls this; tests may too). */
  poll(): Promise<void>;
  close(): void;
};

export function createReadRouter(
  db: Database,
  options: { maxLagMs: number; pollIntervalMs: number },
  log: Logger,
  metrics: Metrics,
): ReadRouter {
  const states: ReplicaState[] = db.replicas.map((replica) => ({
    replica,
    healthy: false,
    replayLsn: null,
    lagMs: Number.POSITIVE_INFINITY,
  }));
  let next = 0;

  const reads = new Counter({
    name: "nodescale_db_reads_total",
    help: "Reads by where they ran and why.",
    labelNames: ["route", "reason"] as const,
    registers: [metrics.registry],
  });
  new Gauge({
    name: "nodescale_pg_replica_lag_seconds",
    help: "How far each replica's replay is behind the primary (seconds; -1 while it is down).",
    labelNames: ["replica"] as const,
    registers: [metrics.registry],
    collect() {
      for (const s of states) this.set({ replica: s.replica.name }, s.healthy ? s.lagMs / 1000 : -1);
    },
  });
  new Gauge({
    name: "nodescale_pg_replica_up",
    help: "1 while a replica is in the read rotation, else 0.",
    labelNames: ["replica"] as const,
    registers: [metrics.registry],
    collect() {
      for (const s of states) this.set({ replica: s.replica.name }, s.healthy ? 1 : 0);
    },
  });

  function setHealth(state: ReplicaState, healthy: boolean, reason: string) {
    if (state.healthy !== healthy) {
      if (healthy) log.info({ replica: state.replica.name }, "replica back in the read rotation");
      else log.warn({ replica: state.replica.name, reason }, "replica taken out of the read rotation");
    }
    state.healthy = healthy;
  }

  // Where the primary's WAL stood at each poll. A replica that has replayed up to R is behind
  // by the time since the primary first moved past R, which does not depend on how often
  // transactions commit (an idle primary does not make a healthy replica look stale).
  const history: { at: number; lsn: bigint }[] = [];

  function lagOf(replay: bigint, idleMs: number | null, now: number): number {
    const firstPast = history.findIndex((sample) => sample.lsn > replay);
    if (firstPast === -1) return 0;
    const sinceFirstPast = now - (history[firstPast] as { at: number }).at;
    // Behind every sample kept: the history is too short to say, so take the larger estimate.
    return firstPast === 0 ? Math.max(sinceFirstPast, idleMs ?? 0) : sinceFirstPast;
  }

  async function pollOne(state: ReplicaState, now: number) {
    try {
      const { rows } = await state.replica.pool.query<{ replay: string | null; idle_ms: number | null }>(
        `select pg_last_wal_replay_lsn()::text as replay,
                (extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8 as idle_ms`,
      );
      const row = rows[0];
      if (row?.replay == null) {
        setHealth(state, false, "not a streaming replica");
        return;
      }
      state.replayLsn = parseLsn(row.replay);
      state.lagMs = lagOf(state.replayLsn, row.idle_ms, now);
      if (state.lagMs > options.maxLagMs) setHealth(state, false, `lag ${Math.round(state.lagMs)} ms`);
      else setHealth(state, true, "");
    } catch (error) {
      metrics.dependencyErrors.inc({ service: state.replica.name, kind: "poll" });
      setHealth(state, false, error instanceof Error ? error.message : String(error));
    }
  }

  async function poll() {
    const now = Date.now();
    try {
      // The insert position, as for a write's own position (see items/store.ts).
      const { rows } = await db.primary.pool.query<{ lsn: string }>("select pg_current_wal_insert_lsn()::text as lsn");
      if (rows[0]) history.push({ at: now, lsn: parseLsn(rows[0].lsn) });
    } catch {
      // Without the primary's position this round, lag is judged from the history so far.
    }
    while (history.length > 2 && (history[1] as { at: number }).at < now - options.maxLagMs - 1000) history.shift();
    await Promise.all(states.map((state) => pollOne(state, now)));
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const loop = () => {
    timer = setTimeout(() => {
      poll().finally(() => {
        if (!stopped) loop();
      });
    }, options.pollIntervalMs);
    timer.unref();
  };
  if (states.length > 0) {
    void poll();
    loop();
  }

  const primary = (reason: string): ReadRoute => {
    reads.inc({ route: "primary", reason });
    return { route: "primary", pool: db.primary.pool, name: db.primary.name, reason };
  };

  return {
    choose(need) {
      if (states.length === 0) return primary("no-replicas");
      if (need.kind === "unknown") return primary("position-unknown");
      const after = need.kind === "after" ? parseLsn(need.lsn) : null;
      let sawHealthy = false;
      for (let i = 0; i < states.length; i++) {
        const state = states[(next + i) % states.length] as ReplicaState;
        if (!state.healthy || state.replayLsn === null) continue;
        sawHealthy = true;
        if (after !== null && state.replayLsn < after) continue;
        next = (next + i + 1) % states.length;
        reads.inc({ route: "replica", reason: after === null ? "no-recent-write" : "caught-up" });
        return { route: "replica", pool: state.replica.pool, name: state.replica.name, reason: "ok" };
      }
      return primary(sawHealthy ? "read-your-writes" : "replicas-unavailable");
    },
    markDown(name, error) {
      const state = states.find((s) => s.replica.name === name);
      if (state) setHealth(state, false, error instanceof Error ? error.message : String(error));
    },
    poll,
    close() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
