// The shutdown sequence, shown by the order of what a client sees, never by how long it took.
// The drain and the hard timeout are timers; the test holds them with mocked timers and moves
// them on when it has seen what must happen before. In-flight work is an upload the test
// keeps half-sent, so it is in flight for exactly as long as the test says.

import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { EventEmitter } from "node:events";
import http from "node:http";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { afterEach, describe, it, mock } from "node:test";
import { CLOSE_TIMEOUT_MS, createLifecycle, installShutdown, shutDown, shutdownBudgetMs } from "../../src/lifecycle.ts";
import type { Logger } from "../../src/logger.ts";
import { createLogger } from "../../src/logger.ts";
import { startApp } from "../support.ts";

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: string } | { error: string };

/** One request on its own connection; never rejects. */
function send(url: string, method = "GET", body?: string): Promise<Answer> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = body === undefined ? {} : { "content-type": "application/json" };
    const req = http.request(url, { method, agent: false, headers }, (res) => {
      let text = "";
      res.on("data", (d) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on("error", (e) => resolve({ error: e.message }));
    });
    req.on("error", (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    req.end(body);
  });
}

/** A POST /api/work whose body is half sent: in flight until finish() sends the rest. */
async function heldUpload(url: string, agent: http.Agent | false = false) {
  const body = JSON.stringify({ text: "held upload ".repeat(100), iterations: 5 });
  const half = Math.floor(body.length / 2);
  let resolveAnswer!: (a: Answer) => void;
  const answer = new Promise<Answer>((resolve) => {
    resolveAnswer = resolve;
  });
  const req = http.request(`${url}/api/work`, {
    method: "POST",
    agent,
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
  });
  req.on("response", (res) => {
    let text = "";
    res.on("data", (d) => {
      text += d;
    });
    res.on("end", () => resolveAnswer({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
  });
  req.on("error", (e) => resolveAnswer({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
  await new Promise<void>((resolve) => req.write(body.slice(0, half), () => resolve()));
  // Accepted in order: once a later connection is answered, this one has been accepted and read.
  const barrier = await send(`${url}/livez`);
  assert.equal("status" in barrier && barrier.status, 200);
  return {
    answer,
    finish: () => req.end(body.slice(half)),
  };
}

/**
 * Mocks setTimeout and setInterval, including the ones lifecycle.ts imported from
 * node:timers/promises (an ESM import of a builtin sees the mock only once synced).
 */
function holdTimers(): void {
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  syncBuiltinESMExports();
}

function releaseTimers(): void {
  mock.timers.reset();
  syncBuiltinESMExports();
}

/** Polls without timers (they are mocked): yields to I/O between checks. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`${what}: not reached`);
}

const refused = async (url: string) => {
  const a = await send(`${url}/livez`);
  return "error" in a && a.error === "ECONNREFUSED";
};

function recordingLog() {
  const lines: string[] = [];
  const log = {
    info: (_f: unknown, m?: string) => lines.push(`info ${m ?? _f}`),
    warn: (_f: unknown, m?: string) => lines.push(`warn ${m ?? _f}`),
    error: (_f: unknown, m?: string) => lines.push(`error ${m ?? _f}`),
  } as unknown as Logger;
  return { log, lines };
}

describe("lifecycle phases", () => {
  it("starts unready, is ready once marked, and never ready again once draining", () => {
    const lifecycle = createLifecycle();
    assert.deepEqual([lifecycle.phase(), lifecycle.isReady(), lifecycle.isDraining()], ["starting", false, false]);
    lifecycle.markReady();
    assert.deepEqual([lifecycle.phase(), lifecycle.isReady(), lifecycle.isDraining()], ["ready", true, false]);
    lifecycle.beginDrain();
    assert.deepEqual([lifecycle.phase(), lifecycle.isReady(), lifecycle.isDraining()], ["draining", false, true]);
    lifecycle.markReady();
    assert.equal(lifecycle.phase(), "draining", "a late markReady does not undo the drain");
    lifecycle.beginStop();
    assert.deepEqual([lifecycle.phase(), lifecycle.isReady(), lifecycle.isDraining()], ["stopping", false, true]);
  });
});

describe("shutdown sequence", () => {
  afterEach(releaseTimers);

  it("fails readiness at once, keeps serving through the drain, then stops accepting and finishes in-flight work", async () => {
    const app = await startApp();
    const { log, lines } = recordingLog();
    const closed: string[] = [];
    try {
      const held = await heldUpload(app.url);
      holdTimers();
      const stopped = shutDown(
        {
          server: app.server,
          lifecycle: app.lifecycle,
          drainMs: 1000,
          timeoutMs: 20_000,
          log,
          closers: [
            { name: "first", close: async () => closed.push("first") },
            { name: "second", close: async () => closed.push("second") },
          ],
        },
        "test",
      );

      // Draining: readiness fails, yet new connections are still served (the balancer may
      // still send some until it has seen the failed probe).
      const ready = await send(`${app.url}/readyz`);
      assert.ok("status" in ready);
      assert.equal(ready.status, 503);
      assert.equal((JSON.parse(ready.body) as { status: string }).status, "draining");
      assert.equal(ready.headers.connection, "close", "keep-alive clients are asked to leave");
      const live = await send(`${app.url}/livez`);
      assert.equal("status" in live && live.status, 200, "liveness is unaffected by draining");
      const work = await send(`${app.url}/api/work`, "POST", JSON.stringify({ text: "during the drain" }));
      assert.equal("status" in work && work.status, 200, "requests arriving during the drain are served");
      assert.equal(app.lifecycle.phase(), "draining");

      // The drain ends: no new connection, but the upload in flight is still being read.
      mock.timers.tick(1000);
      await until("new connections refused", () => refused(app.url));
      assert.equal(app.lifecycle.phase(), "stopping");
      assert.deepEqual(closed, [], "no client is closed while a request is in flight");

      held.finish();
      const answer = await held.answer;
      assert.ok("status" in answer, `the in-flight upload is answered (${JSON.stringify(answer)})`);
      assert.equal(answer.status, 200);
      assert.match(answer.body, /"digest":"[0-9a-f]{64}"/);
      assert.equal(await stopped, 0, "a clean stop exits 0");
      assert.deepEqual(closed, ["first", "second"], "clients closed in order, after the last request");
      assert.ok(lines.includes("info shutdown: readiness failed, draining"));
      assert.ok(lines.includes("info shutdown: no longer accepting connections"));
    } finally {
      releaseTimers();
      await app.close();
    }
  });

  it("closes idle keep-alive connections at the stop, so they do not hold it open", async () => {
    const app = await startApp();
    const { log } = recordingLog();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await new Promise<number>((resolve) =>
        http.get(`${app.url}/livez`, { agent }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        }),
      );
      assert.equal(first, 200);
      const socketClosed = new Promise<void>((resolve) => {
        const [socket] = Object.values(agent.freeSockets).flat();
        assert.ok(socket, "an idle keep-alive connection");
        socket.once("close", () => resolve());
      });
      assert.equal(
        await shutDown(
          { server: app.server, lifecycle: app.lifecycle, drainMs: 0, timeoutMs: 20_000, log, closers: [] },
          "test",
        ),
        0,
      );
      await socketClosed;
    } finally {
      agent.destroy();
      await app.close();
    }
  });

  it("closes a keep-alive connection that falls idle after the stop, once its answer is out", async () => {
    const app = await startApp();
    // Never closed for being idle: only the shutdown's sweep can close it.
    app.server.keepAliveTimeout = 0;
    const { log } = recordingLog();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Started before the drain, so its answer does not ask the client to leave.
      const held = await heldUpload(app.url, agent);
      holdTimers();
      let code: number | undefined;
      const stopped = shutDown(
        { server: app.server, lifecycle: app.lifecycle, drainMs: 0, timeoutMs: 20_000, log, closers: [] },
        "test",
      ).then((c) => {
        code = c;
      });
      mock.timers.tick(0);
      await until("new connections refused", () => refused(app.url));
      held.finish();
      const answer = await held.answer;
      assert.ok("status" in answer && answer.status === 200, JSON.stringify(answer));
      assert.notEqual(answer.headers.connection, "close", "the answer keeps the connection open");
      assert.equal(code, undefined, "the idle connection still holds the stop");
      mock.timers.tick(50);
      await until("the stop completes", async () => code !== undefined);
      await stopped;
      assert.equal(code, 0, "closed by the sweep, not cut off at the timeout");
    } finally {
      releaseTimers();
      agent.destroy();
      await app.close();
    }
  });

  it("cuts off work that outlives the timeout, and says so with exit code 1", async () => {
    const app = await startApp();
    const { log, lines } = recordingLog();
    const closed: string[] = [];
    try {
      const held = await heldUpload(app.url);
      holdTimers();
      const stopped = shutDown(
        {
          server: app.server,
          lifecycle: app.lifecycle,
          drainMs: 100,
          timeoutMs: 5000,
          log,
          closers: [
            {
              name: "broken",
              close: async () => {
                throw new Error("already gone");
              },
            },
            { name: "after it", close: async () => closed.push("after it") },
          ],
        },
        "test",
      );
      mock.timers.tick(100);
      await until("new connections refused", () => refused(app.url));
      mock.timers.tick(4999);
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(closed, [], "not yet: the timeout has not passed");
      mock.timers.tick(1);
      assert.equal(await stopped, 1);
      const answer = await held.answer;
      assert.ok("error" in answer, "the request still in flight was cut off");
      assert.deepEqual(closed, ["after it"], "a failing closer does not stop the others");
      assert.ok(lines.includes("warn shutdown: in-flight requests outlived the timeout; closing them"));
      assert.ok(lines.includes("warn shutdown: closing a client failed"));
    } finally {
      releaseTimers();
      await app.close();
    }
  });

  it("exits 1 when only a client outlives the close timeout, and names the clients left open", async () => {
    const app = await startApp();
    const warnings: { fields: Record<string, unknown>; message: string }[] = [];
    const log = {
      info: () => undefined,
      warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
      error: () => undefined,
    } as unknown as Logger;
    try {
      holdTimers();
      let result: number | undefined;
      const stopped = shutDown(
        {
          server: app.server,
          lifecycle: app.lifecycle,
          drainMs: 0,
          timeoutMs: 1000,
          closeTimeoutMs: 500,
          log,
          closers: [
            { name: "first", close: async () => undefined },
            { name: "hung", close: () => new Promise(() => {}) },
            { name: "after it", close: async () => undefined },
          ],
        },
        "test",
      ).then((code) => {
        result = code;
        return code;
      });
      mock.timers.tick(0);
      await until("new connections refused", () => refused(app.url));
      await until("the server has closed and the closers run", async () => {
        mock.timers.tick(0);
        return warnings.length === 0 && result === undefined && app.lifecycle.phase() === "stopping";
      });
      mock.timers.tick(500);
      assert.equal(await stopped, 1, "no request was cut off, yet a client left open means exit 1");
      const cut = warnings.find((w) => w.message === "shutdown: clients outlived the close timeout; exiting anyway");
      assert.ok(cut, JSON.stringify(warnings));
      assert.deepEqual(cut.fields.pending, ["hung", "after it"], "the clients still open are named");
      assert.equal(
        warnings.some((w) => w.message.includes("in-flight requests outlived")),
        false,
        "the server itself closed in time",
      );
    } finally {
      releaseTimers();
      await app.close();
    }
  });

  it("ends by shutdownBudgetMs even when a request and a client both hang: the worst case the chart's grace period covers", async () => {
    const app = await startApp();
    const { log, lines } = recordingLog();
    const options = { drainMs: 1000, timeoutMs: 2000, closeTimeoutMs: 3000 };
    let hungStarted = false;
    const closed: string[] = [];
    try {
      const held = await heldUpload(app.url);
      holdTimers();
      let result: number | undefined;
      const stopped = shutDown(
        {
          server: app.server,
          lifecycle: app.lifecycle,
          ...options,
          log,
          closers: [
            { name: "first", close: async () => closed.push("first") },
            {
              // A pg pool waiting for a client that is never released.
              name: "hung",
              close: () => {
                hungStarted = true;
                return new Promise(() => {});
              },
            },
            { name: "never reached", close: async () => closed.push("never reached") },
          ],
        },
        "test",
      ).then((code) => {
        result = code;
        return code;
      });
      const settle = async () => {
        for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      };
      mock.timers.tick(options.drainMs);
      await until("new connections refused", () => refused(app.url));
      mock.timers.tick(options.timeoutMs);
      await until("the hung closer has started", async () => hungStarted);
      mock.timers.tick(options.closeTimeoutMs - 1);
      await settle();
      assert.equal(result, undefined, "not over before the close timeout has passed");
      mock.timers.tick(1);
      assert.equal(await stopped, 1, "a cut-short stop exits 1");
      // Everything the sequence waited for adds up to the budget the chart is held to.
      assert.equal(shutdownBudgetMs(options), options.drainMs + options.timeoutMs + options.closeTimeoutMs);
      assert.equal(
        shutdownBudgetMs({ drainMs: 1, timeoutMs: 2 }),
        3 + CLOSE_TIMEOUT_MS,
        "the default close bound counts",
      );
      assert.deepEqual(closed, ["first"]);
      assert.ok(lines.includes("warn shutdown: clients outlived the close timeout; exiting anyway"));
      assert.ok("error" in (await held.answer), "the request still in flight was cut off");
    } finally {
      releaseTimers();
      await app.close();
    }
  });
});

describe("installShutdown", () => {
  const child = join(import.meta.dirname, "shutdown-child.ts");

  /** Runs the child, waits until it listens, delivers `trigger`, returns its output and exit code. */
  function run(trigger: (p: ReturnType<typeof fork>) => void): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve, reject) => {
      // A clean child: no flags inherited from the test process (a mutation run preloads hooks).
      const p = fork(child, [], { execArgv: [], stdio: ["ignore", "pipe", "pipe", "ipc"] });
      let output = "";
      const onData = (d: Buffer) => {
        const before = output;
        output += d;
        if (!before.includes("listening") && output.includes("listening")) trigger(p);
      };
      p.stdout?.on("data", onData);
      p.stderr?.on("data", (d: Buffer) => {
        output += d;
      });
      p.once("error", reject);
      p.once("exit", (code) => resolve({ code, output }));
    });
  }

  for (const [what, trigger] of [
    ["SIGTERM", (p: ReturnType<typeof fork>) => p.kill("SIGTERM")],
    ["SIGINT", (p: ReturnType<typeof fork>) => p.kill("SIGINT")],
    ["PM2's shutdown message", (p: ReturnType<typeof fork>) => p.send("shutdown")],
  ] as const) {
    it(`runs the sequence once on ${what} and exits 0`, async () => {
      const { code, output } = await run((p) => {
        trigger(p);
        // A second signal while shutting down changes nothing.
        p.kill("SIGTERM");
      });
      assert.equal(code, 0, output);
      assert.equal(output.match(/closed: pool/g)?.length, 1, `one shutdown sequence:\n${output}`);
    });
  }

  it("ignores other messages, and exits 1 when the sequence itself fails", async () => {
    const { code, output } = await run((p) => {
      p.send("hello");
      p.send("fail-next");
      p.kill("SIGTERM");
    });
    assert.equal(code, 1, output);
    assert.match(output, /shutdown: failed/);
  });
});

// The same wiring in process, with a stand-in for the process: what a mutation run can see.
describe("installShutdown with a stand-in process", () => {
  /** A stand-in for the process: signals and messages emitted by the test, exits recorded. */
  function host() {
    const events = new EventEmitter();
    const exits: number[] = [];
    let exited: (code: number) => void = () => {};
    const firstExit = new Promise<number>((resolve) => {
      exited = resolve;
    });
    return {
      on: (event: string, listener: (message?: unknown) => void) => events.on(event, listener),
      exit(code: number) {
        exits.push(code);
        exited(code);
      },
      emit: (event: string, message?: unknown) => events.emit(event, message),
      exits,
      firstExit,
    };
  }

  async function listening(): Promise<http.Server> {
    const server = http.createServer((_req, res) => res.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return server;
  }

  const silent = createLogger({ level: "silent", instance: "test" });

  it("SIGTERM runs the sequence once, whatever follows, and exits with its code", async () => {
    const h = host();
    const lifecycle = createLifecycle();
    lifecycle.markReady();
    const closed: string[] = [];
    const server = await listening();
    installShutdown(
      {
        server,
        lifecycle,
        drainMs: 0,
        timeoutMs: 5000,
        log: silent,
        closers: [{ name: "db", close: async () => closed.push("db") }],
      },
      h,
    );
    h.emit("SIGTERM");
    assert.equal(lifecycle.phase(), "draining", "readiness fails at once");
    h.emit("SIGTERM");
    h.emit("SIGINT");
    h.emit("message", "shutdown");
    assert.equal(await h.firstExit, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(h.exits, [0], "one exit, with the sequence's code");
    assert.deepEqual(closed, ["db"], "the clients closed once");
    assert.equal(server.listening, false);
  });

  for (const [what, event, message] of [
    ["SIGINT", "SIGINT", undefined],
    ["PM2's shutdown message", "message", "shutdown"],
  ] as const) {
    it(`${what} starts it too`, async () => {
      const h = host();
      const lifecycle = createLifecycle();
      lifecycle.markReady();
      installShutdown(
        { server: await listening(), lifecycle, drainMs: 0, timeoutMs: 5000, log: silent, closers: [] },
        h,
      );
      h.emit(event, message);
      assert.equal(lifecycle.phase(), "draining");
      assert.equal(await h.firstExit, 0);
    });
  }

  it("any other message leaves the process serving", async () => {
    const h = host();
    const lifecycle = createLifecycle();
    lifecycle.markReady();
    const server = await listening();
    installShutdown({ server, lifecycle, drainMs: 0, timeoutMs: 5000, log: silent, closers: [] }, h);
    h.emit("message", "reload");
    h.emit("message", { type: "shutdown" });
    assert.equal(lifecycle.phase(), "ready");
    assert.deepEqual(h.exits, []);
    server.close();
  });

  it("a sequence that fails is logged and exits 1", async () => {
    const h = host();
    const errors: string[] = [];
    const log = createLogger({ level: "silent", instance: "test" });
    log.error = ((obj: unknown, msg?: string) => {
      errors.push(String(msg ?? obj));
    }) as typeof log.error;
    const broken = {
      ...createLifecycle(),
      beginDrain: () => {
        throw new Error("cannot drain");
      },
    };
    const server = await listening();
    installShutdown({ server, lifecycle: broken, drainMs: 0, timeoutMs: 5000, log, closers: [] }, h);
    h.emit("SIGTERM");
    assert.equal(await h.firstExit, 1);
    assert.deepEqual(errors, ["shutdown: failed"]);
    server.close();
  });
});
