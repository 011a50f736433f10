// The chart's PgBouncer (pgbouncer.enabled) run for real: the ConfigMap, the start script and
// the readiness probe's command the chart renders, with Debian's pgbouncer in place of the
// image's, in front of the local topology's PostgreSQL primary and streaming replica (given to
// the chart as an external database). Proves what a render cannot: the configuration parses,
// the auth_file the script writes lets the database password through SCRAM (a double quote
// in it included), the app's URLs reach the right servers, each server connection gets the
// statement timeout, clients share a server connection between transactions, and SIGINT (what
// the preStop sends) stops PgBouncer while the app's idle clients are still connected.
//
//   node --test charts/tests/pgbouncer-chart.test.ts   (needs postgresql, pgbouncer: make deps)
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { freePort, portIsListening, releasePorts, waitUntil } from "../../local/net.ts";
import { findPgBouncer } from "../../local/pgbouncer.ts";
import { APP_ROLE, pgRunAs } from "../../local/postgres.ts";
import { startTestStack, teardown } from "../../local/test/helpers.ts";
import type { Topology } from "../../local/topology.ts";

const require = createRequire(import.meta.url);
const YAML = require("yaml") as { parseAllDocuments(text: string): { toJS(): any }[] };
// node-postgres is the app's dependency (app/package.json), the client the app itself uses.
type Rows = { rows: Record<string, unknown>[] };
type PgClient = {
  connect(): Promise<void>;
  query(sql: string): Promise<Rows>;
  end(): Promise<void>;
  on(event: "error", listener: () => void): void;
};
const pg = createRequire(new URL("../../app/package.json", import.meta.url))("pg") as {
  Client: new (options: {
    connectionString: string;
    query_timeout?: number;
    connectionTimeoutMillis?: number;
  }) => PgClient;
};

const ROOT = new URL("../..", import.meta.url).pathname;
const HELM = join(ROOT, "tools/bin/helm3");
// A password PgBouncer's auth_file must quote: a double quote, a space, a backslash.
const PASSWORD = 'pgb "quoted" pass\\word';
// One server connection per database, so that sharing it between clients shows.
const POOL_SIZE = 1;

let stack: Topology | undefined;
let work = "";
let pgbouncer: ChildProcess | undefined;
let port = 0;
let env: Record<string, string> = {};
let readinessCommand: string[] = [];
let primaryPort = 0;
let replicaPort = 0;

/** The chart without its `dependencies:` (the Bitnami charts cannot be pulled here), as run.sh does. */
function strippedChart(dir: string): string {
  const copy = join(dir, "nodescale");
  cpSync(join(ROOT, "charts/nodescale"), copy, { recursive: true });
  rmSync(join(copy, "charts"), { recursive: true, force: true });
  const lines = readFileSync(join(copy, "Chart.yaml"), "utf8").split("\n");
  let skip = false;
  const kept = lines.filter((line) => {
    if (/^dependencies:/.test(line)) skip = true;
    else if (skip && /^[^ #-]/.test(line)) skip = false;
    return !skip;
  });
  writeFileSync(join(copy, "Chart.yaml"), kept.join("\n"));
  return copy;
}

function urlOf(rendered: string, pgbouncerHost: string): string {
  // The Service name stands for PgBouncer's address; here it listens on loopback.
  const u = new URL(rendered);
  if (u.hostname === pgbouncerHost) u.hostname = "127.0.0.1";
  u.password = PASSWORD;
  return u.toString();
}

async function query(url: string, sql: string): Promise<Rows> {
  const client = new pg.Client({ connectionString: url, query_timeout: 5000, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

before(async () => {
  stack = await startTestStack("chart-pgbouncer", { instances: 0 });
  primaryPort = Number(new URL(stack.databaseUrl).port);
  replicaPort = Number(new URL(stack.replicaUrls[0] ?? "").port);
  await query(stack.adminUrl("primary"), `ALTER ROLE ${APP_ROLE} PASSWORD '${PASSWORD.replaceAll("'", "''")}'`);

  work = mkdtempSync(join(tmpdir(), "nodescale-chart-pgbouncer-"));
  port = await freePort();
  const out = execFileSync(
    HELM,
    [
      "template",
      "shop",
      strippedChart(work),
      "--namespace",
      "nodescale",
      "--set",
      "postgresql.enabled=false",
      "--set",
      "externalDatabase.host=127.0.0.1",
      "--set",
      `externalDatabase.port=${primaryPort}`,
      "--set",
      `externalDatabase.replicaHosts={127.0.0.1:${replicaPort}}`,
      "--set",
      `externalDatabase.user=${APP_ROLE}`,
      "--set",
      "externalDatabase.database=nodescale",
      "--set",
      "externalDatabase.existingSecret=db",
      "--set",
      "pgbouncer.enabled=true",
      "--set",
      `pgbouncer.port=${port}`,
      "--set",
      `pgbouncer.defaultPoolSize=${POOL_SIZE}`,
    ],
    { encoding: "utf8" },
  );
  const objects = YAML.parseAllDocuments(out)
    .map((d) => d.toJS())
    .filter(Boolean);
  const find = (kind: string, name: string) =>
    objects.find((o) => o.kind === kind && o.metadata.name === name) ?? assert.fail(`no ${kind} ${name} rendered`);
  const config = find("ConfigMap", "shop-nodescale-pgbouncer").data;
  env = find("ConfigMap", "shop-nodescale").data;
  readinessCommand = find("Deployment", "shop-nodescale-pgbouncer").spec.template.spec.containers[0].readinessProbe.exec
    .command;

  // The container's paths, moved into a folder of this test: /etc/pgbouncer (the ConfigMap)
  // and /tmp/pgbouncer (the auth_file); loopback instead of every address.
  const etc = join(work, "etc");
  const run = join(work, "run");
  mkdirSync(etc);
  const local = (text: string) => text.replaceAll("/etc/pgbouncer/", `${etc}/`).replaceAll("/tmp/pgbouncer", run);
  writeFileSync(
    join(etc, "pgbouncer.ini"),
    local(config["pgbouncer.ini"]).replace("listen_addr = *", "listen_addr = 127.0.0.1"),
  );
  writeFileSync(join(etc, "start.sh"), local(config["start.sh"]));
  // PgBouncer refuses to run as root: as root, run it as the postgres user.
  const as = pgRunAs();
  if (as.uid !== undefined) chownSync(work, as.uid, as.gid ?? as.uid);

  pgbouncer = spawn("/bin/bash", [join(etc, "start.sh")], {
    uid: as.uid,
    gid: as.gid,
    cwd: work,
    env: {
      PATH: `${dirname(findPgBouncer())}:${process.env.PATH}`,
      PGBOUNCER_USER: APP_ROLE,
      PGPASSWORD: PASSWORD,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  await waitUntil(`the chart's PgBouncer on port ${port}`, () => portIsListening(port), {
    timeoutMs: 15_000,
    intervalMs: 100,
    abort: () => (pgbouncer?.exitCode === null ? null : `exited with ${pgbouncer?.exitCode}`),
  });
});

after(async () => {
  if (pgbouncer?.pid && pgbouncer.exitCode === null) pgbouncer.kill("SIGKILL");
  if (work) rmSync(work, { recursive: true, force: true });
  if (port) releasePorts([port]);
  await teardown(stack);
});

test("the readiness probe's command logs in to PgBouncer with the database password (SCRAM)", () => {
  const [bin = "", ...args] = readinessCommand;
  const ok = spawnSync(bin, args, { env: { ...process.env, PGPASSWORD: PASSWORD }, encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /PgBouncer \d+\.\d+/);
  const wrong = spawnSync(bin, args, { env: { ...process.env, PGPASSWORD: "not the password" }, encoding: "utf8" });
  assert.notEqual(wrong.status, 0, "a wrong password must be refused");
  assert.match(wrong.stderr, /authentication failed/);
});

test("DATABASE_URL leads through PgBouncer to the primary, whose connections get the statement timeout", async () => {
  assert.equal(env.PG_TRANSACTION_POOLING, "on");
  assert.equal(new URL(env.DATABASE_URL ?? "").port, String(port));
  const r = await query(
    urlOf(env.DATABASE_URL ?? "", "shop-nodescale-pgbouncer"),
    "SELECT pg_is_in_recovery() AS standby, current_setting('statement_timeout') AS timeout, current_setting('port') AS port",
  );
  assert.deepEqual(r.rows[0], { standby: false, timeout: "15s", port: String(primaryPort) });
});

test("each DATABASE_REPLICA_URLS entry leads through PgBouncer to the replica", async () => {
  const urls = (env.DATABASE_REPLICA_URLS ?? "").split(",");
  assert.equal(urls.length, 1);
  const r = await query(
    urlOf(urls[0] ?? "", "shop-nodescale-pgbouncer"),
    "SELECT pg_is_in_recovery() AS standby, current_setting('port') AS port, current_setting('statement_timeout') AS timeout",
  );
  assert.deepEqual(r.rows[0], { standby: true, port: String(replicaPort), timeout: "15s" });
});

test("DATABASE_MIGRATE_URL goes to the primary itself, not through PgBouncer", async () => {
  const r = await query(urlOf(env.DATABASE_MIGRATE_URL ?? "", ""), "SELECT current_setting('port') AS port");
  assert.equal(r.rows[0]?.port, String(primaryPort));
});

test("transaction pooling: two connected clients take turns on one server connection", async () => {
  const url = urlOf(env.DATABASE_URL ?? "", "shop-nodescale-pgbouncer");
  const a = new pg.Client({ connectionString: url, query_timeout: 5000 });
  const b = new pg.Client({ connectionString: url, query_timeout: 5000 });
  await a.connect();
  await b.connect();
  try {
    // With session pooling b would wait for a's server connection until a disconnects (and
    // time out here); in transaction mode each gets it for one statement.
    const first = await a.query("SELECT pg_backend_pid() AS pid");
    const second = await b.query("SELECT pg_backend_pid() AS pid");
    const third = await a.query("SELECT pg_backend_pid() AS pid");
    assert.equal(second.rows[0]?.pid, first.rows[0]?.pid);
    assert.equal(third.rows[0]?.pid, first.rows[0]?.pid);
  } finally {
    await a.end();
    await b.end();
  }
});

test("SIGINT, the preStop's signal, stops PgBouncer while an idle app client is still connected", async () => {
  const client = new pg.Client({ connectionString: urlOf(env.DATABASE_URL ?? "", "shop-nodescale-pgbouncer") });
  client.on("error", () => undefined);
  await client.connect();
  await client.query("SELECT 1");
  const exited = new Promise<number | null>((resolve) => pgbouncer?.once("exit", (code) => resolve(code)));
  // The script exec()s PgBouncer: the child is PgBouncer itself, as PID 1 is in the pod.
  pgbouncer?.kill("SIGINT");
  const outcome = await Promise.race([
    exited,
    new Promise<string>((r) => setTimeout(() => r("still running"), 20_000)),
  ]);
  assert.notEqual(outcome, "still running", "PgBouncer kept running after SIGINT with an idle client");
  await client.end().catch(() => undefined);
});
