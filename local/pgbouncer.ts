// PgBouncer for the local topology (issue 17): Debian's `pgbouncer` in transaction pool mode in
// front of the primary and the replica, one process, one port, two databases:
//
//   nodescale          -> the primary
//   nodescale_replica  -> the replica (same database name on the server)
//
// The app's DATABASE_URL and DATABASE_REPLICA_URLS point here; DATABASE_MIGRATE_URL points
// at the primary itself, because migrations hold a session-level advisory lock, which
// transaction pooling would leave on a server connection other clients then get.
//
// Authentication: the auth_file holds the app role's SCRAM secret as the primary stores it
// (pg_authid.rolpassword), never the password itself. PgBouncer checks the client's SCRAM
// proof against it and logs in to the server with the keys that proof yields (SCRAM
// pass-through), which works because the replica, a physical copy, has the same secret.
//
// The statement timeout: the app sends it as a startup parameter when it talks to PostgreSQL
// itself; PgBouncer refuses unknown startup parameters, so here each server connection sets it
// once with connect_query, the same for every client.

import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePorts, HOST, portIsFree, portIsListening, waitUntil } from "./net.ts";
import { APP_ROLE, DATABASE, pgUrl, psql, type RunAs } from "./postgres.ts";
import { isRunning, type ProcessRecord, spawnDaemon, tail } from "./process.ts";

export const DEFAULT_PGBOUNCER_PORT = 16432;
/** The name the replica goes by on PgBouncer's port. */
export const REPLICA_DATABASE = `${DATABASE}_replica`;

const INSTALL_HINT = "install PgBouncer: `make deps` (apt: pgbouncer; brew: pgbouncer)";

export interface PgBouncerSettings {
  port: number;
  primaryPort: number;
  replicaPort: number;
  /**
   * Server connections per database (primary, replica) and user: what PostgreSQL sees however
   * many clients connect. Default 20.
   */
  poolSize: number;
  /** Client connections PgBouncer accepts in all. Default 5000. */
  maxClientConnections: number;
  /** Set on each server connection (the app's PG_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs: number;
}

/** The pgbouncer binary: PGBOUNCER_BIN, Debian's /usr/sbin, or PATH. */
export function findPgBouncer(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    env.PGBOUNCER_BIN,
    "/usr/sbin/pgbouncer",
    "/usr/local/bin/pgbouncer",
    "/opt/homebrew/bin/pgbouncer",
  ];
  for (const bin of candidates) if (bin && existsSync(bin)) return bin;
  for (const dir of (env.PATH ?? "").split(":"))
    if (dir && existsSync(join(dir, "pgbouncer"))) return join(dir, "pgbouncer");
  throw new Error(`pgbouncer not found: ${INSTALL_HINT}`);
}

/** `PgBouncer 1.18.0` from the binary's --version. */
export function pgBouncerVersion(bin: string): string {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  return (r.stdout ?? "").split("\n")[0]?.trim() ?? "";
}

/** A leased port (tests) or the one asked for, which must be free. */
export async function pgBouncerPort(wanted: number | null): Promise<number> {
  if (wanted === null) return (await freePorts(1))[0] as number;
  if (!(await portIsFree(wanted)))
    throw new Error(`port already in use on ${HOST}: PGBOUNCER_PORT=${wanted} (choose another port)`);
  return wanted;
}

/** The URLs the app gets: the primary and the replica, as PgBouncer names them. */
export function pgBouncerUrls(port: number, password: string): { primary: string; replicas: string[] } {
  return {
    primary: pgUrl(APP_ROLE, password, port, DATABASE),
    replicas: [pgUrl(APP_ROLE, password, port, REPLICA_DATABASE)],
  };
}

/** The ini file. Exported for the unit test of its shape. */
export function pgBouncerIni(settings: PgBouncerSettings, dir: string): string {
  const server = (port: number) =>
    `host=${HOST} port=${port} dbname=${DATABASE} pool_size=${settings.poolSize} ` +
    `connect_query='SET statement_timeout = ${settings.statementTimeoutMs}'`;
  return `; written by local/pgbouncer.ts before each start
[databases]
${DATABASE} = ${server(settings.primaryPort)}
${REPLICA_DATABASE} = ${server(settings.replicaPort)}

[pgbouncer]
listen_addr = ${HOST}
listen_port = ${settings.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${join(dir, "userlist.txt")}
pool_mode = transaction
; The app role may read SHOW POOLS / SHOW CLIENTS on the admin database "pgbouncer" (tests).
stats_users = ${APP_ROLE}
default_pool_size = ${settings.poolSize}
max_client_conn = ${settings.maxClientConnections}
; The app's pools open and close connections as load changes; keep server connections warm.
server_idle_timeout = 600
; A server that refuses logins (the replica stopped) fails clients at once, and is retried
; soon: the app's replica poller must see it down and then up again within seconds.
server_login_retry = 1
server_connect_timeout = 3
; A client that waits this long for a server connection gets an error rather than a hang.
query_wait_timeout = 30
logfile =
syslog = 0
pidfile = ${join(dir, "pgbouncer.pid")}
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 60
`;
}

/** A folder the PgBouncer user can use: `preferred` when it can reach it, else `fallback`. */
function usableDir(preferred: string, fallback: string, as: RunAs): string {
  for (const dir of [preferred, fallback]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (as.uid !== undefined) chownSync(dir, as.uid, as.gid ?? as.uid);
    if (as.uid === undefined) return dir;
    if (spawnSync("test", ["-w", dir, "-a", "-x", dir], { uid: as.uid, gid: as.gid }).status === 0) return dir;
  }
  throw new Error(`the postgres user cannot write ${preferred} or ${fallback}`);
}

function writeOwned(file: string, text: string, as: RunAs): void {
  writeFileSync(file, text, { mode: 0o600 });
  if (as.uid !== undefined) chownSync(file, as.uid, as.gid ?? as.uid);
}

export interface StartPgBouncerOptions extends PgBouncerSettings {
  bin: string;
  /** Config, auth_file and pid file go here (`<stateDir>/pgbouncer`)... */
  dir: string;
  /** ...or here when the postgres user cannot reach `dir` (beside the data folders). */
  fallbackDir: string;
  logFile: string;
  /** PgBouncer refuses to run as root: as root it runs as the postgres user. */
  as: RunAs;
  pgBinDir: string;
  /** The primary's superuser URL, to read the app role's SCRAM secret. */
  adminUrl: string;
}

/**
 * Writes the config and the auth_file (the app role's secret read from the primary, at every
 * start, so a changed password is picked up), starts pgbouncer in the foreground of its own
 * session, and waits until it accepts connections. Returns its record and the folder used.
 */
export async function startPgBouncer(options: StartPgBouncerOptions): Promise<{ record: ProcessRecord; dir: string }> {
  const dir = usableDir(options.dir, options.fallbackDir, options.as);
  const secret = await psql(
    options.pgBinDir,
    options.adminUrl,
    `SELECT rolpassword FROM pg_authid WHERE rolname = '${APP_ROLE}'`,
  );
  if (!secret.startsWith("SCRAM-SHA-256$"))
    throw new Error(`the ${APP_ROLE} role has no SCRAM secret on the primary (${secret.slice(0, 12)}...)`);
  writeOwned(join(dir, "userlist.txt"), `"${APP_ROLE}" "${secret}"\n`, options.as);
  const ini = join(dir, "pgbouncer.ini");
  writeOwned(ini, pgBouncerIni(options, dir), options.as);
  const { record } = spawnDaemon({
    command: options.bin,
    args: [ini],
    logFile: options.logFile,
    uid: options.as.uid,
    gid: options.as.gid,
  });
  try {
    await waitUntil(`pgbouncer on port ${options.port}`, () => portIsListening(options.port), {
      timeoutMs: 15_000,
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
  return { record, dir };
}
