// Runs on a worker thread (see pg-counter.ts): TCP proxies in front of PostgreSQL that count
// the statements clients execute, by reading the client side of the wire protocol: a simple
// Query ('Q') or an extended-protocol Execute ('E') is one statement. Bytes pass unchanged.
//
// Counters per target, in a SharedArrayBuffer (Int32, Atomics): [statements, replica-lag
// polls, WAL-position queries, connections]. The app's replica poller sends
// `pg_last_wal_replay_lsn()` (replica) and `pg_current_wal_lsn()` (primary) a few times a
// second whatever the load; writes also ask for `pg_current_wal_lsn()`. Counting those apart
// lets the bench subtract the poller exactly.

import net from "node:net";
import { parentPort, workerData } from "node:worker_threads";

type Target = { listenPort: number; upstreamPort: number };
const { targets, counters } = workerData as { targets: Target[]; counters: SharedArrayBuffer };
const view = new Int32Array(counters);
export const SLOTS = 4;

function classify(sql: string): number {
  if (sql.includes("pg_last_wal_replay_lsn")) return 1;
  if (sql.includes("pg_current_wal_lsn")) return 2;
  return 0;
}

function serve(index: number, t: Target): Promise<void> {
  const base = index * SLOTS;
  const server = net.createServer((client) => {
    Atomics.add(view, base + 3, 1);
    const upstream = net.connect(t.upstreamPort, "127.0.0.1");
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let started = false;
    let pendingParse = 0; // class of the last Parse, for the Execute that follows it
    client.on("data", (chunk: Buffer) => {
      upstream.write(chunk);
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (true) {
        if (!started) {
          if (buf.length < 8) break;
          const len = buf.readInt32BE(0);
          if (buf.length < len) break;
          const code = buf.readInt32BE(4);
          // SSLRequest / GSSENCRequest / CancelRequest come before (or instead of) the startup message
          if (code === 196608) started = true;
          buf = buf.subarray(len);
          continue;
        }
        if (buf.length < 5) break;
        const type = buf[0] as number;
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) break;
        if (type === 0x51 /* Q */) {
          const sql = buf.toString("utf8", 5, 1 + len - 1);
          Atomics.add(view, base, 1);
          const c = classify(sql);
          if (c) Atomics.add(view, base + c, 1);
        } else if (type === 0x50 /* P */) {
          // Parse: name\0 query\0 ...
          const nameEnd = buf.indexOf(0, 5);
          const queryEnd = buf.indexOf(0, nameEnd + 1);
          pendingParse = classify(buf.toString("utf8", nameEnd + 1, queryEnd));
        } else if (type === 0x45 /* E */) {
          Atomics.add(view, base, 1);
          if (pendingParse) Atomics.add(view, base + pendingParse, 1);
        }
        buf = buf.subarray(1 + len);
      }
    });
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(t.listenPort, "127.0.0.1", () => resolve());
  });
}

Promise.all(targets.map((t, i) => serve(i, t))).then(
  () => parentPort?.postMessage("listening"),
  (err: unknown) => parentPort?.postMessage(`error: ${String(err)}`),
);
