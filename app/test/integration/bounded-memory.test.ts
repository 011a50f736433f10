// Streaming keeps memory bounded whatever the size: exporting 1,000,000 rows as NDJSON and
// importing a 100 MB NDJSON body each grow the serving process's RSS by less than 100 MB.
// The test talks to one instance directly (not through nginx) and samples that process's
// VmRSS from /proc while the request runs.

import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { after, before, describe, test } from "node:test";
import { createGunzip } from "node:zlib";
import {
  Client,
  type Instance,
  jsonOf,
  MiB,
  mib,
  registerAndLogin,
  sampleRss,
  startStack,
  stopStack,
  type Topology,
  waitFor,
} from "./support.ts";

const ROWS = 1_000_000;
const IMPORT_BYTES = 100 * MiB;
const MAX_GROWTH = 100 * MiB;

describe("bounded memory on big payloads", { timeout: 300_000 }, () => {
  let stack: Topology | undefined;
  let instance: Instance;

  before(async () => {
    stack = await startStack("memory", { instances: 1 });
    instance = stack.instances[0] as Instance;
    assert.ok(instance.pid, "the instance runs");
  });

  after(async () => {
    await stopStack(stack);
  });

  test(`exporting ${ROWS.toLocaleString("en")} rows grows RSS by less than ${mib(MAX_GROWTH)}`, async () => {
    assert.ok(stack);
    const s = stack;
    const t = Date.now();
    // Straight into the primary (the app's import is tested below), in slices because the
    // topology's query() gives psql 10 s.
    const SLICE = 100_000;
    for (let from = 1; from <= ROWS; from += SLICE) {
      await s.query(
        "primary",
        `insert into items (owner_id, title, body)
         select null, 'row ' || g, 'exported body ' || md5(g::text)
         from generate_series(${from}, ${Math.min(ROWS, from + SLICE - 1)}) g`,
      );
    }
    const seedMs = Date.now() - t;
    const [count, maxId] = (await s.query("primary", "select count(*), max(id) from items"))
      .trim()
      .split("|")
      .map(Number);
    assert.equal(count, ROWS);
    const replicaMs = await waitFor(
      "the replica has every row",
      async () => Number((await s.query("replica", "select count(*) from items")).trim()) === ROWS,
      60_000,
    );
    console.log(`seeded ${count} rows in ${seedMs} ms; the replica had them ${replicaMs} ms later`);

    await exportsEveryRowInBoundedMemory(instance, maxId as number);
  });

  // The export's type (NDJSON) was missing from compression's list, so it went out raw however
  // the client asked: now gzip, streamed, with the same bound on memory.
  test(`the same export gzip-compressed, on a client's Accept-Encoding, grows RSS by less than ${mib(MAX_GROWTH)}`, async () => {
    assert.ok(stack);
    const [maxId] = (await stack.query("primary", "select max(id) from items")).trim().split("|").map(Number);
    const raw = await exportsEveryRowInBoundedMemory(instance, maxId as number, "gzip");
    assert.ok(raw.wireBytes < raw.bytes / 2, `gzip sent ${mib(raw.wireBytes)} for ${mib(raw.bytes)} of NDJSON`);
  });

  test(`importing a ${mib(IMPORT_BYTES)} NDJSON body grows RSS by less than ${mib(MAX_GROWTH)}`, async () => {
    assert.ok(stack);
    const client = new Client(instance.url);
    const user = await registerAndLogin(client, "importer");

    // Generated as it is sent, never held in memory: ~64 KiB of lines per chunk.
    let generated = 0;
    let lines = 0;
    const filler = "imported body text ".repeat(10);
    const body = new Readable({
      read() {
        if (generated >= IMPORT_BYTES) {
          this.push(null);
          return;
        }
        let chunk = "";
        while (chunk.length < 64 * 1024) {
          lines++;
          chunk += `${JSON.stringify({ title: `import ${lines}`, body: `${filler}${lines}` })}\n`;
        }
        generated += chunk.length;
        this.push(chunk);
      },
    });

    const rss = sampleRss(instance.pid as number);
    const t = Date.now();
    const reply = await client.request("/api/items/import", {
      method: "POST",
      body,
      headers: { "content-type": "application/x-ndjson" },
      timeoutMs: 180_000,
    });
    const ms = Date.now() - t;
    const memory = rss.stop();
    client.close();
    const inDb = Number(
      (await stack.query("primary", `select count(*) from items where owner_id = ${user.id}`)).trim(),
    );
    console.log(
      `import: ${reply.status} ${reply.text} for ${lines} lines, ${mib(generated)} in ${ms} ms ` +
        `(${Math.round(lines / (ms / 1000))} rows/s); ${inDb} rows in the database; ` +
        `RSS ${mib(memory.baseline)} -> peak ${mib(memory.peak)} = growth ${mib(memory.growth)} (${memory.samples} samples)`,
    );

    assert.equal(reply.status, 201, reply.error ?? reply.text);
    assert.ok(generated >= IMPORT_BYTES, "the body is at least 100 MiB");
    assert.deepEqual(jsonOf(reply), { imported: lines }, "the answer counts every line");
    assert.equal(inDb, lines, "every line is a row");
    assert.ok(memory.growth < MAX_GROWTH, `RSS growth ${mib(memory.growth)} < ${mib(MAX_GROWTH)}`);
  });
});

/** Exports every row from `instance`, checking each line, while sampling its RSS. */
async function exportsEveryRowInBoundedMemory(instance: Instance, maxId: number, encoding?: "gzip") {
  const client = new Client(instance.url);
  let lines = 0;
  let invalid = 0;
  let outOfOrder = 0;
  let lastId = 0;
  let bytes = 0;
  let wireBytes = 0;
  let partial = "";
  let sample: { id?: number; title?: string; body?: string; createdAt?: string } | undefined;
  const check = (line: string) => {
    lines++;
    try {
      const item = JSON.parse(line) as { id: number; title: string; body: string; createdAt: string };
      if (!(item.id > lastId)) outOfOrder++;
      lastId = item.id;
      if (lines === 1 || lines % 100_000 === 0) sample = item;
    } catch {
      invalid++;
    }
  };
  const take = (chunk: Buffer) => {
    bytes += chunk.length;
    const text = partial + chunk.toString("utf8");
    const parts = text.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) check(line);
  };
  const gunzip = encoding === "gzip" ? createGunzip() : undefined;
  gunzip?.on("data", take);
  const rss = sampleRss(instance.pid as number);
  const t = Date.now();
  const reply = await client.get("/api/items/export", {
    timeoutMs: 180_000,
    headers: encoding === undefined ? {} : { "accept-encoding": encoding },
    onData(chunk) {
      wireBytes += chunk.length;
      if (gunzip) gunzip.write(chunk);
      else take(chunk);
    },
  });
  if (gunzip) {
    gunzip.end();
    await finished(gunzip);
  }
  const ms = Date.now() - t;
  const memory = rss.stop();
  client.close();
  console.log(
    `export (${encoding ?? "identity"}): ${reply.status} from ${reply.dbRoute}, ${lines} lines, ${mib(bytes)} (${mib(wireBytes)} sent) in ${ms} ms ` +
      `(${Math.round(lines / (ms / 1000))} rows/s); invalid ${invalid}, out of order ${outOfOrder}, last id ${lastId}; ` +
      `RSS ${mib(memory.baseline)} -> peak ${mib(memory.peak)} = growth ${mib(memory.growth)} (${memory.samples} samples)`,
  );
  console.log(`sample line: ${JSON.stringify(sample)}`);

  assert.equal(reply.status, 200, reply.error);
  assert.match(String(reply.headers["content-type"]), /^application\/x-ndjson/);
  assert.equal(reply.headers["content-encoding"], encoding, "compressed exactly when asked");
  assert.equal(partial, "", "the export ends with a newline");
  assert.equal(invalid, 0, "every line parses as JSON");
  assert.equal(lines, ROWS, "every row is exported once");
  assert.equal(outOfOrder, 0, "ids strictly ascend");
  assert.equal(lastId, maxId, "the last line is the last row");
  assert.ok(sample?.title?.startsWith("row ") && typeof sample.createdAt === "string", "lines are items");
  assert.ok(memory.growth < MAX_GROWTH, `RSS growth ${mib(memory.growth)} < ${mib(MAX_GROWTH)}`);
  return { bytes, wireBytes };
}
