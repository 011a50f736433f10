// What `PGBOUNCER=1 make local-up` asks of PgBouncer, without starting it: the option reaches
// the topology, and the ini file says transaction pooling, SCRAM from the auth_file, the pool
// sizes and the statement timeout, with every file in the stack's folder. pgbouncer.test.ts
// runs the real one.

import assert from "node:assert/strict";
import { test } from "node:test";
import { optionsFromEnv } from "../../../local/cli.ts";
import { pgBouncerIni, pgBouncerUrls, REPLICA_DATABASE } from "../../../local/pgbouncer.ts";

function iniSettings(ini: string): Map<string, string> {
  const settings = new Map<string, string>();
  let section = "";
  for (const line of ini.split("\n")) {
    const header = /^\[(\w+)\]$/.exec(line.trim());
    if (header) section = header[1] as string;
    const pair = /^([\w.]+)\s*=\s*(.*)$/.exec(line.trim());
    if (pair) settings.set(`${section}.${pair[1]}`, (pair[2] as string).trim());
  }
  return settings;
}

test("PGBOUNCER=1 and PGBOUNCER_PORT reach the topology options; unset means no PgBouncer", () => {
  const on = optionsFromEnv({ PGBOUNCER: "1", PGBOUNCER_PORT: "17432", PGBOUNCER_POOL_SIZE: "8" });
  assert.equal(on.pgbouncer, true);
  assert.equal(on.pgbouncerPort, 17432);
  assert.equal(on.appEnv?.PGBOUNCER_POOL_SIZE, "8");
  const off = optionsFromEnv({});
  assert.equal(off.pgbouncer, false);
  assert.equal(off.pgbouncerPort, undefined);
});

test("the ini: transaction pooling in front of the primary and the replica, files in the stack's folder", () => {
  const dir = "/state/stack/pgbouncer";
  const ini = iniSettings(
    pgBouncerIni(
      {
        port: 16432,
        primaryPort: 15432,
        replicaPort: 15433,
        poolSize: 20,
        maxClientConnections: 5000,
        statementTimeoutMs: 15_000,
      },
      dir,
    ),
  );
  assert.equal(ini.get("pgbouncer.pool_mode"), "transaction");
  assert.equal(ini.get("pgbouncer.auth_type"), "scram-sha-256");
  assert.equal(ini.get("pgbouncer.auth_file"), `${dir}/userlist.txt`);
  assert.equal(ini.get("pgbouncer.pidfile"), `${dir}/pgbouncer.pid`);
  assert.equal(ini.get("pgbouncer.listen_addr"), "127.0.0.1");
  assert.equal(ini.get("pgbouncer.listen_port"), "16432");
  assert.equal(ini.get("pgbouncer.max_client_conn"), "5000");
  // Startup parameters PgBouncer does not know stay refused: the app sends none under pooling.
  assert.equal(ini.has("pgbouncer.ignore_startup_parameters"), false);
  const server = (port: number) =>
    `host=127.0.0.1 port=${port} dbname=nodescale pool_size=20 connect_query='SET statement_timeout = 15000'`;
  assert.equal(ini.get("databases.nodescale"), server(15432));
  assert.equal(ini.get(`databases.${REPLICA_DATABASE}`), server(15433));
});

test("the app's URLs name the primary and the replica by PgBouncer's database names", () => {
  assert.deepEqual(pgBouncerUrls(16432, "p@ss"), {
    primary: "postgres://nodescale:p%40ss@127.0.0.1:16432/nodescale",
    replicas: ["postgres://nodescale:p%40ss@127.0.0.1:16432/nodescale_replica"],
  });
});
