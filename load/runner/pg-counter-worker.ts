// Runs on a worker thread (see pg-counter.ts): TCP proxies in front of PostgreSQL that count
// the statements clients execute, by reading the client side of the wire protocol: a simple
// Query ('Q') or an extended-protocol Execute ('E') is one statement. Bytes pass unchanged.
//
// Counters per target, in a SharedArrayBuffer (Int32, Atomics): [statements, replica-lag
// polls, WAL-position queries, connections]. The app's replica poller sends
// `pg_last_wal_replay_lsn()` (replica) and `pg_current_wal_insert_lsn()` (primary) a few times a
// second whatever the load; writes ask for the same position. Counting those apart
// lets the bench subtract the poller exactly.

import net from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import { StatementCounter } from "./pg-wire.ts";

type Target = { listenPort: number; upstreamPort: number };
const { targets, counters } = workerData as { targets: Target[]; counters: SharedArrayBuffer };
const view = new Int32Array(counters);
export const SLOTS = 4;

function serve(index: number, t: Target): Promise<void> {
  const base = index * SLOTS;
  const server = net.createServer((client) => {
    Atomics.add(view, base + 3, 1);
    const upstream = net.connect(t.upstreamPort, "127.0.0.1");
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const counter = new StatementCounter();
    client.on("data", (chunk: Buffer) => {
      upstream.write(chunk);
      const before = [counter.statements, counter.lagPolls, counter.walPositionQueries];
      counter.push(chunk);
      Atomics.add(view, base, counter.statements - (before[0] as number));
      Atomics.add(view, base + 1, counter.lagPolls - (before[1] as number));
      Atomics.add(view, base + 2, counter.walPositionQueries - (before[2] as number));
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
