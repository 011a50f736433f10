// The statement counter on hand-built PostgreSQL v3 client messages: each Query is one
// statement, each Execute one of the class of the last Parse; the startup, SSL request,
// Bind and Sync count for nothing. Fed whole, then one byte at a time.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classify, StatementCounter } from "../runner/pg-wire.ts";

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const typed = (type: string, body: Buffer) => Buffer.concat([Buffer.from(type), int32(4 + body.length), body]);
const cstr = (s: string) => Buffer.from(`${s}\0`);

const sslRequest = Buffer.concat([int32(8), int32(80877103)]);
const startupBody = Buffer.concat([int32(196608), cstr("user"), cstr("app"), Buffer.from([0])]);
const startup = Buffer.concat([int32(4 + startupBody.length), startupBody]);
const query = (sql: string) => typed("Q", cstr(sql));
const parse = (sql: string) => typed("P", Buffer.concat([cstr(""), cstr(sql), Buffer.from([0, 0])]));
const bind = typed("B", Buffer.concat([cstr(""), cstr(""), Buffer.from([0, 0, 0, 0, 0, 0])]));
const execute = typed("E", Buffer.concat([cstr(""), int32(0)]));
const sync = typed("S", Buffer.alloc(0));

const session = Buffer.concat([
  sslRequest,
  startup,
  query("SELECT 1"),
  query("SELECT pg_last_wal_replay_lsn()"),
  parse("select pg_current_wal_insert_lsn()::text as lsn"),
  bind,
  execute,
  sync,
  parse("INSERT INTO items (title) VALUES ($1)"),
  bind,
  execute,
  bind,
  execute,
  sync,
]);

const counts = (c: StatementCounter) => [c.statements, c.lagPolls, c.walPositionQueries];

describe("StatementCounter", () => {
  it("counts 5 statements: 2 queries, 3 executes; 1 lag poll, 1 WAL-position read", () => {
    const c = new StatementCounter();
    c.push(session);
    assert.deepEqual(counts(c), [5, 1, 1]);
  });

  it("counts the same when the bytes come one at a time", () => {
    const c = new StatementCounter();
    for (let i = 0; i < session.length; i++) c.push(session.subarray(i, i + 1));
    assert.deepEqual(counts(c), [5, 1, 1]);
  });

  it("waits for a whole message: nothing before its last byte", () => {
    const c = new StatementCounter();
    const q = query("SELECT 2");
    c.push(Buffer.concat([startup, q.subarray(0, q.length - 1)]));
    assert.deepEqual(counts(c), [0, 0, 0]);
    c.push(q.subarray(q.length - 1));
    assert.deepEqual(counts(c), [1, 0, 0]);
  });

  it("reads nothing as a statement before the startup message", () => {
    const c = new StatementCounter();
    // an SSL request is 8 bytes whose 5th is 0x04, not a typed message
    c.push(sslRequest);
    assert.deepEqual(counts(c), [0, 0, 0]);
  });
});

describe("classify", () => {
  it("tells the replica poll and the WAL-position read from any other SQL", () => {
    assert.equal(classify("SELECT pg_last_wal_replay_lsn() AS lsn"), 1);
    assert.equal(classify("SELECT pg_current_wal_lsn()::text"), 2);
    // what the app sends since it reads the insert position (app/src/items/store.ts)
    assert.equal(classify("select pg_current_wal_insert_lsn()::text as lsn"), 2);
    assert.equal(classify("SELECT * FROM items WHERE id = $1"), 0);
  });
});
