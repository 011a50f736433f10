// Slow clients cannot take the pool (issue 15, "streams with deadlines"). Twenty clients ask
// one instance for an export and then never read. Only STREAMS_MAX of them get a stream (the
// rest 503 at once); while those hang on, point reads by id are still served by the replica
// and /readyz answers; after STREAM_STALL_TIMEOUT_MS without progress each stalled stream is
// cut off and its connection goes back to the pool. An import whose client stops sending
// is cut off the same way and adds no row.

import assert from "node:assert/strict";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { after, before, describe, test } from "node:test";
import { Client, type Instance, registerAndLogin, startStack, stopStack, type Topology, waitFor } from "./support.ts";

const STALLED = 20;
const STREAMS_MAX = 4;
const STALL_MS = 3000;
// Enough NDJSON (~30 MB) to fill the socket buffers of a client that reads nothing.
const ROWS = 200_000;

let stack: Topology | undefined;
let instance: Instance;

before(async () => {
  stack = await startStack("stalled", {
    instances: 1,
    appEnv: { STREAMS_MAX: String(STREAMS_MAX), STREAM_STALL_TIMEOUT_MS: String(STALL_MS), PG_POOL_MAX: "10" },
  });
  instance = stack.instances[0] as Instance;
  await stack.query(
    "primary",
    `insert into items (owner_id, title, body)
     select null, 'row ' || g, 'exported body ' || md5(g::text) from generate_series(1, ${ROWS}) g`,
  );
  const s = stack;
  await waitFor(
    "the seeded rows on the replica",
    async () => (await s.query("replica", "select count(*) from items")).trim() === String(ROWS),
    60_000,
  );
});

after(async () => {
  await stopStack(stack);
});

type Stalled = { status: Promise<number>; socket: net.Socket };

/** A GET whose client reads the status line, then stops reading for good. */
function stalledRequest(port: number, path: string): Stalled {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  const status = new Promise<number>((resolve) => {
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(chunk.toString("latin1"))?.[1] ?? 0));
    });
    socket.once("close", () => resolve(0));
  });
  return { status, socket };
}

async function metric(url: string, line: RegExp): Promise<number> {
  const text = (await new Client(url).get("/metrics")).text;
  const found = text.split("\n").find((l) => line.test(l));
  return found === undefined ? 0 : Number(found.split(" ").at(-1));
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
};

describe("stalled streams", { timeout: 180_000 }, () => {
  test(`${STALLED} exports that are never read leave point reads on the replica, and are cut off`, async () => {
    const port = Number(new URL(instance.url).port);
    const stalled = Array.from({ length: STALLED }, () => stalledRequest(port, "/api/items/export"));
    const statuses = await Promise.all(stalled.map((s) => s.status));
    const counts = statuses.reduce<Record<number, number>>((acc, st) => ({ ...acc, [st]: (acc[st] ?? 0) + 1 }), {});
    console.log(`statuses of ${STALLED} exports: ${JSON.stringify(counts)}`);
    assert.deepEqual(counts, { 200: STREAMS_MAX, 503: STALLED - STREAMS_MAX }, "STREAMS_MAX streams, the rest 503");

    const reader = new Client(instance.url);
    try {
      const routes: string[] = [];
      const readyMs: number[] = [];
      for (let i = 0; i < 50; i++) {
        const read = await reader.get(`/api/items/${1 + i * 1000}`);
        assert.equal(read.status, 200, `point read ${i}: ${read.status} ${read.text}`);
        routes.push(read.dbRoute ?? "(none)");
        const t = performance.now();
        const ready = await reader.get("/readyz");
        readyMs.push(performance.now() - t);
        assert.equal(ready.status, 200, `/readyz while exports hang: ${ready.status} ${ready.text}`);
      }
      // A figure for the note, not an assertion: timings belong to the bench.
      console.log(
        `while ${STREAMS_MAX} exports hang: point reads by route ${JSON.stringify(
          routes.reduce<Record<string, number>>((a, r) => ({ ...a, [r]: (a[r] ?? 0) + 1 }), {}),
        )}; /readyz p50 ${percentile(readyMs, 50).toFixed(1)} ms, p99 ${percentile(readyMs, 99).toFixed(1)} ms`,
      );
      assert.deepEqual(new Set(routes), new Set(["replica"]), "every point read served by the replica");

      // The client never reads, so it cannot see the end of its stream; the server counts the cuts.
      await waitFor(
        `${STREAMS_MAX} stalled exports cut off by the deadline`,
        async () => (await metric(instance.url, /^nodescale_streams_cut_total\{stream="export"\}/)) === STREAMS_MAX,
        60_000,
      );

      // The slots and connections are back: a client that reads gets the whole export.
      let lines = 0;
      const full = await reader.get("/api/items/export", {
        timeoutMs: 120_000,
        onData: (chunk) => {
          for (const byte of chunk) if (byte === 10) lines++;
        },
      });
      assert.equal(full.status, 200, `an export after the cut: ${full.status}`);
      assert.equal(lines, ROWS, "the whole export arrives");
    } finally {
      reader.close();
      for (const s of stalled) s.socket.destroy();
    }
  });

  test("an import whose client stops sending is cut off with 408 and adds no row", async () => {
    const writer = new Client(instance.url);
    await registerAndLogin(writer, "stalledimport");
    const before = (await (stack as Topology).query("primary", "select count(*) from items")).trim();
    const port = Number(new URL(instance.url).port);
    const body = `${JSON.stringify({ title: "never finished" })}\n`.repeat(100);
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => undefined);
    const cookie = [...writer.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    socket.write(
      `POST /api/items/import HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n` +
        `Content-Length: ${body.length * 2}\r\nCookie: ${cookie}\r\n\r\n${body}`,
    );
    let answer = "";
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString();
    });
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    writer.close();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
    assert.equal(status, 408, `the stalled import's answer: ${answer.slice(0, 300)}`);
    assert.match(answer, /"code":"request_stalled"/);
    const afterCount = (await (stack as Topology).query("primary", "select count(*) from items")).trim();
    assert.equal(afterCount, before, "no row of the unfinished import landed");
    assert.equal(await metric(instance.url, /^nodescale_streams_cut_total\{stream="import"\}/), 1);
  });
});
