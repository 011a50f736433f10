// Shared by the integration tests of issue 3: one local stack per test file (real Redis,
// PostgreSQL primary + streaming replica, app instances, nginx) on free ports under a unique
// name, an HTTP client that keeps its own cookie jar, and an RSS sampler for one process.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { Readable } from "node:stream";
import { startTestStack } from "../../../local/test/helpers.ts";
import type { Topology, TopologyOptions } from "../../../local/topology.ts";

export type { Instance, Topology } from "../../../local/topology.ts";

/**
 * Starts a stack on free ports (local/test/helpers.ts). The app env defaults suit a 2-core
 * machine (one worker thread, warn-level logs so request logging does not compete with the
 * test for the CPU); `appEnv` overrides them.
 */
export async function startStack(prefix: string, options: TopologyOptions = {}): Promise<Topology> {
  const started = Date.now();
  const stack = await startTestStack(prefix, {
    // nginx stops first at teardown, so the instances need no drain time.
    shutdownDrainMs: 0,
    ...options,
    appEnv: { WORKER_THREADS: "1", LOG_LEVEL: "warn", ...options.appEnv },
  });
  console.log(`[${prefix}] stack up in ${Date.now() - started} ms: ${stack.lbUrl}`);
  return stack;
}

/** Stops the stack and removes its files (kept, stopped, with KEEP_LOCAL_STATE=1). */
export { teardown as stopStack } from "../../../local/test/helpers.ts";

export type Reply = {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  ms: number;
  /** The `x-instance` header. */
  instance: string | undefined;
  /** The `x-db-route` header. */
  dbRoute: string | undefined;
  /** Set when the request failed below HTTP (refused, reset, timed out); status is then 0. */
  error?: string;
};

export type RequestOptions = {
  method?: string;
  /** Sent as JSON with content-type application/json (unless headers say otherwise). */
  json?: unknown;
  /** Sent as is: bytes, text, or a stream (chunked). */
  body?: string | Buffer | Readable;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Read the response as a stream instead of buffering it (the reply's body is empty). */
  onData?: (chunk: Buffer) => void;
};

/** Parses a response body as JSON, or undefined when it is not JSON. */
export function jsonOf(reply: Reply): unknown {
  try {
    return JSON.parse(reply.text);
  } catch {
    return undefined;
  }
}

/** True when the body is `{ "error": { "code": string, "message": string } }` sent as JSON. */
export function isErrorBody(reply: Reply): boolean {
  if (!String(reply.headers["content-type"] ?? "").startsWith("application/json")) return false;
  const body = jsonOf(reply) as { error?: { code?: unknown; message?: unknown } } | undefined;
  return typeof body?.error?.code === "string" && typeof body.error.message === "string";
}

/**
 * An HTTP/1.1 client for one base URL with its own cookie jar (fetch has none) and a
 * keep-alive agent. Never rejects: transport failures come back as status 0 with `error`.
 */
export class Client {
  readonly baseUrl: string;
  readonly cookies = new Map<string, string>();
  readonly agent: http.Agent;

  constructor(baseUrl: string, options: { maxSockets?: number; keepAlive?: boolean } = {}) {
    this.baseUrl = baseUrl;
    this.agent = new http.Agent({ keepAlive: options.keepAlive ?? true, maxSockets: options.maxSockets ?? 16 });
  }

  /** Same cookies, another base URL (to talk to one instance directly as the same user). */
  withBase(baseUrl: string): Client {
    const other = new Client(baseUrl);
    for (const [k, v] of this.cookies) other.cookies.set(k, v);
    return other;
  }

  close(): void {
    this.agent.destroy();
  }

  get(path: string, options: RequestOptions = {}): Promise<Reply> {
    return this.request(path, { ...options, method: "GET" });
  }

  post(path: string, json: unknown, options: RequestOptions = {}): Promise<Reply> {
    return this.request(path, { ...options, method: "POST", json });
  }

  request(path: string, options: RequestOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = {};
    let body: string | Buffer | Readable | undefined = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["content-type"] = "application/json";
    }
    if (typeof body === "string" || Buffer.isBuffer(body)) headers["content-length"] = String(Buffer.byteLength(body));
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    Object.assign(headers, options.headers);
    const started = performance.now();
    return new Promise((resolve) => {
      let settled = false;
      const finish = (reply: Omit<Reply, "ms" | "instance" | "dbRoute" | "text">) => {
        if (settled) return;
        settled = true;
        resolve({
          ...reply,
          text: reply.body.toString("utf8"),
          ms: performance.now() - started,
          instance: reply.headers["x-instance"] as string | undefined,
          dbRoute: reply.headers["x-db-route"] as string | undefined,
        });
      };
      const fail = (error: Error) => finish({ status: 0, headers: {}, body: Buffer.alloc(0), error: error.message });
      const req = http.request(
        new URL(path, this.baseUrl),
        { method: options.method ?? "GET", headers, agent: this.agent, timeout: options.timeoutMs ?? 10_000 },
        (res) => {
          this.#keepCookies(res.headers["set-cookie"]);
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => {
            if (options.onData) options.onData(chunk);
            else chunks.push(chunk);
          });
          res.on("end", () =>
            finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on("error", fail);
          res.on("aborted", () => fail(new Error("response aborted")));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`timeout after ${options.timeoutMs ?? 10_000} ms`)));
      req.on("error", fail);
      if (body !== undefined && typeof body !== "string" && !Buffer.isBuffer(body)) {
        body.on("error", (error) => req.destroy(error));
        body.pipe(req);
      } else {
        req.end(body);
      }
    });
  }

  #keepCookies(setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const [pair = "", ...attributes] = line.split(";");
      const eq = pair.indexOf("=");
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a)) || value === "";
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** Registers a fresh user and logs in; the client keeps the session cookie. */
export async function registerAndLogin(
  client: Client,
  prefix = "user",
  headers: Record<string, string> = {},
): Promise<{ id: number; username: string; password: string }> {
  const username = `${prefix}_${randomBytes(5).toString("hex")}`;
  const password = `pw-${randomBytes(8).toString("hex")}`;
  const registered = await client.post("/api/auth/register", { username, password }, { headers });
  if (registered.status !== 201) throw new Error(`register ${username}: ${registered.status} ${registered.text}`);
  const login = await client.post("/api/auth/login", { username, password }, { headers });
  if (login.status !== 200) throw new Error(`login ${username}: ${login.status} ${login.text}`);
  if (!client.cookies.has("sid")) throw new Error(`login ${username}: no sid cookie`);
  const { id } = JSON.parse(login.text) as { id: number };
  return { id, username, password };
}

/** Resident set size of a process, in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Samples a process's RSS every intervalMs from now until stop(); reports the peak over the start. */
export function sampleRss(pid: number, intervalMs = 25) {
  const baseline = rssBytes(pid);
  let peak = baseline;
  let samples = 1;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
      samples++;
    } catch {
      // The process is gone; the test notices through its requests.
    }
  }, intervalMs);
  return {
    baseline,
    stop() {
      clearInterval(timer);
      try {
        peak = Math.max(peak, rssBytes(pid));
        samples++;
      } catch {
        // as above
      }
      return { baseline, peak, growth: peak - baseline, samples };
    },
  };
}

export const MiB = 1024 * 1024;
export const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

export { countBy } from "../../../local/test/helpers.ts";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; throws naming `what` after timeoutMs. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not true after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Runs `worker` over `items` with at most `concurrency` at a time; results in input order. */
export async function mapLimit<T, R>(items: T[], concurrency: number, worker: (item: T, i: number) => Promise<R>) {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await worker(items[i] as T, i);
      }
    }),
  );
  return results;
}
