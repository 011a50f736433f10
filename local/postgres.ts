// PostgreSQL for the local topology: a primary (initdb) and a streaming replica
// (pg_basebackup -R -X stream through a replication slot), loopback TCP only, passwords
// (scram-sha-256). The server refuses to run as root, so as root every server-side binary
// runs as the `postgres` user and the data folders belong to it.

import { execFileSync, spawnSync } from "node:child_process";
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Exposure, HOST, waitUntil } from "./net.ts";
import { isRunning, type ProcessRecord, run, spawnDaemon, tail } from "./process.ts";

export const DATABASE = "nodescale";
export const APP_ROLE = "nodescale";
export const REPLICATION_ROLE = "replicator";
export const REPLICATION_SLOT = "nodescale_replica";

export interface PgSecrets {
  superuserPassword: string;
  appPassword: string;
  replicationPassword: string;
}

export interface RunAs {
  uid?: number;
  gid?: number;
}

const INSTALL_HINT = "install PostgreSQL server binaries: `make deps` (apt: postgresql; brew: postgresql@15)";

/** The folder holding postgres, initdb, pg_basebackup, psql: PG_BINDIR, pg_config, Debian's layout, PATH. */
export function findPgBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const has = (dir: string) => existsSync(join(dir, "postgres")) && existsSync(join(dir, "initdb"));
  if (env.PG_BINDIR) {
    if (has(env.PG_BINDIR)) return env.PG_BINDIR;
    throw new Error(`PG_BINDIR=${env.PG_BINDIR} has no postgres/initdb binaries`);
  }
  try {
    const dir = execFileSync("pg_config", ["--bindir"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    if (has(dir)) return dir;
  } catch {
    // no pg_config
  }
  if (existsSync("/usr/lib/postgresql")) {
    const versions = readdirSync("/usr/lib/postgresql")
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = `/usr/lib/postgresql/${v}/bin`;
      if (has(dir)) return dir;
    }
  }
  for (const dir of (env.PATH ?? "").split(":")) if (dir && has(dir)) return dir;
  throw new Error(`PostgreSQL server binaries not found: ${INSTALL_HINT}`);
}

/** As root: the postgres user's uid/gid (the server refuses root). Otherwise: run as ourselves. */
export function pgRunAs(): RunAs {
  if (process.getuid?.() !== 0) return {};
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    return { uid, gid };
  } catch {
    throw new Error(`running as root but there is no 'postgres' user to run PostgreSQL as: ${INSTALL_HINT}`);
  }
}

function canUse(dir: string, as: RunAs): boolean {
  if (as.uid === undefined) return true;
  const r = spawnSync("test", ["-w", dir, "-a", "-x", dir], { uid: as.uid, gid: as.gid });
  return r.status === 0;
}

/**
 * The folder that holds the primary and replica data folders. Prefer `<stateDir>/pg`; when the
 * postgres user cannot reach it (a parent folder closed to others), use a fresh folder under
 * the system temp folder. The caller records the choice in state.json.
 */
export function preparePgRoot(stateDir: string, name: string, as: RunAs, previous?: string): string {
  const candidates = [previous, join(stateDir, "pg")].filter((d): d is string => Boolean(d));
  for (const dir of candidates) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (as.uid !== undefined) chownSync(dir, as.uid, as.gid ?? as.uid);
    if (canUse(dir, as)) return dir;
  }
  const dir = mkdtempSync(join(tmpdir(), `nodescale-${name}-`));
  if (as.uid !== undefined) chownSync(dir, as.uid, as.gid ?? as.uid);
  if (!canUse(dir, as)) throw new Error(`the postgres user cannot write ${dir}`);
  return dir;
}

/** A postgres:// URL on loopback. */
export function pgUrl(user: string, password: string | null, port: number, database: string): string {
  const auth = password === null ? user : `${user}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@${HOST}:${port}/${database}`;
}

/** Run SQL with psql; returns the unaligned, tuples-only output. Throws on error. */
export async function psql(binDir: string, url: string, sql: string, timeoutMs = 10_000): Promise<string> {
  const r = await run(join(binDir, "psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql], {
    env: { ...process.env, PGCONNECT_TIMEOUT: "3" },
    timeoutMs,
  });
  if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

export async function pgIsReady(binDir: string, port: number): Promise<boolean> {
  const r = await run(join(binDir, "pg_isready"), ["-q", "-h", HOST, "-p", String(port), "-t", "1"], {
    timeoutMs: 3000,
  });
  return r.code === 0;
}

async function mustRun(what: string, command: string, args: string[], options: Parameters<typeof run>[2]) {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${(r.stderr || r.stdout).trim()}`);
}

const PRIMARY_CONF = `
# --- nodescale local stack (appended by local/postgres.ts) ---
listen_addresses = '${HOST}'
unix_socket_directories = ''
max_connections = 200
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
# A disposable local stack: trade crash safety for speed. synchronous_commit stays on: off
# would hold WAL back from the replica for up to wal_writer_delay (replica lag is measured).
fsync = off
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
`;

const HBA = `# nodescale local stack: loopback TCP only, password authentication.
host    all          all          ${HOST}/32  scram-sha-256
host    replication  ${REPLICATION_ROLE}   ${HOST}/32  scram-sha-256
`;

/** Loopback, plus the exposed clients (the app role only, never replication). */
function hba(expose: Exposure | null | undefined): string {
  if (!expose) return HBA;
  return `${HBA}host    ${DATABASE}     ${APP_ROLE}     ${expose.clients}  scram-sha-256\n`;
}

function writeOwned(file: string, text: string, as: RunAs): void {
  writeFileSync(file, text, { mode: 0o600 });
  if (as.uid !== undefined) chownSync(file, as.uid, as.gid ?? as.uid);
}

export interface PgServerOptions {
  binDir: string;
  dataDir: string;
  port: number;
  logFile: string;
  as: RunAs;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  /** Listen on this address too and admit its clients (pg_hba is rewritten at every start). */
  expose?: Exposure | null;
}

/** Start a postgres server (detached, as the postgres user when root) and wait until it accepts connections. */
export async function startPgServer(options: PgServerOptions, timeoutMs = 60_000): Promise<ProcessRecord> {
  const args = ["-D", options.dataDir, "-p", String(options.port)];
  const settings = { ...options.settings };
  if (options.expose) settings.listen_addresses = `${HOST},${options.expose.address}`;
  for (const [k, v] of Object.entries(settings)) args.push("-c", `${k}=${v}`);
  writeOwned(join(options.dataDir, "pg_hba.conf"), hba(options.expose), options.as);
  const { record } = spawnDaemon({
    command: join(options.binDir, "postgres"),
    args,
    logFile: options.logFile,
    env: { ...process.env, LC_ALL: "C" },
    uid: options.as.uid,
    gid: options.as.gid,
  });
  try {
    await waitUntil(`postgres on port ${options.port}`, () => pgIsReady(options.binDir, options.port), {
      timeoutMs,
      intervalMs: 100,
      abort: () =>
        isRunning(record) ? null : `exited during start-up; log ${options.logFile}:\n${tail(options.logFile)}`,
    });
  } catch (err) {
    try {
      process.kill(-record.pid, "SIGKILL");
    } catch {
      // gone
    }
    throw err;
  }
  return record;
}

/**
 * Create the primary's data folder (once): initdb, loopback config, pg_hba, then start it and
 * create the app role + database, the replication role and the replication slot. Leaves the
 * primary running and returns its record. An earlier half-made folder is made again.
 */
export async function initPrimary(
  options: PgServerOptions & { secrets: PgSecrets },
): Promise<{ record: ProcessRecord; created: boolean }> {
  const marker = join(options.dataDir, "nodescale.initialized");
  if (existsSync(marker)) return { record: await startPgServer(options), created: false };
  rmSync(options.dataDir, { recursive: true, force: true });
  const pwfile = join(options.dataDir, "..", ".pwfile");
  writeOwned(pwfile, `${options.secrets.superuserPassword}\n`, options.as);
  try {
    await mustRun(
      "initdb",
      join(options.binDir, "initdb"),
      [
        "-D",
        options.dataDir,
        "-U",
        "postgres",
        `--pwfile=${pwfile}`,
        "-A",
        "scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
      ],
      { uid: options.as.uid, gid: options.as.gid, env: { ...process.env, LC_ALL: "C" }, timeoutMs: 120_000 },
    );
  } finally {
    rmSync(pwfile, { force: true });
  }
  const conf = join(options.dataDir, "postgresql.conf");
  appendFileSync(conf, PRIMARY_CONF);
  const record = await startPgServer(options);
  const admin = pgUrl("postgres", options.secrets.superuserPassword, options.port, "postgres");
  const r = await run(
    join(options.binDir, "psql"),
    [
      "-X",
      "-q",
      "-v",
      "ON_ERROR_STOP=1",
      "-d",
      admin,
      "-c",
      `CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${options.secrets.appPassword}'`,
      "-c",
      `CREATE DATABASE ${DATABASE} OWNER ${APP_ROLE}`,
      "-c",
      `CREATE ROLE ${REPLICATION_ROLE} REPLICATION LOGIN PASSWORD '${options.secrets.replicationPassword}'`,
      "-c",
      `SELECT pg_create_physical_replication_slot('${REPLICATION_SLOT}')`,
    ],
    { timeoutMs: 30_000 },
  );
  if (r.code !== 0) {
    process.kill(record.pid, "SIGINT");
    throw new Error(`creating roles and database failed: ${r.stderr.trim()}`);
  }
  writeOwned(marker, `${new Date().toISOString()}\n`, options.as);
  return { record, created: true };
}

/** The replica's connection to the primary, written before every start (ports may change). */
function replicaAutoConf(primaryPort: number, secrets: PgSecrets): string {
  const conninfo = `host=${HOST} port=${primaryPort} user=${REPLICATION_ROLE} password=${secrets.replicationPassword} application_name=nodescale_replica`;
  return `# written by local/postgres.ts before each start\nprimary_conninfo = '${conninfo}'\nprimary_slot_name = '${REPLICATION_SLOT}'\n`;
}

/** Make the replica's data folder from the running primary (once), with pg_basebackup -R -X stream. */
export async function initReplica(options: {
  binDir: string;
  dataDir: string;
  primaryPort: number;
  as: RunAs;
  secrets: PgSecrets;
}): Promise<boolean> {
  const marker = join(options.dataDir, "nodescale.initialized");
  if (existsSync(marker)) return false;
  rmSync(options.dataDir, { recursive: true, force: true });
  await mustRun(
    "pg_basebackup",
    join(options.binDir, "pg_basebackup"),
    [
      "-h",
      HOST,
      "-p",
      String(options.primaryPort),
      "-U",
      REPLICATION_ROLE,
      "-D",
      options.dataDir,
      "-R",
      "-X",
      "stream",
      "-S",
      REPLICATION_SLOT,
      "--checkpoint=fast",
      "--no-sync",
    ],
    {
      uid: options.as.uid,
      gid: options.as.gid,
      env: { ...process.env, PGPASSWORD: options.secrets.replicationPassword, PGCONNECT_TIMEOUT: "5" },
      timeoutMs: 120_000,
    },
  );
  writeOwned(marker, `${new Date().toISOString()}\n`, options.as);
  return true;
}

/** Start the replica: connection settings rewritten for the current primary port, hot standby on. */
export async function startReplica(
  options: PgServerOptions & { primaryPort: number; secrets: PgSecrets; applyDelayMs: number },
): Promise<ProcessRecord> {
  writeOwned(
    join(options.dataDir, "postgresql.auto.conf"),
    replicaAutoConf(options.primaryPort, options.secrets),
    options.as,
  );
  writeOwned(join(options.dataDir, "standby.signal"), "", options.as);
  return startPgServer({
    ...options,
    settings: { hot_standby: "on", recovery_min_apply_delay: `${options.applyDelayMs}ms`, ...options.settings },
  });
}

/** Wait until the primary reports the replica as streaming. */
export async function waitStreaming(binDir: string, adminUrl: string, timeoutMs = 20_000): Promise<void> {
  await waitUntil(
    "replica streaming",
    async () =>
      (await psql(binDir, adminUrl, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")) !== "0",
    { timeoutMs, intervalMs: 100 },
  );
}
