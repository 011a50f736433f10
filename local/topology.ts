// The local topology as plain processes on loopback: Redis, a PostgreSQL primary and a
// streaming replica, N app instances and nginx in front of them.
//
//   const stack = await startTopology({ name: 'mytest', freePorts: true });
//   await fetch(`${stack.lbUrl}/readyz`);
//   await stack.restartInstances();
//   await stack.stop();
//
// Everything a stack starts is recorded (pid + start time + port) in
// `.local/<name>/state.json`, so another process (the CLI: `down`, `restart`, `status`) can act
// on exactly those processes later. Every method re-reads that file first and writes it after
// a change, so the API and the CLI can take turns on the same stack.

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { checkAppEntry, runMigrate, startApp } from "./app.ts";
import { type Exposure, freePorts, HOST, httpRequest, portIsFree, waitUntil } from "./net.ts";
import {
  findNginx,
  type LbAlgorithm,
  type NginxConfigOptions,
  parseLbAlgorithm,
  reloadNginx,
  startNginx,
} from "./nginx.ts";
import { DEFAULT_PGBOUNCER_PORT, findPgBouncer, pgBouncerPort, pgBouncerUrls, startPgBouncer } from "./pgbouncer.ts";
import {
  APP_ROLE,
  DATABASE,
  findPgBinDir,
  initPrimary,
  initReplica,
  type PgSecrets,
  pgRunAs,
  pgUrl,
  preparePgRoot,
  psql,
  startPgServer,
  startReplica as startReplicaServer,
  waitStreaming,
} from "./postgres.ts";
import { type ExitInfo, isRunning, type ProcessRecord, stopProcess } from "./process.ts";
import { findRedisServer, redisUrl, startRedis as startRedisServer } from "./redis.ts";
import {
  type ClusterNodeState,
  clusterNodesEnv,
  clusterPorts,
  startClusterNode,
  startRedisCluster,
} from "./redis-cluster.ts";

export type { LbAlgorithm } from "./nginx.ts";
export type { ExitInfo, ProcessRecord } from "./process.ts";

/** Repository root (the folder above local/). */
export const REPO_ROOT = resolve(import.meta.dirname, "..");

export const DEFAULT_PORTS = {
  lb: 8080,
  redis: 16379,
  pgPrimary: 15432,
  pgReplica: 15433,
  appBase: 3001,
} as const;

export interface TopologyOptions {
  /** Stack name: state lives in `<stateRoot>/<name>/`. Default `default`. */
  name?: string;
  /** Default `<repo>/.local`. */
  stateRoot?: string;
  /** Number of app instances. Default 2; 0 starts the backing services only (no nginx). */
  instances?: number;
  /** Redis and PostgreSQL also listen on this host address, for these clients (a local node's pods). */
  expose?: Exposure;
  /** Take every port not given explicitly from the OS (tests). Default false. */
  freePorts?: boolean;
  lbPort?: number;
  redisPort?: number;
  pgPrimaryPort?: number;
  pgReplicaPort?: number;
  /**
   * Redis as a Cluster (local/redis-cluster.ts: 3 primaries + 3 replicas) instead of one
   * redis-server; the app gets REDIS_CLUSTER_NODES. Its nodes listen on redisPort + 0..5 (bus
   * ports 10000 above), or on leased ports with freePorts. Default false.
   */
  redisCluster?: boolean;
  /**
   * PgBouncer in transaction mode in front of the primary and the replica (local/pgbouncer.ts);
   * the app's DATABASE_URL and DATABASE_REPLICA_URLS point at it, migrations go to the primary
   * directly (DATABASE_MIGRATE_URL). Default false.
   */
  pgbouncer?: boolean;
  /** PgBouncer's port. Default 16432, or a leased one with freePorts. */
  pgbouncerPort?: number;
  /**
   * Where PgBouncer sends the primary's and the replica's connections, when not to the servers
   * themselves: the bench puts its statement-counting proxies there (load/runner/pg-counter.ts),
   * so that they count what PgBouncer sends PostgreSQL. Default: the servers' ports.
   */
  pgbouncerUpstream?: { primaryPort: number; replicaPort: number };
  /** Instance i (0-based) listens on appBasePort + i, unless appPorts is given. */
  appBasePort?: number;
  appPorts?: number[];
  /** nginx balancing. Default round_robin (what ingress-nginx uses by default). */
  lbAlgorithm?: LbAlgorithm;
  /** nginx worker processes. Default 1. */
  nginxWorkers?: number;
  /** The app's SHUTDOWN_DRAIN_MS. Default 1000 (nginx here fails requests over, so a short drain is enough). */
  shutdownDrainMs?: number;
  /** recovery_min_apply_delay of the replica, in ms. Default 0. */
  replicaApplyDelayMs?: number;
  /** The app's entry file, relative to the repo root or absolute. Default app/src/main.ts. */
  appEntry?: string;
  /** The app's working directory. Default <repo>/app. */
  appDir?: string;
  /** Node binary for the app. Default: the Node running this code. */
  node?: string;
  /** Extra or overriding environment for the app instances (LOG_LEVEL, WORKER_THREADS, PG_POOL_MAX...). */
  appEnv?: Record<string, string>;
  /** Run `node <entry> migrate` before starting the instances. Default true. */
  migrate?: boolean;
  /** How long an instance may take to answer /readyz 200. Default 30 s. */
  readyTimeoutMs?: number;
  /** Progress lines. Default: stdout. */
  log?: (line: string) => void;
}

export interface ComponentState {
  port: number;
  process: ProcessRecord | null;
}

export interface StackState {
  version: 1;
  name: string;
  stateDir: string;
  /** Folder holding the PostgreSQL data folders (may be outside stateDir, see postgres.ts). */
  pgRoot: string;
  pgBinDir: string;
  node: string;
  appEntry: string;
  appDir: string;
  appEnv: Record<string, string>;
  lbAlgorithm: LbAlgorithm;
  nginxWorkers: number;
  shutdownDrainMs: number;
  replicaApplyDelayMs: number;
  readyTimeoutMs: number;
  expose: Exposure | null;
  startedAt: string;
  lbUrl: string;
  redis: ComponentState;
  /** The Redis Cluster's nodes when the stack runs one (then `redis` is not started). */
  redisCluster?: ClusterNodeState[];
  pgPrimary: ComponentState;
  pgReplica: ComponentState;
  /** PgBouncer when the stack runs one; `upstream` when it is not the servers themselves. */
  pgbouncer?: ComponentState & { upstream?: { primaryPort: number; replicaPort: number } };
  nginx: ComponentState;
  apps: (ComponentState & { name: string })[];
}

interface Secrets extends PgSecrets {
  sessionSecrets: string[];
}

export interface Instance {
  index: number;
  name: string;
  port: number;
  /** null while stopped. */
  pid: number | null;
  url: string;
}

export interface ComponentStatus {
  component: string;
  port: number;
  pid: number | null;
  running: boolean;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function defaultStateRoot(): string {
  return join(REPO_ROOT, ".local");
}

export function stateDirFor(name: string, stateRoot = defaultStateRoot()): string {
  if (!NAME_RE.test(name)) throw new Error(`invalid stack name ${JSON.stringify(name)} (letters, digits, . _ -)`);
  return join(stateRoot, name);
}

function writeJson(file: string, value: unknown, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode });
  renameSync(tmp, file);
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch {
    return null;
  }
}

const secret = (bytes = 18) => randomBytes(bytes).toString("hex");

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

/** A running (or stopped) local stack, backed by its state.json. */
export class Topology {
  #state: StackState;
  #secrets: Secrets;
  #log: (line: string) => void;

  constructor(state: StackState, secrets: Secrets, log?: (line: string) => void) {
    this.#state = state;
    this.#secrets = secrets;
    this.#log = log ?? ((line) => process.stdout.write(`${line}\n`));
  }

  // ----- what callers read -----

  get name(): string {
    return this.#state.name;
  }
  get stateDir(): string {
    return this.#state.stateDir;
  }
  get logDir(): string {
    return join(this.#state.stateDir, "logs");
  }
  get lbUrl(): string {
    return this.#state.lbUrl;
  }
  get lbPort(): number {
    return this.#state.nginx.port;
  }
  get redisUrl(): string {
    return redisUrl(this.#state.redis.port);
  }
  /** The primary, as the app role, password included. */
  get databaseUrl(): string {
    return pgUrl(APP_ROLE, this.#secrets.appPassword, this.#state.pgPrimary.port, DATABASE);
  }
  /** The replicas, as the app role, password included. */
  get replicaUrls(): string[] {
    return [pgUrl(APP_ROLE, this.#secrets.appPassword, this.#state.pgReplica.port, DATABASE)];
  }
  /** The app's database URLs through PgBouncer, or null when the stack runs none. */
  get pgbouncerUrls(): { primary: string; replicas: string[] } | null {
    const b = this.#state.pgbouncer;
    return b ? pgBouncerUrls(b.port, this.#secrets.appPassword) : null;
  }
  /** Superuser URL of the primary or the replica (for checks such as pg_stat_replication). */
  adminUrl(target: "primary" | "replica" = "primary"): string {
    const port = target === "primary" ? this.#state.pgPrimary.port : this.#state.pgReplica.port;
    return pgUrl("postgres", this.#secrets.superuserPassword, port, "postgres");
  }
  get pgBinDir(): string {
    return this.#state.pgBinDir;
  }
  get shutdownDrainMs(): number {
    return this.#state.shutdownDrainMs;
  }
  get ports(): { lb: number; redis: number; pgPrimary: number; pgReplica: number; apps: number[] } {
    const s = this.#state;
    return {
      lb: s.nginx.port,
      redis: s.redis.port,
      pgPrimary: s.pgPrimary.port,
      pgReplica: s.pgReplica.port,
      apps: s.apps.map((a) => a.port),
    };
  }
  get instances(): Instance[] {
    this.#refresh();
    return this.#state.apps.map((a, index) => ({
      index,
      name: a.name,
      port: a.port,
      pid: isRunning(a.process) ? (a.process?.pid ?? null) : null,
      url: `http://${HOST}:${a.port}`,
    }));
  }
  /**
   * The Redis servers the app uses: the one redis-server, or every node of the Redis Cluster
   * (primaries and replicas; a replica also executes its primary's writes, so count commands on
   * the primaries only).
   */
  get redisServers(): ComponentState[] {
    this.#refresh();
    return structuredClone(this.#state.redisCluster ?? [this.#state.redis]);
  }
  /** Every pid recorded for this stack (running or not), for leak checks. */
  get pids(): number[] {
    this.#refresh();
    const s = this.#state;
    return [
      s.redis,
      ...(s.redisCluster ?? []),
      s.pgPrimary,
      s.pgReplica,
      ...(s.pgbouncer ? [s.pgbouncer] : []),
      s.nginx,
      ...s.apps,
    ].flatMap((c) => (c.process ? [c.process.pid] : []));
  }
  /** A copy of the state as recorded in state.json. */
  get state(): StackState {
    this.#refresh();
    return structuredClone(this.#state);
  }

  /** The environment instance i runs with (also what `cli.ts env` prints). */
  appEnv(index: number): NodeJS.ProcessEnv {
    const s = this.#state;
    const app = s.apps[index];
    if (!app) throw new Error(`no instance ${index} (stack has ${s.apps.length})`);
    return {
      ...process.env,
      PORT: String(app.port),
      HOST: "127.0.0.1",
      INSTANCE_NAME: app.name,
      REDIS_URL: this.redisUrl,
      DATABASE_URL: this.databaseUrl,
      DATABASE_REPLICA_URLS: this.replicaUrls.join(","),
      PGPASSWORD: this.#secrets.appPassword,
      SESSION_SECRETS: this.#secrets.sessionSecrets.join(","),
      NODE_ENV: "production",
      // The image's V8 young-generation cap (see app/Dockerfile), so memory behaves alike.
      NODE_OPTIONS: "--max-semi-space-size=16",
      ...(s.redisCluster
        ? { REDIS_URL: undefined, REDIS_CLUSTER_NODES: clusterNodesEnv(s.redisCluster.map((n) => n.port)) }
        : {}),
      ...(this.pgbouncerUrls
        ? {
            DATABASE_URL: this.pgbouncerUrls.primary,
            DATABASE_REPLICA_URLS: this.pgbouncerUrls.replicas.join(","),
            DATABASE_MIGRATE_URL: this.databaseUrl,
            PG_TRANSACTION_POOLING: "on",
          }
        : {}),
      LOG_LEVEL: "info",
      SHUTDOWN_DRAIN_MS: String(s.shutdownDrainMs),
      WORKER_THREADS: "1",
      // Clients reach the instances through the stack's nginx, one proxy hop that sets
      // X-Forwarded-For; the app's own default (0) is for an instance nothing stands in front of.
      TRUST_PROXY: "1",
      ...s.appEnv,
    };
  }

  /** Run SQL as the app role on the primary or the replica (psql, unaligned, tuples only). */
  query(target: "primary" | "replica", sql: string): Promise<string> {
    const url = target === "primary" ? this.databaseUrl : (this.replicaUrls[0] as string);
    return psql(this.#state.pgBinDir, url, sql);
  }

  status(): ComponentStatus[] {
    this.#refresh();
    const s = this.#state;
    const row = (component: string, c: ComponentState): ComponentStatus => ({
      component,
      port: c.port,
      pid: c.process?.pid ?? null,
      running: isRunning(c.process),
    });
    return [
      ...(s.redisCluster ? s.redisCluster.map((n, i) => row(`redis-node-${i + 1}`, n)) : [row("redis", s.redis)]),
      row("pg-primary", s.pgPrimary),
      row("pg-replica", s.pgReplica),
      ...(s.pgbouncer ? [row("pgbouncer", s.pgbouncer)] : []),
      ...s.apps.map((a) => row(a.name, a)),
      row("nginx", s.nginx),
    ];
  }

  /** True when any recorded process is still running. */
  anyRunning(): boolean {
    return this.status().some((c) => c.running);
  }

  // ----- lifecycle -----

  /** Stop everything this stack started (by pid, verified), in reverse order. Files stay. */
  async stop(): Promise<void> {
    this.#refresh();
    const started = Date.now();
    const s = this.#state;
    await this.#stopComponent("nginx", "SIGTERM", 10_000);
    await Promise.all(s.apps.map((_, i) => this.stopInstance(i)));
    await this.stopPgBouncer();
    await this.#stopComponent("pgReplica", "SIGINT", 30_000);
    await this.#stopComponent("pgPrimary", "SIGINT", 30_000);
    await this.#stopComponent("redis", "SIGTERM", 10_000);
    await Promise.all((s.redisCluster ?? []).map((_, i) => this.stopRedisClusterNode(i)));
    this.#log(`stack '${s.name}' stopped in ${Date.now() - started} ms`);
  }

  /** stop(), then delete the state folder and the PostgreSQL folder. */
  async destroy(): Promise<void> {
    await this.stop();
    const s = this.#state;
    rmSync(s.pgRoot, { recursive: true, force: true });
    rmSync(s.stateDir, { recursive: true, force: true });
  }

  /** SIGTERM instance i and wait for it to exit (SIGKILL after drain + 30 s). Null if it was not running. */
  async stopInstance(index: number): Promise<ExitInfo | null> {
    this.#refresh();
    const app = this.#app(index);
    const exit = await stopProcess(app.process, "SIGTERM", this.#state.shutdownDrainMs + 30_000);
    if (exit) {
      const how = exit.code !== null ? `, exit ${exit.code}` : exit.signal ? `, ${exit.signal}` : "";
      this.#line(app.name, `stopped (pid ${app.process?.pid}${how}${exit.killed ? ", SIGKILLed" : ""})`, exit.ms);
    }
    this.#update((st) => {
      (st.apps[index] as ComponentState).process = null;
    });
    return exit;
  }

  /** Start instance i and wait until its /readyz answers 200. */
  async startInstance(index: number): Promise<Instance> {
    this.#refresh();
    const app = this.#app(index);
    if (isRunning(app.process)) throw new Error(`${app.name} is already running (pid ${app.process?.pid})`);
    const t = Date.now();
    const record = await startApp({
      node: this.#state.node,
      entry: this.#state.appEntry,
      cwd: this.#state.appDir,
      env: this.appEnv(index),
      logFile: join(this.logDir, `${app.name}.log`),
      port: app.port,
      readyTimeoutMs: this.#state.readyTimeoutMs,
    });
    this.#update((st) => {
      (st.apps[index] as ComponentState).process = record;
    });
    this.#line(app.name, `ready on ${HOST}:${app.port}  pid ${record.pid}`, Date.now() - t);
    return this.instances[index] as Instance;
  }

  /**
   * Stop and start instance i. Where other instances can take its traffic, it leaves nginx's
   * rotation first and rejoins once ready, as a pod leaves its Service's endpoints before it
   * stops: nginx then never sends a request down a connection the instance is closing.
   */
  async restartInstance(index: number): Promise<void> {
    const others = this.#state.apps.filter((app, i) => i !== index && isRunning(app.process));
    const rotate = isRunning(this.#state.nginx.process) && others.length > 0;
    if (rotate) await this.#reloadNginx([this.#app(index).port]);
    await this.stopInstance(index);
    await this.startInstance(index);
    if (rotate) await this.#reloadNginx([]);
  }

  #nginxConfig(): NginxConfigOptions {
    const s = this.#state;
    return {
      prefix: join(s.stateDir, "nginx"),
      logDir: this.logDir,
      lbPort: s.nginx.port,
      appPorts: s.apps.map((a) => a.port),
      algorithm: s.lbAlgorithm,
      workers: s.nginxWorkers,
    };
  }

  async #reloadNginx(downPorts: number[]): Promise<void> {
    const s = this.#state;
    const t = Date.now();
    await reloadNginx({
      ...this.#nginxConfig(),
      bin: findNginx(),
      record: s.nginx.process as ProcessRecord,
      downPorts,
    });
    const names = s.apps.filter((a) => downPorts.includes(a.port)).map((a) => a.name);
    this.#line(
      "nginx",
      names.length > 0 ? `reloaded, ${names.join(", ")} out of rotation` : "reloaded, all instances in rotation",
      Date.now() - t,
    );
  }

  /** Rolling restart: one instance at a time, each back and ready before the next goes down. */
  async restartInstances(): Promise<void> {
    this.#refresh();
    const t = Date.now();
    for (let i = 0; i < this.#state.apps.length; i++) await this.restartInstance(i);
    this.#log(`rolling restart of ${this.#state.apps.length} instances done in ${Date.now() - t} ms`);
  }

  async stopRedis(): Promise<void> {
    await this.#stopComponent("redis", "SIGTERM", 10_000);
  }

  async startRedis(): Promise<void> {
    const s = this.#state;
    await this.#startComponent(
      "redis",
      "redis",
      (pid) => `${HOST}:${s.redis.port}  pid ${pid}`,
      () =>
        startRedisServer({
          bin: findRedisServer(),
          port: s.redis.port,
          dir: join(s.stateDir, "redis"),
          logFile: join(this.logDir, "redis.log"),
          expose: s.expose,
        }),
    );
  }

  /** Stops node i of the Redis Cluster (SIGKILL: a primary that dies without a word). */
  async stopRedisClusterNode(index: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    this.#refresh();
    const node = this.#state.redisCluster?.[index];
    if (!node) throw new Error(`no redis cluster node ${index}`);
    const exit = await stopProcess(node.process, signal, 10_000);
    if (exit) this.#line(`redis-node-${index + 1}`, `stopped (pid ${node.process?.pid}, ${signal})`, exit.ms);
    this.#update((st) => {
      (st.redisCluster?.[index] as ClusterNodeState).process = null;
    });
  }

  /** Starts node i of the Redis Cluster again; it rejoins from its nodes.conf. */
  async startRedisClusterNode(index: number): Promise<void> {
    this.#refresh();
    const node = this.#state.redisCluster?.[index];
    if (!node) throw new Error(`no redis cluster node ${index}`);
    if (isRunning(node.process)) return;
    const t = Date.now();
    const record = await startClusterNode({
      bin: findRedisServer(),
      ...node,
      dir: join(this.#state.stateDir, "redis-cluster"),
      logDir: this.logDir,
    });
    this.#update((st) => {
      (st.redisCluster?.[index] as ClusterNodeState).process = record;
    });
    this.#line(`redis-node-${index + 1}`, `${HOST}:${node.port}  pid ${record.pid}`, Date.now() - t);
  }

  async stopReplica(): Promise<void> {
    await this.#stopComponent("pgReplica", "SIGINT", 30_000);
  }

  /** Start the replica again; applyDelayMs changes recovery_min_apply_delay (kept for later starts). */
  async startReplica(options: { applyDelayMs?: number } = {}): Promise<void> {
    this.#refresh();
    const s = this.#state;
    if (isRunning(s.pgReplica.process) && options.applyDelayMs !== undefined) {
      if (options.applyDelayMs !== s.replicaApplyDelayMs)
        throw new Error("the replica is running: stopReplica() first to change its apply delay");
    }
    const applyDelayMs = options.applyDelayMs ?? s.replicaApplyDelayMs;
    const started = await this.#startComponent(
      "pgReplica",
      "pg-replica",
      (pid) => `${HOST}:${s.pgReplica.port}  pid ${pid}  apply delay ${applyDelayMs} ms`,
      () =>
        startReplicaServer({
          binDir: s.pgBinDir,
          dataDir: join(s.pgRoot, "replica"),
          port: s.pgReplica.port,
          logFile: join(this.logDir, "pg-replica.log"),
          as: pgRunAs(),
          primaryPort: s.pgPrimary.port,
          secrets: this.#secrets,
          applyDelayMs,
          expose: s.expose,
        }),
    );
    if (started)
      this.#update((st) => {
        st.replicaApplyDelayMs = applyDelayMs;
      });
  }

  /** Stop PgBouncer (SIGINT: its safe shutdown, which waits for transactions to end). */
  async stopPgBouncer(): Promise<void> {
    this.#refresh();
    const record = this.#state.pgbouncer?.process ?? null;
    const exit = await stopProcess(record, "SIGINT", 10_000);
    if (exit) this.#line("pgbouncer", `stopped (pid ${record?.pid}${exit.killed ? ", SIGKILLed" : ""})`, exit.ms);
    if (this.#state.pgbouncer)
      this.#update((st) => {
        if (st.pgbouncer) st.pgbouncer.process = null;
      });
  }

  /** Start PgBouncer again (a running one is left alone); its config is written anew. */
  async startPgBouncer(): Promise<void> {
    this.#refresh();
    const s = this.#state;
    const b = s.pgbouncer;
    if (!b) throw new Error(`stack '${s.name}' runs no PgBouncer (start it with pgbouncer: true, PGBOUNCER=1)`);
    if (isRunning(b.process)) return;
    const t = Date.now();
    // The app's own default statement timeout, unless the stack passes it another.
    const timeout = Number(s.appEnv.PG_STATEMENT_TIMEOUT_MS ?? 15_000);
    const { record } = await startPgBouncer({
      bin: findPgBouncer(),
      port: b.port,
      primaryPort: b.upstream?.primaryPort ?? s.pgPrimary.port,
      replicaPort: b.upstream?.replicaPort ?? s.pgReplica.port,
      poolSize: Number(s.appEnv.PGBOUNCER_POOL_SIZE ?? 20),
      maxClientConnections: 5000,
      statementTimeoutMs: Number.isInteger(timeout) ? timeout : 15_000,
      dir: join(s.stateDir, "pgbouncer"),
      fallbackDir: join(s.pgRoot, "pgbouncer"),
      logFile: join(this.logDir, "pgbouncer.log"),
      as: pgRunAs(),
      pgBinDir: s.pgBinDir,
      adminUrl: this.adminUrl("primary"),
    });
    this.#update((st) => {
      if (st.pgbouncer) st.pgbouncer.process = record;
    });
    this.#line("pgbouncer", `${HOST}:${b.port}  pid ${record.pid}  transaction pooling`, Date.now() - t);
  }

  async stopPrimary(): Promise<void> {
    await this.#stopComponent("pgPrimary", "SIGINT", 30_000);
  }

  async startPrimary(): Promise<void> {
    const s = this.#state;
    await this.#startComponent(
      "pgPrimary",
      "pg-primary",
      (pid) => `${HOST}:${s.pgPrimary.port}  pid ${pid}`,
      () =>
        startPgServer({
          binDir: s.pgBinDir,
          dataDir: join(s.pgRoot, "primary"),
          port: s.pgPrimary.port,
          logFile: join(this.logDir, "pg-primary.log"),
          as: pgRunAs(),
          expose: s.expose,
        }),
    );
  }

  /**
   * Starts a stopped backing service again and records its process (a running one is left
   * alone). Resolves true when it started one.
   */
  async #startComponent(
    key: "redis" | "pgPrimary" | "pgReplica",
    label: string,
    describe: (pid: number) => string,
    start: () => Promise<ProcessRecord>,
  ): Promise<boolean> {
    this.#refresh();
    if (isRunning(this.#state[key].process)) return false;
    const t = Date.now();
    const record = await start();
    this.#update((st) => {
      st[key].process = record;
    });
    this.#line(label, describe(record.pid), Date.now() - t);
    return true;
  }

  // ----- internals (used by startTopology) -----

  /** @internal Bring every component up. On failure, stops what it started and rethrows. */
  async _up(options: { migrate: boolean }): Promise<void> {
    const s = this.#state;
    const total = Date.now();
    this.#log(`stack '${s.name}': state in ${s.stateDir}`);
    try {
      const redisBin = findRedisServer();
      const nginxBin = findNginx();
      checkAppEntry(s.appEntry);
      const as = pgRunAs();
      // Redis and the primary start in parallel.
      const redis = (async () => {
        const t = Date.now();
        const cluster = s.redisCluster;
        if (cluster) {
          await startRedisCluster(
            { bin: redisBin, nodes: cluster, dir: join(s.stateDir, "redis-cluster"), logDir: this.logDir },
            (record, i) =>
              this.#update((st) => {
                (st.redisCluster?.[i] as ClusterNodeState).process = record;
              }),
          );
          this.#line("redis-cluster", `${clusterNodesEnv(cluster.map((n) => n.port))}`, Date.now() - t);
          return;
        }
        const record = await startRedisServer({
          bin: redisBin,
          port: s.redis.port,
          dir: join(s.stateDir, "redis"),
          logFile: join(this.logDir, "redis.log"),
          expose: s.expose,
        });
        this.#update((st) => {
          st.redis.process = record;
        });
        this.#line("redis", `${HOST}:${s.redis.port}  pid ${record.pid}`, Date.now() - t);
      })();
      const postgres = (async () => {
        let t = Date.now();
        const primary = await initPrimary({
          binDir: s.pgBinDir,
          dataDir: join(s.pgRoot, "primary"),
          port: s.pgPrimary.port,
          logFile: join(this.logDir, "pg-primary.log"),
          as,
          secrets: this.#secrets,
          expose: s.expose,
        });
        this.#update((st) => {
          st.pgPrimary.process = primary.record;
        });
        this.#line(
          "pg-primary",
          `${HOST}:${s.pgPrimary.port}  pid ${primary.record.pid}${primary.created ? "  (initdb, roles, database, slot)" : ""}`,
          Date.now() - t,
        );
        t = Date.now();
        const created = await initReplica({
          binDir: s.pgBinDir,
          dataDir: join(s.pgRoot, "replica"),
          primaryPort: s.pgPrimary.port,
          as,
          secrets: this.#secrets,
        });
        if (created) this.#line("pg-basebackup", "replica data folder made from the primary", Date.now() - t);
        await this.startReplica();
        t = Date.now();
        await waitStreaming(s.pgBinDir, this.adminUrl("primary"));
        this.#line("replication", "replica streaming from primary", Date.now() - t);
      })();
      const results = await Promise.allSettled([redis, postgres]);
      for (const r of results) if (r.status === "rejected") throw r.reason;
      if (s.pgbouncer) await this.startPgBouncer();

      // With no app instances the schema is left to whoever runs the app (a cluster's chart).
      if (options.migrate && s.apps.length > 0) {
        const t = Date.now();
        await runMigrate(
          {
            node: s.node,
            entry: s.appEntry,
            cwd: s.appDir,
            env: { ...this.appEnv(0), INSTANCE_NAME: "migrate" },
            logFile: join(this.logDir, "migrate.log"),
          },
          120_000,
        );
        this.#line("migrate", `node ${s.appEntry} migrate`, Date.now() - t);
      }

      const appResults = await Promise.allSettled(s.apps.map((_, i) => this.startInstance(i)));
      for (const r of appResults) if (r.status === "rejected") throw r.reason;
      if (s.apps.length === 0) {
        this.#log(`stack '${s.name}': backing services only (INSTANCES=0), no nginx`);
        return;
      }

      const t = Date.now();
      const nginx = await startNginx({
        ...this.#nginxConfig(),
        bin: nginxBin,
        logFile: join(this.logDir, "nginx.log"),
      });
      this.#update((st) => {
        st.nginx.process = nginx;
      });
      await waitUntil("load balancer /readyz", async () => (await httpRequest(`${s.lbUrl}/readyz`)).status === 200, {
        timeoutMs: 10_000,
      });
      this.#line("nginx", `${s.lbUrl}  pid ${nginx.pid}  ${s.lbAlgorithm}`, Date.now() - t);
    } catch (err) {
      this.#log(`start-up failed: stopping what was started (logs in ${this.logDir})`);
      await this.stop().catch(() => {});
      throw err;
    }
    this.#log(`stack '${s.name}' up in ${((Date.now() - total) / 1000).toFixed(1)} s`);
  }

  #app(index: number): StackState["apps"][number] {
    const app = this.#state.apps[index];
    if (!app) throw new Error(`no instance ${index} (stack has ${this.#state.apps.length})`);
    return app;
  }

  async #stopComponent(
    key: "redis" | "pgPrimary" | "pgReplica" | "nginx",
    signal: NodeJS.Signals,
    timeoutMs: number,
  ): Promise<void> {
    this.#refresh();
    const record = this.#state[key].process;
    const exit = await stopProcess(record, signal, timeoutMs);
    const label = { redis: "redis", pgPrimary: "pg-primary", pgReplica: "pg-replica", nginx: "nginx" }[key];
    if (exit) this.#line(label, `stopped (pid ${record?.pid}${exit.killed ? ", SIGKILLed" : ""})`, exit.ms);
    this.#update((st) => {
      st[key].process = null;
    });
  }

  /** Read state.json, change it, write it back, with no await in between. */
  #update(change: (state: StackState) => void): void {
    this.#refresh();
    change(this.#state);
    this.#save();
  }

  #line(component: string, text: string, ms: number): void {
    this.#log(`  ${pad(component, 14)} ${pad(text, 58)} ${String(ms).padStart(6)} ms`);
  }

  #refresh(): void {
    const fresh = readJson<StackState>(join(this.#state.stateDir, "state.json"));
    if (fresh) this.#state = fresh;
  }

  #save(): void {
    writeJson(join(this.#state.stateDir, "state.json"), this.#state);
  }
}

function loadSecrets(stateDir: string): Secrets | null {
  return readJson<Secrets>(join(stateDir, "secrets.json"));
}

/** The stack recorded under `name`, or null when it has never been started. */
export function loadTopology(
  options: { name?: string; stateRoot?: string; log?: (line: string) => void } = {},
): Topology | null {
  const stateDir = stateDirFor(options.name ?? "default", options.stateRoot);
  const state = readJson<StackState>(join(stateDir, "state.json"));
  const secrets = loadSecrets(stateDir);
  if (!state || !secrets) return null;
  return new Topology(state, secrets, options.log);
}

async function resolvePorts(o: TopologyOptions, instances: number) {
  const wanted = {
    lb: o.lbPort,
    redis: o.redisPort,
    pgPrimary: o.pgPrimaryPort,
    pgReplica: o.pgReplicaPort,
  };
  let apps = o.appPorts ? [...o.appPorts] : undefined;
  if (apps && apps.length !== instances)
    throw new Error(`appPorts has ${apps.length} ports for ${instances} instances`);
  if (o.freePorts) {
    const missing = Object.values(wanted).filter((p) => p === undefined).length + (apps ? 0 : instances);
    const free = await freePorts(missing);
    for (const k of Object.keys(wanted) as (keyof typeof wanted)[]) wanted[k] ??= free.shift();
    apps ??= free.splice(0, instances);
  }
  const base = o.appBasePort ?? DEFAULT_PORTS.appBase;
  const ports = {
    lb: wanted.lb ?? DEFAULT_PORTS.lb,
    redis: wanted.redis ?? DEFAULT_PORTS.redis,
    pgPrimary: wanted.pgPrimary ?? DEFAULT_PORTS.pgPrimary,
    pgReplica: wanted.pgReplica ?? DEFAULT_PORTS.pgReplica,
    apps: apps ?? Array.from({ length: instances }, (_, i) => base + i),
  };
  const named: [string, number][] = [
    ["LB_PORT", ports.lb],
    ["REDIS_PORT", ports.redis],
    ["PG_PRIMARY_PORT", ports.pgPrimary],
    ["PG_REPLICA_PORT", ports.pgReplica],
    ...ports.apps.map((p, i): [string, number] => [`APP_BASE_PORT+${i} (app-${i + 1})`, p]),
  ];
  const seen = new Map<number, string>();
  for (const [what, port] of named) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${what}: invalid port ${port}`);
    const other = seen.get(port);
    if (other) throw new Error(`${what} and ${other} are both port ${port}`);
    seen.set(port, what);
  }
  const busy: string[] = [];
  for (const [what, port] of named) if (!(await portIsFree(port))) busy.push(`${what}=${port}`);
  if (busy.length > 0)
    throw new Error(
      `port already in use on ${HOST}: ${busy.join(", ")} (choose other ports or stop what listens there)`,
    );
  return ports;
}

/** Start a stack and wait until nginx answers /readyz 200 from the instances. */
export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const name = options.name ?? "default";
  const stateRoot = options.stateRoot ?? defaultStateRoot();
  const stateDir = stateDirFor(name, stateRoot);
  const previous = loadTopology({ name, stateRoot, log: options.log });
  if (previous?.anyRunning()) {
    throw new Error(`stack '${name}' is already running (${previous.lbUrl}); stop it first (local/cli.ts down)`);
  }
  const instances = options.instances ?? 2;
  if (!Number.isInteger(instances) || instances < 0 || instances > 64)
    throw new Error(`INSTANCES=${instances}: expected 0..64`);
  const drain = options.shutdownDrainMs ?? 1000;
  if (!Number.isInteger(drain) || drain < 0) throw new Error(`SHUTDOWN_DRAIN_MS=${drain}: expected an integer >= 0`);
  const delay = options.replicaApplyDelayMs ?? 0;
  if (!Number.isInteger(delay) || delay < 0) throw new Error(`replicaApplyDelayMs=${delay}: expected an integer >= 0`);
  const workers = options.nginxWorkers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`NGINX_WORKERS=${workers}: expected an integer >= 1`);

  // Binaries first, so a machine without them fails with one line saying what to install.
  const pgBinDir = findPgBinDir();
  findRedisServer();
  findNginx();
  if (options.pgbouncer) findPgBouncer();

  const ports = await resolvePorts(options, instances);
  const pgbouncer = options.pgbouncer
    ? {
        port: await pgBouncerPort(options.pgbouncerPort ?? (options.freePorts ? null : DEFAULT_PGBOUNCER_PORT)),
        process: null,
        ...(options.pgbouncerUpstream ? { upstream: options.pgbouncerUpstream } : {}),
      }
    : undefined;
  if (options.redisCluster && options.expose)
    throw new Error("REDIS_CLUSTER=1 with EXPOSE_ADDRESS: the cluster's nodes announce loopback addresses only");
  const redisCluster = options.redisCluster
    ? (await clusterPorts(options.freePorts ? null : ports.redis)).map((n) => ({ ...n, process: null }))
    : undefined;
  mkdirSync(join(stateDir, "logs"), { recursive: true });
  const secrets: Secrets = loadSecrets(stateDir) ?? {
    superuserPassword: secret(),
    appPassword: secret(),
    replicationPassword: secret(),
    sessionSecrets: [secret(32)],
  };
  writeJson(join(stateDir, "secrets.json"), secrets, 0o600);
  const pgRoot = preparePgRoot(stateDir, name, pgRunAs(), previous?.state.pgRoot);
  const appEntry = resolve(REPO_ROOT, options.appEntry ?? "app/src/main.ts");
  const state: StackState = {
    version: 1,
    name,
    stateDir,
    pgRoot,
    pgBinDir,
    node: options.node ?? process.execPath,
    appEntry,
    appDir: resolve(REPO_ROOT, options.appDir ?? "app"),
    appEnv: options.appEnv ?? {},
    lbAlgorithm: options.lbAlgorithm ?? "round_robin",
    nginxWorkers: workers,
    shutdownDrainMs: drain,
    replicaApplyDelayMs: delay,
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    expose: options.expose ?? null,
    startedAt: new Date().toISOString(),
    lbUrl: `http://${HOST}:${ports.lb}`,
    redis: { port: ports.redis, process: null },
    redisCluster,
    pgPrimary: { port: ports.pgPrimary, process: null },
    pgReplica: { port: ports.pgReplica, process: null },
    pgbouncer,
    nginx: { port: ports.lb, process: null },
    apps: ports.apps.map((port, i) => ({ name: `app-${i + 1}`, port, process: null })),
  };
  parseLbAlgorithm(state.lbAlgorithm);
  writeJson(join(stateDir, "state.json"), state);
  if (!existsSync(join(stateDir, "state.json"))) throw new Error(`cannot write ${stateDir}/state.json`);
  const topology = new Topology(state, secrets, options.log);
  await topology._up({ migrate: options.migrate ?? true });
  return topology;
}
