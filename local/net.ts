// Loopback networking helpers: free ports from the OS, port probes, small HTTP and Redis checks.

import http from "node:http";
import net from "node:net";

export const HOST = "127.0.0.1";

/**
 * Redis and PostgreSQL listen on `address` as well as on loopback, and PostgreSQL admits
 * clients from `clients` (a CIDR): what a local Kubernetes node's pods need to reach them
 * (k8s-tests/cluster-real). Never a wildcard: only an address of this host.
 */
export interface Exposure {
  address: string;
  clients: string;
}

/** An Exposure from its two settings, or undefined when neither is set; one line per mistake. */
export function parseExposure(address: string | undefined, clients: string | undefined): Exposure | undefined {
  if (!address && !clients) return undefined;
  const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
  if (!address || !ipv4.test(address) || address === "0.0.0.0" || address.startsWith("127."))
    throw new Error(`EXPOSE_ADDRESS=${address ?? ""}: expected one non-loopback IPv4 address of this host`);
  const [net, bits] = (clients ?? "").split("/");
  if (!net || !ipv4.test(net) || !/^\d+$/.test(bits ?? "") || Number(bits) > 32 || Number(bits) < 8)
    throw new Error(`EXPOSE_CLIENTS=${clients ?? ""}: expected an IPv4 CIDR of at most /8 (e.g. 198.18.0.0/16)`);
  return { address, clients: clients as string };
}

// Ports handed to a child later come leased from ports.ts, never from listen(0)-and-close.
export { freePort, freePortBlock, freePorts, releasePorts } from "./ports.ts";

/** True when nothing listens on the port and it can be bound. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** True when something accepts TCP connections on the port. */
export function portIsListening(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (value: boolean) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request on a fresh connection (no agent reuse), bounded by timeoutMs. */
export function httpRequest(
  url: string,
  options: { method?: string; body?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: options.method ?? "GET", headers: options.headers, agent: false, timeout: options.timeoutMs ?? 2000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout after ${options.timeoutMs ?? 2000} ms: ${url}`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Send PING to a Redis server; true on +PONG. */
export function redisPing(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    let data = "";
    const done = (value: boolean) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      data += d.toString();
      if (data.includes("\r\n")) done(data.startsWith("+PONG"));
    });
    socket.once("error", () => done(false));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Poll `check` every intervalMs until it returns true, `abort` returns a reason (e.g. the
 * process died), or timeoutMs passes. Throws with the reason.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; abort?: () => string | null },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    const reason = options.abort?.();
    if (reason) throw new Error(`${what}: ${reason}`);
    if (Date.now() >= deadline) throw new Error(`${what}: not ready after ${options.timeoutMs} ms`);
    await sleep(options.intervalMs ?? 50);
  }
}
