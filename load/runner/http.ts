// The runner's HTTP client: undici pools with keep-alive to one origin each, bounded
// timeouts, and every response reduced to an Outcome (status, latency, x-instance,
// x-db-route). Loopback only: anything else is refused, so a typo cannot load someone's server.

import { Pool } from "undici";
import { ACCEPT_ENCODING, type RequestSpec } from "../shapes.ts";
import type { Outcome } from "./stats.ts";

export type Reply = Outcome & { body: string; setCookie?: string | string[] };

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export function assertLoopback(base: string): URL {
  const url = new URL(base);
  if (!LOOPBACK.has(url.hostname))
    throw new Error(`the local runner only targets loopback, not ${url.hostname} (use k6 for remote targets)`);
  return url;
}

export class Client {
  readonly #pool: Pool;
  readonly origin: string;

  constructor(base: string, options: { connections: number; timeoutMs?: number }) {
    this.origin = assertLoopback(base).origin;
    const timeout = options.timeoutMs ?? 10_000;
    this.#pool = new Pool(this.origin, {
      connections: options.connections,
      pipelining: 1,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connectTimeout: timeout,
      keepAliveTimeout: 30_000,
    });
  }

  /**
   * Sends one request; never rejects (a transport error is an Outcome with status 0).
   * `scheduledAt` (performance.now() ms, open loop): latency is timed from it, not from the
   * send, and the difference is reported as the send lag.
   */
  async send(spec: RequestSpec, cookie?: string, keepBody = false, scheduledAt?: number): Promise<Reply> {
    const headers: Record<string, string> = { "accept-encoding": spec.acceptEncoding ?? ACCEPT_ENCODING };
    if (spec.contentType) headers["content-type"] = spec.contentType;
    if (cookie) headers.cookie = cookie;
    const sent = performance.now();
    const started = scheduledAt ?? sent;
    const sendLagMs = scheduledAt === undefined ? undefined : Math.max(0, sent - scheduledAt);
    try {
      const res = await this.#pool.request({
        path: spec.path,
        method: spec.method,
        headers,
        body: spec.body,
      });
      let body = "";
      if (keepBody || res.statusCode >= 400) body = await res.body.text();
      else await res.body.dump();
      const h = res.headers;
      return {
        route: spec.route,
        ok: spec.ok.includes(res.statusCode),
        status: res.statusCode,
        latencyMs: performance.now() - started,
        instance: typeof h["x-instance"] === "string" ? h["x-instance"] : undefined,
        dbRoute: typeof h["x-db-route"] === "string" ? h["x-db-route"] : undefined,
        error: res.statusCode >= 400 ? body.slice(0, 200) : undefined,
        sendLagMs,
        body,
        setCookie: h["set-cookie"],
      };
    } catch (err) {
      return {
        route: spec.route,
        ok: false,
        status: 0,
        latencyMs: performance.now() - started,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        sendLagMs,
        body: "",
      };
    }
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}
