import type { Server } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "./logger.ts";

// The process moves starting -> ready -> draining -> stopping, once. Readiness is true only
// in `ready`; liveness never depends on it.

export type Phase = "starting" | "ready" | "draining" | "stopping";

export type Lifecycle = {
  phase(): Phase;
  isReady(): boolean;
  isDraining(): boolean;
  markReady(): void;
  beginDrain(): void;
  beginStop(): void;
};

export function createLifecycle(): Lifecycle {
  let current: Phase = "starting";
  return {
    phase: () => current,
    isReady: () => current === "ready",
    isDraining: () => current === "draining" || current === "stopping",
    markReady() {
      if (current === "starting") current = "ready";
    },
    beginDrain() {
      current = "draining";
    },
    beginStop() {
      current = "stopping";
    },
  };
}

export type ShutdownOptions = {
  server: Server;
  lifecycle: Lifecycle;
  drainMs: number;
  timeoutMs: number;
  /** The most all closers get together; CLOSE_TIMEOUT_MS unless a test says otherwise. */
  closeTimeoutMs?: number;
  log: Logger;
  /** Closed in order once no request is in flight (worker pool, databases, Redis). */
  closers: { name: string; close(): Promise<unknown> }[];
};

/**
 * How long the clients get to close, all together, once the server has stopped. Unbounded,
 * one that waits (a pg pool for a checked-out client whose query runs on, a worker for its
 * task) would outlive the grace period and the kubelet's SIGKILL would come first.
 */
export const CLOSE_TIMEOUT_MS = 5000;

/**
 * The longest the SIGTERM sequence can run: the drain, then in-flight requests up to the
 * timeout, then the clients up to their bound. The chart's grace period is preStop + this +
 * a margin (charts/nodescale/templates/_helpers.tpl), and charts/tests/assert.ts holds every
 * rendered Deployment to it through this very function.
 */
export function shutdownBudgetMs(options: { drainMs: number; timeoutMs: number; closeTimeoutMs?: number }): number {
  return options.drainMs + options.timeoutMs + (options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS);
}

/**
 * The SIGTERM sequence of DESIGN.md: readiness fails at once; the server keeps serving for
 * `drainMs` so the load balancer stops routing here; then it stops accepting, lets in-flight
 * requests finish (bounded by `timeoutMs`), closes its clients (bounded by `closeTimeoutMs`)
 * and exits: never later than shutdownBudgetMs after the signal.
 */
export async function shutDown(options: ShutdownOptions, reason: string): Promise<number> {
  const { server, lifecycle, log } = options;
  lifecycle.beginDrain();
  log.info({ reason, drainMs: options.drainMs }, "shutdown: readiness failed, draining");
  await delay(options.drainMs);

  lifecycle.beginStop();
  log.info("shutdown: no longer accepting connections");
  const closed = new Promise<"closed">((resolve) => server.close(() => resolve("closed")));
  // A keep-alive connection left idle would hold close() open until its timeout.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  server.closeIdleConnections();
  const deadline = new AbortController();
  const outcome = await Promise.race([
    closed,
    delay(options.timeoutMs, "timed-out" as const, { signal: deadline.signal }).catch(() => "closed" as const),
  ]);
  deadline.abort();
  clearInterval(sweep);
  if (outcome === "timed-out") {
    log.warn({ timeoutMs: options.timeoutMs }, "shutdown: in-flight requests outlived the timeout; closing them");
    server.closeAllConnections();
  }

  const closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
  const pending = new Set(options.closers.map((closer) => closer.name));
  const closing = (async () => {
    for (const closer of options.closers) {
      try {
        await closer.close();
      } catch (error) {
        log.warn({ err: error, client: closer.name }, "shutdown: closing a client failed");
      } finally {
        pending.delete(closer.name);
      }
    }
    return "closed" as const;
  })();
  const closeDeadline = new AbortController();
  const closeOutcome = await Promise.race([
    closing,
    delay(closeTimeoutMs, "timed-out" as const, { signal: closeDeadline.signal }).catch(() => "closed" as const),
  ]);
  closeDeadline.abort();
  if (closeOutcome === "timed-out") {
    // Exiting closes whatever is left; waiting longer would only meet the SIGKILL.
    log.warn({ closeTimeoutMs, pending: [...pending] }, "shutdown: clients outlived the close timeout; exiting anyway");
  }
  const code = outcome === "closed" && closeOutcome === "closed" ? 0 : 1;
  log.info({ exitCode: code }, "shutdown: complete");
  return code;
}

/** Where the signals come from and how to exit: the process, or a stand-in in a test. */
export type ShutdownHost = {
  on(event: "SIGTERM" | "SIGINT" | "message", listener: (message?: unknown) => void): unknown;
  exit(code: number): void;
};

export function installShutdown(options: ShutdownOptions, host: ShutdownHost = process): void {
  let started = false;
  const exit = (code: number) => host.exit(code);
  const onSignal = (signal: string) => {
    if (started) return;
    started = true;
    shutDown(options, signal).then(exit, (error: unknown) => {
      options.log.error({ err: error }, "shutdown: failed");
      exit(1);
    });
  };
  host.on("SIGTERM", () => onSignal("SIGTERM"));
  host.on("SIGINT", () => onSignal("SIGINT"));
  // PM2 sends this message instead of a signal where signals are unavailable
  // (`shutdown_with_message`).
  host.on("message", (message) => {
    if (message === "shutdown") onSignal("shutdown message");
  });
}
