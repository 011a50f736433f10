// The e2e suite's HTTP client: node:http on a keep-alive agent (the way a browser or k6
// talks to the ingress), a cookie per session, and open-loop traffic that counts every
// request that did not get an answer from the app. Never rejects: a failed request comes
// back as status 0 with the error.

import http from "node:http";

export interface Reply {
  status: number;
  instance: string | undefined;
  dbRoute: string | undefined;
  setCookie: string[];
  body: string;
  error?: string;
  /** ms since the start of the traffic it belongs to (0 outside traffic) */
  at: number;
  ms: number;
}

export class Client {
  readonly baseUrl: string;
  readonly agent: http.Agent;
  cookie = "";

  /**
   * keepAlive false opens a connection per request: what many clients look like to a front
   * door that balances connections rather than requests (a Service through kube-proxy).
   */
  constructor(baseUrl: string, maxSockets = 64, keepAlive = true) {
    this.baseUrl = baseUrl;
    this.agent = new http.Agent({ keepAlive, maxSockets });
  }

  request(method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<Reply> {
    const started = Date.now();
    return new Promise((resolve) => {
      const headers: Record<string, string> = {};
      const payload = body === undefined ? undefined : JSON.stringify(body);
      if (payload !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = String(Buffer.byteLength(payload));
      }
      if (this.cookie) headers.cookie = this.cookie;
      const fail = (err: Error) =>
        resolve({
          status: 0,
          instance: undefined,
          dbRoute: undefined,
          setCookie: [],
          body: "",
          error: err.message,
          at: 0,
          ms: Date.now() - started,
        });
      const req = http.request(
        new URL(path, this.baseUrl),
        { method, agent: this.agent, headers, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", fail);
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              instance: header(res.headers["x-instance"]),
              dbRoute: header(res.headers["x-db-route"]),
              setCookie: res.headers["set-cookie"] ?? [],
              body: Buffer.concat(chunks).toString("utf8"),
              at: 0,
              ms: Date.now() - started,
            }),
          );
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", fail);
      req.end(payload);
    });
  }

  /** Registers a fresh user and logs in; the session cookie is kept for later requests. */
  async login(prefix: string): Promise<string> {
    const username = `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const password = `pw-${crypto.randomUUID()}`;
    const reg = await this.request("POST", "/api/auth/register", { username, password });
    if (reg.status !== 201 && reg.status !== 200)
      throw new Error(`register ${username}: HTTP ${reg.status} ${reg.body || reg.error}`);
    const res = await this.request("POST", "/api/auth/login", { username, password });
    if (res.status !== 200 && res.status !== 204)
      throw new Error(`login ${username}: HTTP ${res.status} ${res.body || res.error}`);
    this.cookie = res.setCookie.map((c) => c.split(";")[0]).join("; ");
    if (!this.cookie.includes("sid="))
      throw new Error(`login ${username}: no sid cookie (${res.setCookie.join(" | ")})`);
    return username;
  }

  close(): void {
    this.agent.destroy();
  }
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Open-loop traffic: `rate` requests a second on a fixed schedule, whether or not earlier ones
 * have finished, until stop() is called or `maxMs` passed (bounded in count and time).
 */
export function steadyTraffic(options: { rate: number; maxMs: number; send: () => Promise<Reply> }) {
  const started = Date.now();
  const maxRequests = Math.ceil((options.rate * options.maxMs) / 1000);
  const inFlight: Promise<Reply>[] = [];
  let stopped = false;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const timer = setInterval(() => {
    const elapsed = Date.now() - started;
    const due = Math.min(Math.floor((elapsed * options.rate) / 1000), maxRequests);
    while (!stopped && inFlight.length < due) {
      const at = Date.now() - started;
      inFlight.push(options.send().then((r) => ({ ...r, at })));
    }
    if (stopped || elapsed > options.maxMs || inFlight.length >= maxRequests) {
      clearInterval(timer);
      resolveDone();
    }
  }, 5);
  return {
    elapsedMs: () => Date.now() - started,
    async stop(): Promise<{ replies: Reply[]; sendingMs: number }> {
      stopped = true;
      await done;
      const sendingMs = Date.now() - started;
      return { replies: await Promise.all(inFlight), sendingMs };
    },
  };
}

/** One line: how many were sent, at what rate, how many failed and why, who served them. */
export function summarize(replies: Reply[], sendingMs: number) {
  const ok = replies.filter((r) => r.status >= 200 && r.status < 300);
  const failed = replies.filter((r) => !(r.status >= 200 && r.status < 300));
  const perInstance = countBy(ok, (r) => r.instance ?? "(none)");
  const failures = countBy(failed, (r) => (r.status === 0 ? `error: ${r.error}` : `HTTP ${r.status}`));
  const rate = Math.round((replies.length * 1000) / Math.max(1, sendingMs));
  const line = `sent ${replies.length} in ${sendingMs} ms (${rate}/s), ok ${ok.length}, failed ${failed.length} ${JSON.stringify(failures)}, served by ${Object.keys(perInstance).length} pods ${JSON.stringify(perInstance)}`;
  return { ok, failed, perInstance, failures, line };
}
