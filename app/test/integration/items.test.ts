// Items as the API sends them (issue 14): created_at leaves PostgreSQL as text, so the text
// must be what Date.toISOString wrote before (UTC, milliseconds), whatever time zone the app's
// database connections run in.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { APP_ROLE } from "../../../local/postgres.ts";
import {
  Client,
  type Instance,
  jsonOf,
  registerAndLogin,
  startStack,
  stopStack,
  type Topology,
  waitFor,
} from "./support.ts";

describe("items as JSON", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let instance: Instance;

  before(async () => {
    stack = await startStack("items", { instances: 1 });
    instance = stack.instances[0] as Instance;
  });

  after(async () => {
    await stopStack(stack);
  });

  test("createdAt is the instant in UTC with milliseconds, on a connection whose time zone is not UTC", async () => {
    const s = stack as Topology;
    // Connections opened from now on run in +05:30; the app's open ones are closed so that its
    // pools reconnect with it, on the primary and on the replica.
    await s.query("primary", `alter role ${APP_ROLE} set timezone = 'Asia/Kolkata'`);
    for (const target of ["primary", "replica"] as const) {
      await s.query(
        target,
        `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${APP_ROLE}' and pid <> pg_backend_pid()`,
      );
    }
    const id = Number(
      (
        await s.query(
          "primary",
          `insert into items (owner_id, title, body, created_at)
           values (null, 'dated', '', '2026-03-04 05:06:07.891999+05:30') returning id`,
        )
      ).trim(),
    );
    const expected = "2026-03-03T23:36:07.891Z";
    assert.equal(new Date(Date.parse("2026-03-04T05:06:07.891999+05:30")).toISOString(), expected);

    const client = new Client(instance.url);
    await waitFor("the item reads back", async () => (await client.get(`/api/items/${id}`)).status === 200, 20_000);
    const zone = (
      await s.query("replica", `select count(*) from pg_stat_activity where usename = '${APP_ROLE}'`)
    ).trim();
    assert.notEqual(zone, "0", "the app reconnected to the replica");
    const read = await client.get(`/api/items/${id}`);
    assert.equal((jsonOf(read) as { createdAt: string }).createdAt, expected);
    const listed = jsonOf(await client.get(`/api/items?after=${id - 1}&limit=1`)) as {
      items: { id: number; createdAt: string }[];
    };
    assert.deepEqual(
      listed.items.map((i) => [i.id, i.createdAt]),
      [[id, expected]],
    );

    // A write answers with the same form, for a row stamped by the server's clock.
    await registerAndLogin(client, "dated");
    const before = Date.now();
    const written = await client.post("/api/items", { title: "now" });
    assert.equal(written.status, 201, written.error);
    const { createdAt } = jsonOf(written) as { createdAt: string };
    assert.match(createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(createdAt) - before) < 60_000, `${createdAt} is now, in UTC`);
    client.close();
  });

  // Issue 14: a page of the list is compressed in one piece when it is worth it, and says so.
  test("a page of the list comes brotli- or gzip-compressed as the client accepts, the same JSON, and a short one as it is", async () => {
    const s = stack as Topology;
    await s.query(
      "primary",
      "insert into items (owner_id, title, body) select null, 'page ' || g, repeat('text ', 40) from generate_series(1, 30) g",
    );
    const page = (encoding: string, limit = 20) =>
      fetch(`${instance.url}/api/items?limit=${limit}`, { headers: { "accept-encoding": encoding } });
    await waitFor("the rows reach the replica", async () => {
      const body = (await (await page("identity")).json()) as { items: unknown[] };
      return body.items.length === 20;
    });
    const plain = await page("identity");
    assert.equal(plain.headers.get("content-encoding"), null);
    assert.equal(plain.headers.get("vary"), "Accept-Encoding");
    const expected = await plain.json();
    for (const [accept, chosen] of [
      // The client's order: browsers list gzip first.
      ["gzip, deflate, br, zstd", "gzip"],
      ["br", "br"],
      ["br, gzip", "br"],
      ["gzip", "gzip"],
      ["br;q=0, gzip", "gzip"],
      ["deflate", null],
    ] as const) {
      const reply = await page(accept);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.get("content-encoding"), chosen, accept);
      assert.match(reply.headers.get("content-type") ?? "", /^application\/json; charset=utf-8$/);
      // fetch decodes brotli and gzip: what arrives is the same answer.
      assert.deepEqual(await reply.json(), expected, accept);
    }
    const short = await page("br", 1);
    assert.equal(short.headers.get("content-encoding"), null, "a page under 1 KB goes out as it is");
    assert.equal(((await short.json()) as { items: unknown[] }).items.length, 1);
  });
});
