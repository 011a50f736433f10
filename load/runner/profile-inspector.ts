// CPU profiles of one phase of a running app process, for `make bench PROFILE=1`.
//
// Why an inspector session and not --cpu-prof: the bench measures every endpoint against the
// same long-lived app-1, and --cpu-prof writes one profile per process, at exit, start-up
// included. The inspector's Profiler domain starts and stops around each endpoint's phase, so
// each profile holds that endpoint's requests and nothing else. node:inspector's Session only
// attaches to its own process, so the bench speaks the same protocol to app-1 over the
// inspector's WebSocket: app-1 is started with --inspect-port (the inspector stays off) and
// SIGUSR1 turns it on, on 127.0.0.1, for app-1 alone (Node's own handler; the app sets none).

import type { CpuProfile } from "./profile.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type Inspector = {
  send: (method: string, params?: Record<string, unknown>) => Promise<Record<string, unknown>>;
  close: () => void;
};

/** Opens the inspector of process `pid` (started with --inspect-port=127.0.0.1:port). */
export async function openInspector(pid: number, port: number, timeoutMs = 10_000): Promise<Inspector> {
  process.kill(pid, "SIGUSR1");
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (!url) {
    try {
      const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
        webSocketDebuggerUrl?: string;
      }[];
      url = list[0]?.webSocketDebuggerUrl;
    } catch {
      // not listening yet
    }
    if (!url) {
      if (Date.now() > deadline) throw new Error(`no inspector on 127.0.0.1:${port} for pid ${pid}`);
      await sleep(100);
    }
  }
  const ws = new WebSocket(url);
  await new Promise<void>((ok, fail) => {
    ws.addEventListener("open", () => ok(), { once: true });
    ws.addEventListener("error", () => fail(new Error(`inspector WebSocket ${url} failed`)), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, { ok: (r: Record<string, unknown>) => void; fail: (e: Error) => void }>();
  ws.addEventListener("message", (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: Record<string, unknown>; error?: unknown };
    const p = msg.id === undefined ? undefined : pending.get(msg.id);
    if (!p || msg.id === undefined) return; // events: none asked for
    pending.delete(msg.id);
    if (msg.error) p.fail(new Error(`inspector: ${JSON.stringify(msg.error)}`));
    else p.ok(msg.result ?? {});
  });
  ws.addEventListener("close", () => {
    for (const p of pending.values()) p.fail(new Error("inspector closed"));
    pending.clear();
  });
  return {
    send: (method, params) =>
      new Promise((ok, fail) => {
        const id = nextId++;
        pending.set(id, { ok, fail });
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/**
 * Profiles the target while `run` runs: Profiler.start before, Profiler.stop after. The
 * sampling interval (µs) trades resolution for the profiler's own cost in the target.
 */
export async function profileWhile<T>(
  inspector: Inspector,
  run: () => Promise<T>,
  samplingIntervalUs = 500,
): Promise<{ profile: CpuProfile; result: T }> {
  await inspector.send("Profiler.enable");
  await inspector.send("Profiler.setSamplingInterval", { interval: samplingIntervalUs });
  await inspector.send("Profiler.start");
  let result: T;
  try {
    result = await run();
  } catch (err) {
    await inspector.send("Profiler.stop").catch(() => undefined);
    throw err;
  }
  const stopped = await inspector.send("Profiler.stop");
  await inspector.send("Profiler.disable");
  if (!stopped.profile) throw new Error("Profiler.stop returned no profile");
  return { profile: stopped.profile as CpuProfile, result };
}
