// Shared by the local topology tests: a stack per test file on free ports, torn down (and its
// files removed) in after() even when a test failed.

import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { portIsListening } from "../net.ts";
import { isRunning, type ProcessRecord, processGroupAlive } from "../process.ts";
import { startTopology, type Topology, type TopologyOptions } from "../topology.ts";

/** A stack name no other run uses. */
export function uniqueName(prefix: string): string {
  return `test-${prefix}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/** Start a stack on free ports with a unique name; progress lines go to stdout. */
export async function startTestStack(prefix: string, options: TopologyOptions = {}): Promise<Topology> {
  return startTopology({
    name: uniqueName(prefix),
    freePorts: true,
    log: (line) => console.log(`[${prefix}] ${line}`),
    ...options,
  });
}

/** Stop and remove the stack (files kept when KEEP_LOCAL_STATE=1, for debugging). */
export async function teardown(stack: Topology | undefined): Promise<void> {
  if (!stack) return;
  // nginx answers some failures itself (a 500 while buffering a body, a 502), and the error
  // log that says why goes with the stack: keep its serious lines in the test's output.
  const nginxErrors = join(stack.logDir, "nginx-error.log");
  if (existsSync(nginxErrors)) {
    const serious = readFileSync(nginxErrors, "utf8")
      .split("\n")
      .filter((line) => /\[(error|crit|alert|emerg)\]/.test(line));
    if (serious.length > 0) console.log(`nginx-error.log of ${stack.name}:\n${serious.slice(-20).join("\n")}`);
  }
  if (process.env.KEEP_LOCAL_STATE === "1") {
    await stack.stop();
    console.log(`kept ${stack.stateDir}`);
  } else {
    await stack.destroy();
  }
}

/** Every recorded process of the stack (for leak checks after stop). */
export function processRecords(stack: Topology): ProcessRecord[] {
  const s = stack.state;
  return [s.redis, s.pgPrimary, s.pgReplica, s.nginx, ...s.apps].flatMap((c) => (c.process ? [c.process] : []));
}

/** Ports still accepting connections, and processes (or process groups) still alive. */
export async function leftovers(ports: number[], records: ProcessRecord[]): Promise<string[]> {
  const found: string[] = [];
  for (const port of ports) if (await portIsListening(port, 500)) found.push(`listener on 127.0.0.1:${port}`);
  for (const r of records) {
    if (isRunning(r)) found.push(`process ${r.pid} (${r.command.split(" ")[0]})`);
    else if (processGroupAlive(r.pid)) found.push(`process group ${r.pid} (${r.command.split(" ")[0]})`);
  }
  return found;
}

export interface Reply {
  status: number;
  instance: string | undefined;
  body: string;
  error?: string;
  /** Sent again on a new connection after a reused keep-alive connection was closed under it. */
  retried?: boolean;
}

export type RequestOptions = {
  agent?: http.Agent;
  method?: string;
  body?: string;
  timeoutMs?: number;
  onSent?: () => void;
};

/**
 * One request on the given agent; never rejects (errors come back as status 0).
 *
 * Like a browser or nginx, it sends an idempotent request once more when the server closed a
 * reused keep-alive connection before answering (RFC 9112, 9.3.1): a server may close an idle
 * connection at any moment, and the client's request can cross that close on the wire. Any
 * other failure is returned as is, and so is a second failure.
 */
export async function request(url: string, options: RequestOptions = {}): Promise<Reply> {
  const first = await requestOnce(url, options);
  const idempotent = (options.method ?? "GET") === "GET";
  if (!(idempotent && first.reusedSocket && first.reply.status === 0 && first.reply.error !== "timeout")) {
    return first.reply;
  }
  return { ...(await requestOnce(url, options)).reply, retried: true };
}

function requestOnce(url: string, options: RequestOptions): Promise<{ reply: Reply; reusedSocket: boolean }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = {};
    if (options.body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(options.body));
    }
    const req = http.request(
      url,
      { method: options.method ?? "GET", agent: options.agent, headers, timeout: options.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            reply: {
              status: res.statusCode ?? 0,
              instance: res.headers["x-instance"] as string | undefined,
              body: Buffer.concat(chunks).toString("utf8"),
            },
            reusedSocket: req.reusedSocket,
          }),
        );
        res.on("error", (err) =>
          resolve({ reply: { status: 0, instance: undefined, body: "", error: err.message }, reusedSocket: false }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) =>
      resolve({
        reply: { status: 0, instance: undefined, body: "", error: err.message },
        reusedSocket: req.reusedSocket,
      }),
    );
    req.on("finish", () => options.onSent?.());
    req.end(options.body);
  });
}

export function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** When a request was sent, relative to the action: before it started, while it ran, after it ended. */
export type Phase = "before" | "during" | "after";

/**
 * Open-loop traffic around an action: requests are issued on a fixed schedule (`rate` per
 * second) whether or not earlier ones have finished. The action starts once `before` replies
 * have come back (traffic is flowing), and sending stops once `after` replies to requests sent
 * after the action ended have come back. These are counts, not durations; `maxMs` only bounds
 * the whole (it throws past it). Returns every reply with the phase it was sent in.
 */
export async function trafficAround<T>(options: {
  rate: number;
  before: number;
  after: number;
  maxMs: number;
  send: () => Promise<Reply>;
  action: () => Promise<T>;
}): Promise<{ replies: (Reply & { phase: Phase })[]; sendingMs: number; rate: number; actionResult: T }> {
  const maxRequests = Math.ceil((options.rate * options.maxMs) / 1000);
  const inFlight: Promise<Reply & { phase: Phase }>[] = [];
  const answered: Record<Phase, number> = { before: 0, during: 0, after: 0 };
  let phase: Phase = "before";
  let stopSending = false;
  const started = Date.now();
  const sendOne = () => {
    const sentIn = phase;
    return options.send().then((reply) => {
      answered[sentIn]++;
      return { ...reply, phase: sentIn };
    });
  };
  const sender = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = Date.now() - started;
      const due = Math.min(Math.floor((elapsed * options.rate) / 1000), maxRequests);
      while (inFlight.length < due) inFlight.push(sendOne());
      if (stopSending || elapsed > options.maxMs || inFlight.length >= maxRequests) {
        clearInterval(timer);
        resolve();
      }
    }, 2);
  });
  // A wait for a count of replies, checked as they arrive; maxMs is only the bound.
  const reach = async (what: string, done: () => boolean) => {
    while (!done()) {
      if (Date.now() - started > options.maxMs) throw new Error(`traffic: ${what} not reached in ${options.maxMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  let actionResult: T;
  try {
    await reach(`${options.before} replies before the action`, () => answered.before >= options.before);
    phase = "during";
    actionResult = await options.action();
    phase = "after";
    await reach(`${options.after} replies after the action`, () => answered.after >= options.after);
  } finally {
    stopSending = true;
    await sender;
  }
  const sendingMs = Date.now() - started;
  const replies = await Promise.all(inFlight);
  return { replies, sendingMs, rate: Math.round((replies.length * 1000) / sendingMs), actionResult };
}

/** One line: how many were sent, at what rate, how many failed and why, and who served them. */
export function summarizeReplies(replies: Reply[], sendingMs: number, rate: number) {
  const ok = replies.filter((r) => r.status === 200);
  const failed = replies.filter((r) => r.status !== 200);
  const perInstance = countBy(ok, (r) => r.instance ?? "(none)");
  const failures = countBy(failed, (r) => (r.status === 0 ? `error: ${r.error}` : `status ${r.status}`));
  const retried = replies.filter((r) => r.retried).length;
  const line = `sent ${replies.length} in ${sendingMs} ms (${rate} req/s), ok ${ok.length}, failed ${failed.length} ${JSON.stringify(failures)}, retried on a new connection ${retried}, per instance ${JSON.stringify(perInstance)}`;
  return { ok, failed, perInstance, failures, retried, line };
}
