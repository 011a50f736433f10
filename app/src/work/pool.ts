import { Piscina } from "piscina";
import type { Config } from "../config.ts";
import { unavailable } from "../errors.ts";
import type { Metrics } from "../metrics.ts";
import type { WorkInput, WorkResult } from "./task.ts";

export type WorkerPool = {
  run(input: WorkInput): Promise<WorkResult>;
  close(): Promise<void>;
};

// Under Node's type stripping the sources run as .ts; built, they run as .js beside it.
const workerFile = new URL(`./worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);

// piscina rejects with one of these when `maxQueue` is reached, the second when it is 0 and
// every thread is busy (it exports no error class).
const QUEUE_FULL_MESSAGES = new Set(["Task queue is at limit", "No task queue available and all Workers are busy"]);

export function createWorkerPool(config: Config["workers"], metrics: Metrics): WorkerPool {
  const piscina = new Piscina<WorkInput, WorkResult>({
    filename: workerFile.href,
    minThreads: config.threads,
    maxThreads: config.threads,
    // A bounded queue turns overload into a fast 503 instead of unbounded memory and latency.
    maxQueue: config.queueMax,
    idleTimeout: 60_000,
  });

  return {
    async run(input) {
      try {
        const result = await piscina.run(input);
        metrics.workerTasks.inc({ outcome: "completed" });
        return result;
      } catch (error) {
        if (error instanceof Error && QUEUE_FULL_MESSAGES.has(error.message)) {
          metrics.workerTasks.inc({ outcome: "rejected" });
          throw unavailable("worker_queue_full", "The CPU work queue is full; retry shortly.");
        }
        metrics.workerTasks.inc({ outcome: "failed" });
        throw error;
      }
    },
    async close() {
      await piscina.close();
    },
  };
}
