// POST /api/items/import streams NDJSON into one COPY, so an import lands whole or not at all,
// counted in the database: a bad line after thousands of good ones (already sent to
// PostgreSQL) leaves no row, a client that drops the upload part-way leaves no row, and a good
// import leaves exactly its lines.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
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

const GOOD_LINES = 20_000;

const line = (i: number) => `${JSON.stringify({ title: `row ${i}`, body: `imported body ${i}` })}\n`;
const goodLines = (count: number) => Array.from({ length: count }, (_, i) => line(i)).join("");

describe("import lands whole or not at all", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let instance: Instance;

  before(async () => {
    stack = await startStack("import", { instances: 1 });
    instance = stack.instances[0] as Instance;
  });

  after(async () => {
    await stopStack(stack);
  });

  async function rowsOf(ownerId: number): Promise<number> {
    return Number((await stack?.query("primary", `select count(*) from items where owner_id = ${ownerId}`))?.trim());
  }

  /** True once no COPY into items runs on the primary (the app has finished with the upload). */
  async function noCopyRunning(): Promise<boolean> {
    const running = await stack?.query(
      "primary",
      "select count(*) from pg_stat_activity where query ilike 'copy items%' and state <> 'idle'",
    );
    return running?.trim() === "0";
  }

  test(`a bad line after ${GOOD_LINES} good ones: 400, and no row of the import`, async () => {
    const client = new Client(instance.url);
    const user = await registerAndLogin(client, "badline");
    const reply = await client.request("/api/items/import", {
      method: "POST",
      body: `${goodLines(GOOD_LINES)}{"title": 42}\n${goodLines(10)}`,
      headers: { "content-type": "application/x-ndjson" },
      timeoutMs: 60_000,
    });
    client.close();
    assert.equal(reply.status, 400, reply.text);
    assert.deepEqual(jsonOf(reply), {
      error: {
        code: "invalid_item",
        message: `line ${GOOD_LINES + 1}: title: Invalid input: expected string, received number`,
      },
    });
    await waitFor("the import's COPY has ended", noCopyRunning);
    assert.equal(await rowsOf(user.id), 0, "none of the good lines before it landed");
  });

  test("an upload dropped part-way leaves no row", async () => {
    const client = new Client(instance.url);
    const user = await registerAndLogin(client, "dropped");
    const cookie = `sid=${client.cookies.get("sid")}`;
    client.close();
    const body = goodLines(GOOD_LINES);
    const req = http.request(`${instance.url}/api/items/import`, {
      method: "POST",
      headers: { "content-type": "application/x-ndjson", "content-length": String(body.length * 2), cookie },
    });
    const closed = new Promise<void>((resolve) => {
      req.on("error", () => resolve());
      req.on("close", () => resolve());
    });
    // Half of the announced body: the app streams those rows into its COPY and waits for more.
    req.write(body);
    await waitFor("the import's COPY running, waiting for the rest", async () => !(await noCopyRunning()));
    req.destroy();
    await closed;
    await waitFor("the import's COPY has ended", noCopyRunning);
    assert.equal(await rowsOf(user.id), 0, "nothing of the dropped upload landed");
  });

  test(`a good import of ${GOOD_LINES} lines lands every line`, async () => {
    const client = new Client(instance.url);
    const user = await registerAndLogin(client, "good");
    const reply = await client.request("/api/items/import", {
      method: "POST",
      body: goodLines(GOOD_LINES),
      headers: { "content-type": "application/x-ndjson" },
      timeoutMs: 60_000,
    });
    client.close();
    assert.equal(reply.status, 201, reply.text);
    assert.deepEqual(jsonOf(reply), { imported: GOOD_LINES });
    assert.equal(await rowsOf(user.id), GOOD_LINES);
  });
});
