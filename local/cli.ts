// The local topology from the command line (what `make local-*` calls):
//
//   node local/cli.ts up        start the stack; the last line is the load balancer URL
//   node local/cli.ts down      stop exactly what `up` started (by pid); files stay
//   node local/cli.ts restart   rolling restart of the app instances
//   node local/cli.ts status    every component, its port and pid, running or not
//   node local/cli.ts env [i]   the environment of instance i (default 0), as `export` lines
//
// Options come from the environment (the Makefile passes them through) or --name:
//   STACK_NAME (default `default`), INSTANCES (2), LB_PORT (8080), LB_ALGORITHM
//   (round_robin | least_conn | random_two), REDIS_PORT (16379), PG_PRIMARY_PORT (15432),
//   PG_REPLICA_PORT (15433), APP_BASE_PORT (3001), SHUTDOWN_DRAIN_MS (1000),
//   REPLICA_APPLY_DELAY_MS (0), NGINX_WORKERS (1), APP_ENTRY (app/src/main.ts), APP_NODE,
//   SKIP_MIGRATE=1, and for the app itself LOG_LEVEL, WORKER_THREADS, PG_POOL_MAX.
//   REDIS_CLUSTER=1 runs Redis as a Cluster (3 primaries + 3 replicas, local/redis-cluster.ts)
//   on REDIS_PORT + 0..5, and the app gets REDIS_CLUSTER_NODES instead of REDIS_URL.
//   PGBOUNCER=1 puts PgBouncer (transaction mode, local/pgbouncer.ts) on PGBOUNCER_PORT (16432)
//   between the app and PostgreSQL; migrations still go to the primary directly.
//   INSTANCES=0 starts the backing services only; EXPOSE_ADDRESS and EXPOSE_CLIENTS make Redis
//   and PostgreSQL listen on that host address too and admit that CIDR (a local node's pods).

import { parseExposure } from "./net.ts";
import { parseLbAlgorithm } from "./nginx.ts";
import { DEFAULT_PORTS, loadTopology, startTopology, type TopologyOptions } from "./topology.ts";

const USAGE = "usage: node local/cli.ts up|down|restart|status|env [--name <stack>]";

function intEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name}=${raw}: expected an integer`);
  return n;
}

/**
 * The app's variables `up` passes through from its own environment. The rate limits are
 * among them so that a load test from this one machine can raise them
 * (`LOGIN_RATE_LIMIT_PER_MINUTE=100000 make local-up`).
 */
const APP_VARIABLES = [
  "LOG_LEVEL",
  "WORKER_THREADS",
  "PG_POOL_MAX",
  "PG_PREPARED_STATEMENTS",
  "PGBOUNCER_POOL_SIZE",
  "LOGIN_RATE_LIMIT_PER_MINUTE",
  "REGISTER_RATE_LIMIT_PER_MINUTE",
  "WORK_RATE_LIMIT_PER_MINUTE",
];

/** TopologyOptions from the environment variables the Makefile passes. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): TopologyOptions {
  const appEnv: Record<string, string> = {};
  for (const k of APP_VARIABLES) {
    const v = env[k];
    if (v) appEnv[k] = v;
  }
  return {
    name: env.STACK_NAME || "default",
    instances: intEnv(env, "INSTANCES"),
    lbPort: intEnv(env, "LB_PORT") ?? DEFAULT_PORTS.lb,
    redisPort: intEnv(env, "REDIS_PORT"),
    redisCluster: env.REDIS_CLUSTER === "1",
    pgbouncer: env.PGBOUNCER === "1",
    pgbouncerPort: intEnv(env, "PGBOUNCER_PORT"),
    pgPrimaryPort: intEnv(env, "PG_PRIMARY_PORT"),
    pgReplicaPort: intEnv(env, "PG_REPLICA_PORT"),
    appBasePort: intEnv(env, "APP_BASE_PORT"),
    lbAlgorithm: parseLbAlgorithm(env.LB_ALGORITHM || undefined),
    nginxWorkers: intEnv(env, "NGINX_WORKERS"),
    shutdownDrainMs: intEnv(env, "SHUTDOWN_DRAIN_MS"),
    replicaApplyDelayMs: intEnv(env, "REPLICA_APPLY_DELAY_MS"),
    appEntry: env.APP_ENTRY || undefined,
    node: env.APP_NODE || undefined,
    migrate: env.SKIP_MIGRATE !== "1",
    appEnv,
    expose: parseExposure(env.EXPOSE_ADDRESS || undefined, env.EXPOSE_CLIENTS || undefined),
  };
}

function shellQuote(v: string): string {
  return /^[\w@%+=:,./-]*$/.test(v) ? v : `'${v.replaceAll("'", "'\\''")}'`;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = [...argv];
  let name = env.STACK_NAME || "default";
  const at = args.indexOf("--name");
  if (at >= 0) {
    name = args[at + 1] ?? "";
    args.splice(at, 2);
  }
  const [command, ...rest] = args;
  const out = (line: string) => process.stdout.write(`${line}\n`);

  switch (command) {
    case "up": {
      const stack = await startTopology({ ...optionsFromEnv(env), name, log: out });
      out(
        stack.instances.length > 0
          ? stack.lbUrl
          : `no app instances: backing services only (state in ${stack.stateDir})`,
      );
      return 0;
    }
    case "down": {
      const stack = loadTopology({ name, log: out });
      if (!stack?.anyRunning()) {
        out(`stack '${name}': nothing running`);
        return 0;
      }
      await stack.stop();
      return 0;
    }
    case "restart": {
      const stack = loadTopology({ name, log: out });
      if (!stack?.anyRunning()) {
        process.stderr.write(`stack '${name}' is not running: start it with \`make local-up\`\n`);
        return 1;
      }
      const down = stack.instances.filter((i) => i.pid === null);
      if (down.length > 0) out(`note: ${down.map((i) => i.name).join(", ")} not running; starting them`);
      await stack.restartInstances();
      return 0;
    }
    case "status": {
      const stack = loadTopology({ name, log: out });
      if (!stack) {
        out(`stack '${name}': never started`);
        return 0;
      }
      out(`stack '${name}' (${stack.stateDir})`);
      for (const c of stack.status()) {
        out(
          `  ${c.component.padEnd(12)} 127.0.0.1:${String(c.port).padEnd(6)} ${c.running ? `running  pid ${c.pid}` : "stopped"}`,
        );
      }
      out(stack.anyRunning() ? stack.lbUrl : "not running");
      return 0;
    }
    case "env": {
      const stack = loadTopology({ name, log: out });
      if (!stack) {
        process.stderr.write(`stack '${name}': never started\n`);
        return 1;
      }
      const e = stack.appEnv(Number(rest[0] ?? 0));
      for (const k of [
        "PORT",
        "INSTANCE_NAME",
        "REDIS_URL",
        "REDIS_CLUSTER_NODES",
        "DATABASE_URL",
        "DATABASE_REPLICA_URLS",
        "DATABASE_MIGRATE_URL",
        "PG_TRANSACTION_POOLING",
        "PGPASSWORD",
        "SESSION_SECRETS",
        "NODE_ENV",
        "LOG_LEVEL",
        "SHUTDOWN_DRAIN_MS",
        ...APP_VARIABLES,
      ]) {
        if (e[k] !== undefined) out(`export ${k}=${shellQuote(e[k] as string)}`);
      }
      return 0;
    }
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

if (import.meta.main) {
  // `cli.ts env | head` closes the pipe early: not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`local: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
