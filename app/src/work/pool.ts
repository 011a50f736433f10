import { Piscina } from "piscina";
import type { Config } from "../config.ts";
import { badRequest, unavailable } from "../errors.ts";
import type { Metrics } from "../metrics.ts";
import type { BodyError } from "./input.ts";
import type { WorkInput, WorkResult } from "./task.ts";
import type { WorkTask } from "./worker.ts";

export type WorkerPool = {
  run(input: WorkInput): Promise<WorkResult>;
  /**
   * Parses, checks and runs a raw POST /api/work body on a worker thread (its bytes are moved
   * there, not copied); a bad body rejects with a 400 AppError.
   */
  runBody(body: Uint8Array): Promise<WorkResult>;
  /**
   * Reserves room for one request of up to `bytes` before its body is read, so that a full
   * pool refuses it without reading or parsing anything: every thread busy and the queue full
   * (as piscina would refuse it), or the bodies already held reach `inflightMaxBytes`. Answers
   * the release function (call it once the task has settled, or the request ended without one),
   * or undefined when there is no room.
   */
  admit(bytes: number): (() => void) | undefined;
  close(): Promise<void>;
};

// Under Node's type stripping the sources run as .ts; built, they run as .js beside it.
const workerFile = new URL(`./worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);

// piscina rejects with one of these when `maxQueue` is reached, the second when it is 0 and
// every thread is busy (it exports no error class).
const QUEUE_FULL_MESSAGES = new Set(["Task queue is at limit", "No task queue available and all Workers are busy"]);

export function createWorkerPool(
  config: Pick<Config["workers"], "threads" | "queueMax"> & { inflightMaxBytes?: number },
  metrics: Metrics,
): WorkerPool {
  const piscina = new Piscina<WorkTask, WorkResult | BodyError>({
    filename: workerFile.href,
    minThreads: config.threads,
    maxThreads: config.threads,
    // A bounded queue turns overload into a fast 503 instead of unbounded memory and latency.
    maxQueue: config.queueMax,
    idleTimeout: 60_000,
  });

  const inflightMaxBytes = config.inflightMaxBytes ?? Number.POSITIVE_INFINITY;
  let admitted = 0;
  let admittedBytes = 0;

  async function submit(task: WorkTask, transferList?: ArrayBuffer[]): Promise<WorkResult> {
    let result: WorkResult | BodyError;
    try {
      result = await piscina.run(task, { transferList });
    } catch (error) {
      if (error instanceof Error && QUEUE_FULL_MESSAGES.has(error.message)) {
        metrics.workerTasks.inc({ outcome: "rejected" });
        throw unavailable("worker_queue_full", "The CPU work queue is full; retry shortly.");
      }
      metrics.workerTasks.inc({ outcome: "failed" });
      throw error;
    }
    if ("error" in result) {
      metrics.workerTasks.inc({ outcome: "invalid" });
      throw badRequest(result.error.code, result.error.message);
    }
    metrics.workerTasks.inc({ outcome: "completed" });
    return result;
  }

  return {
    run: (input) => submit(input),
    runBody(body) {
      // Only a buffer of its own can be moved; a small body may sit in Node's shared pool.
      const own = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body);
      return submit({ body: own }, [own.buffer as ArrayBuffer]);
    },
    admit(bytes) {
      const full = admitted >= config.threads + config.queueMax;
      // One request always fits, whatever its size, so that a small budget cannot refuse all.
      const tooBig = admitted > 0 && admittedBytes + bytes > inflightMaxBytes;
      if (full || tooBig) {
        metrics.workerTasks.inc({ outcome: "rejected" });
        return undefined;
      }
      admitted++;
      admittedBytes += bytes;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        admitted--;
        admittedBytes -= bytes;
      };
    },
    async close() {
      await piscina.close();
    },
  };
}
