import { createHash } from "node:crypto";
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

/** The name a parameterised query is prepared under: the same text, the same name, on any connection. */
export function statementName(text: string): string {
  return `ns_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`;
}

/**
 * Sends each parameterised text query of this client as a named prepared statement: pg parses
 * it once per connection and reuses it after. Queries without parameters, and submittables
 * (cursors, COPY), go as they came.
 */
export function prepareNamedStatements(client: pg.ClientBase): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const named = (first: unknown, ...rest: unknown[]) =>
    typeof first === "string" && Array.isArray(rest[0])
      ? query({ name: statementName(first), text: first, values: rest[0] }, ...rest.slice(1))
      : query(first, ...rest);
  Object.assign(client, { query: named });
}

function createPool(name: string, url: string, config: Config["database"], log: Logger, metrics: Metrics): NamedPool {
  const pool = new pg.Pool({
    connectionString: url,
    max: config.poolMax,
    // pg waits forever for a connection by default; a request must fail instead.
    connectionTimeoutMillis: config.connectTimeoutMs,
    idleTimeoutMillis: config.idleTimeoutMs,
    // A transaction-mode pooler refuses unknown startup parameters; it sets the timeout on its
    // server connections itself (PG_TRANSACTION_POOLING in config.ts). application_name is
    // one PgBouncer knows.
    ...(config.transactionPooling ? {} : { statement_timeout: config.statementTimeoutMs }),
    application_name: "nodescale",
  });
  if (config.preparedStatements) pool.on("connect", prepareNamedStatements);
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
