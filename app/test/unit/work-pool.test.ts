// The worker pool's bounded queue: work past the queue's room is refused at once with a 503
// and retry-after (WORKER_QUEUE_MAX), never queued without bound or answered 500.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AppError } from "../../src/errors.ts";
import { createMetrics } from "../../src/metrics.ts";
import { createWorkerPool } from "../../src/work/pool.ts";
import { startApp } from "../support.ts";

const heavy = { text: "x".repeat(200_000), iterations: 300 };

describe("worker queue", () => {
  it("refuses tasks past one running and queueMax waiting, with 503 worker_queue_full", async () => {
    const metrics = createMetrics();
    const pool = createWorkerPool({ threads: 1, queueMax: 1 }, metrics);
    try {
      // Handed over in one go: piscina decides each task's fate as it is submitted.
      const outcomes = await Promise.allSettled([1, 2, 3, 4, 5].map(() => pool.run(heavy)));
      const refused = outcomes.filter((o) => o.status === "rejected");
      const done = outcomes.filter((o) => o.status === "fulfilled");
      assert.ok(done.length >= 1 && done.length <= 2, `one running and at most one queued (${done.length} done)`);
      assert.equal(refused.length, outcomes.length - done.length);
      for (const o of refused) {
        const error = (o as PromiseRejectedResult).reason as AppError;
        assert.ok(error instanceof AppError, String(error));
        assert.deepEqual([error.status, error.code, error.headers], [503, "worker_queue_full", { "retry-after": "1" }]);
      }
      const text = await metrics.registry.getSingleMetricAsString("nodescale_worker_tasks_total");
      assert.match(text, new RegExp(`nodescale_worker_tasks_total\\{outcome="rejected"\\} ${refused.length}(\\n|$)`));
      assert.match(text, new RegExp(`nodescale_worker_tasks_total\\{outcome="completed"\\} ${done.length}(\\n|$)`));
    } finally {
      await pool.close();
    }
  });

  it("counts a task that throws as failed and passes its error on", async () => {
    const metrics = createMetrics();
    const pool = createWorkerPool({ threads: 1, queueMax: 4 }, metrics);
    try {
      await assert.rejects(pool.run({ text: undefined as unknown as string, iterations: 1 }));
      assert.match(
        await metrics.registry.getSingleMetricAsString("nodescale_worker_tasks_total"),
        /outcome="failed"\} 1(\n|$)/,
      );
    } finally {
      await pool.close();
    }
  });

  it("answers POST /api/work past the queue with 503 JSON and retry-after", async () => {
    const app = await startApp({ WORKER_THREADS: "1", WORKER_QUEUE_MAX: "0" });
    try {
      const post = () =>
        fetch(`${app.url}/api/work`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(heavy),
        });
      const replies = await Promise.all([1, 2, 3, 4, 5, 6].map(post));
      const bodies = await Promise.all(replies.map((r) => r.json() as Promise<{ error?: { code: string } }>));
      const statuses = replies.map((r) => r.status).sort();
      assert.ok(
        statuses.every((s) => s === 200 || s === 503),
        `each answered 200 or 503 (${statuses})`,
      );
      assert.ok(statuses.includes(503), `six heavy tasks on one thread with no queue: some refused (${statuses})`);
      for (const [i, reply] of replies.entries()) {
        if (reply.status !== 503) continue;
        assert.equal(reply.headers.get("retry-after"), "1");
        assert.deepEqual(bodies[i], {
          error: { code: "worker_queue_full", message: "The CPU work queue is full; retry shortly." },
        });
      }
    } finally {
      await app.close();
    }
  });
});
