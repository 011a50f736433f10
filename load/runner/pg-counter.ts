// Counting proxies in front of the PostgreSQL primary and replica (one hop, like PgBouncer
// would add), run on a worker thread so that they never wait on the load generator's event
// loop. pg_stat_statements is not loaded on the local servers, and pg_stat_database counts
// are published late (a backend that only ran function calls, like the replica poller,
// publishes nothing until it exits), so the bench counts statements on the wire instead.

import { Worker } from "node:worker_threads";

export type PgCounts = { statements: number; lagPolls: number; walPositionQueries: number; connections: number };

export class PgCounter {
  readonly #worker: Worker;
  readonly #view: Int32Array;
  readonly names: string[];

  private constructor(worker: Worker, view: Int32Array, names: string[]) {
    this.#worker = worker;
    this.#view = view;
    this.names = names;
  }

  /** Listen on each `listenPort`, forwarding to `upstreamPort` on 127.0.0.1. */
  static async start(targets: { name: string; listenPort: number; upstreamPort: number }[]): Promise<PgCounter> {
    const counters = new SharedArrayBuffer(4 * 4 * targets.length);
    const worker = new Worker(new URL("./pg-counter-worker.ts", import.meta.url), {
      workerData: { targets: targets.map(({ listenPort, upstreamPort }) => ({ listenPort, upstreamPort })), counters },
    });
    await new Promise<void>((resolve, reject) => {
      worker.once("message", (m: string) => (m === "listening" ? resolve() : reject(new Error(`pg counter: ${m}`))));
      worker.once("error", reject);
    });
    worker.unref();
    return new PgCounter(
      worker,
      new Int32Array(counters),
      targets.map((t) => t.name),
    );
  }

  read(): Record<string, PgCounts> {
    const out: Record<string, PgCounts> = {};
    this.names.forEach((name, i) => {
      const at = (k: number) => Atomics.load(this.#view, i * 4 + k);
      out[name] = { statements: at(0), lagPolls: at(1), walPositionQueries: at(2), connections: at(3) };
    });
    return out;
  }

  async stop(): Promise<void> {
    await this.#worker.terminate();
  }
}
