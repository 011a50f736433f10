import { performance } from "node:perf_hooks";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

// One registry per process. Route labels are Express route templates (`/api/items/:id`),
// never raw paths, so the series count stays bounded whatever clients send.

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const httpRequestDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time from the first byte of a request to the last byte of its response.",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  let lastUtilization = performance.eventLoopUtilization();
  new Gauge({
    name: "nodejs_eventloop_utilization_ratio",
    help: "Share of time the event loop was busy since the previous scrape (0 to 1).",
    registers: [registry],
    collect() {
      const now = performance.eventLoopUtilization();
      this.set(performance.eventLoopUtilization(now, lastUtilization).utilization);
      lastUtilization = now;
    },
  });

  const dependencyErrors = new Counter({
    name: "nodescale_dependency_errors_total",
    help: "Failed calls to a backing service, by service and kind of failure.",
    labelNames: ["service", "kind"] as const,
    registers: [registry],
  });

  const workerTasks = new Counter({
    name: "nodescale_worker_tasks_total",
    help: "CPU tasks handed to the worker pool, by outcome.",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });

  const streamsCut = new Counter({
    name: "nodescale_streams_cut_total",
    help: "Exports and imports cut off because their client made no progress for STREAM_STALL_TIMEOUT_MS.",
    labelNames: ["stream"] as const,
    registers: [registry],
  });

  return { registry, httpRequestDuration, dependencyErrors, workerTasks, streamsCut };
}
