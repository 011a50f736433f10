import pg from "pg";
import { Gauge } from "prom-client";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";

export type NamedPool = { name: string; pool: pg.Pool };

export type Database = {
  primary: NamedPool;
  replicas: NamedPool[];
  close(): Promise<void>;
};

function createPool(name: string, url: string, config: Config["database"], log: Logger, metrics: Metrics): NamedPool {
  const pool = new pg.Pool({
    connectionString: url,
    max: config.poolMax,
    // pg waits forever for a connection by default; a request must fail instead.
    connectionTimeoutMillis: config.connectTimeoutMs,
    idleTimeoutMillis: config.idleTimeoutMs,
    statement_timeout: config.statementTimeoutMs,
    application_name: "nodescale",
  });
  // An idle client losing its connection is reported here; without a listener it would crash
  // the process.
  pool.on("error", (error) => {
    metrics.dependencyErrors.inc({ service: name, kind: "idle-client" });
    log.warn({ err: error, pool: name }, "postgres idle client error");
  });
  return { name, pool };
}

export function createDatabase(config: Config["database"], log: Logger, metrics: Metrics): Database {
  const primary = createPool("primary", config.primaryUrl, config, log, metrics);
  const replicas = config.replicaUrls.map((url, index) =>
    createPool(`replica-${index + 1}`, url, config, log, metrics),
  );
  const all = [primary, ...replicas];

  const gauge = (name: string, help: string, read: (pool: pg.Pool) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["pool"] as const,
      registers: [metrics.registry],
      collect() {
        for (const { name: pool, pool: p } of all) this.set({ pool }, read(p));
      },
    });
  gauge("nodescale_pg_pool_connections", "Open connections in the pool.", (p) => p.totalCount);
  gauge("nodescale_pg_pool_idle_connections", "Idle connections in the pool.", (p) => p.idleCount);
  gauge("nodescale_pg_pool_waiting_requests", "Queries waiting for a free connection.", (p) => p.waitingCount);

  return {
    primary,
    replicas,
    async close() {
      await Promise.allSettled(all.map(({ pool }) => pool.end()));
    },
  };
}
