// A request whose client goes away before the response ends is still timed and logged, once,
// as 499 (what nginx logs for it): issue 15, item A. Clients abort mid-upload and mid-download,
// the two ways a slow request is abandoned.

import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import express from "express";
import { requestContext } from "../../src/http/context.ts";
import { createLifecycle } from "../../src/lifecycle.ts";
import { createMetrics } from "../../src/metrics.ts";
import { loggerInto, startApp } from "../support.ts";

type Line = { msg: string; route?: string; status?: number; aborted?: boolean; statusSent?: number | null };

/** Polls until `check` holds (bounded: a state, not a timing). */
async function eventually(what: string, check: () => boolean | Promise<boolean>) {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`never happened: ${what}`);
}

/** A POST whose body is half sent, then the client hangs up. Resolves once it has hung up. */
async function abandonUpload(url: string, body: string) {
  const req = request(url, {
    method: "POST",
    agent: false,
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
  });
  req.on("error", () => {});
  await new Promise<void>((resolve) => req.write(body.slice(0, body.length / 2), () => resolve()));
  return req;
}

/** Count of `http_request_duration_seconds` observations with these labels, from /metrics text. */
function countOf(metricsText: string, labels: string): number {
  const line = metricsText.split("\n").find((l) => l.startsWith(`http_request_duration_seconds_count{${labels}}`));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

describe("requests whose client went away", () => {
  const lines: Line[] = [];
  const metrics = createMetrics();
  let server: Server;
  let base: string;
  let stalled: (() => void) | undefined;

  before(async () => {
    const log = loggerInto(lines);
    const app = express();
    // Sampling at 0: every line below is there because an aborted request is always logged.
    const accessLog = { sampleRate: 0, slowMs: 60_000 };
    app.use(requestContext({ instance: "t", log, metrics, lifecycle: createLifecycle(), accessLog }));
    app.post("/upload", express.json(), (_req, res) => {
      res.json({ ok: true });
    });
    // A stalled export: the head and some rows go out, the rest never comes.
    app.get("/export", (_req, res) => {
      res.status(200).type("application/x-ndjson");
      res.write('{"id":1}\n');
      stalled = () => res.end();
    });
    app.get("/ok", (_req, res) => {
      res.json({ ok: true });
    });
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    stalled?.();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const observed = async (labels: string) => countOf(await metrics.registry.metrics(), labels);

  it("an upload abandoned half way is timed and logged once, as 499", async () => {
    const req = await abandonUpload(`${base}/upload`, JSON.stringify({ text: "x".repeat(4096) }));
    req.destroy();
    await eventually(
      "the aborted upload is recorded",
      async () => (await observed('method="POST",route="/upload",status_code="499"')) === 1,
    );
    const logged = lines.filter((l) => l.route === "/upload");
    assert.equal(logged.length, 1);
    assert.deepEqual(
      { msg: logged[0]?.msg, status: logged[0]?.status, aborted: logged[0]?.aborted },
      { msg: "request aborted", status: 499, aborted: true },
    );
    // Nothing else was recorded for it (no 400 from the body parser's own abort error).
    const text = await metrics.registry.metrics();
    assert.equal(
      text.split("\n").filter((l) => l.startsWith('http_request_duration_seconds_count{method="POST",route="/upload"'))
        .length,
      1,
    );
  });

  it("a download abandoned after its head is timed and logged once, as 499, naming the status it had sent", async () => {
    await new Promise<void>((resolve, reject) => {
      const req = request(`${base}/export`, { agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", () => {});
      req.on("close", resolve);
      req.on("timeout", reject);
      req.end();
    });
    await eventually(
      "the aborted download is recorded",
      async () => (await observed('method="GET",route="/export",status_code="499"')) === 1,
    );
    const logged = lines.filter((l) => l.route === "/export");
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.msg, "request aborted");
    assert.equal(logged[0]?.statusSent, 200);
    assert.equal(await observed('method="GET",route="/export",status_code="200"'), 0);
  });

  it("a request that completes is recorded once, with its own status, not as aborted", async () => {
    const response = await fetch(`${base}/ok`);
    assert.equal(response.status, 200);
    await response.text();
    await eventually(
      "the request is recorded",
      async () => (await observed('method="GET",route="/ok",status_code="200"')) === 1,
    );
    // The connection closes after the response (fetch's keep-alive socket is dropped here).
    server.closeAllConnections();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(await observed('method="GET",route="/ok",status_code="200"'), 1);
    assert.equal(await observed('method="GET",route="/ok",status_code="499"'), 0);
    // An ordinary success, sampled at 0: no line (aborted requests above had theirs).
    assert.deepEqual(
      lines.filter((l) => l.route === "/ok"),
      [],
    );
  });
});

describe("the real app: a POST /api/work abandoned mid-body", () => {
  let app: Awaited<ReturnType<typeof startApp>>;
  before(async () => {
    app = await startApp();
  });
  after(() => app.close());

  it("shows in /metrics as status_code 499 on its route", async () => {
    const req = await abandonUpload(
      `${app.url}/api/work`,
      JSON.stringify({ text: "slow work ".repeat(2000), iterations: 5 }),
    );
    req.destroy();
    await eventually("POST /api/work 499 appears in /metrics", async () => {
      const text = await (await fetch(`${app.url}/metrics`)).text();
      return countOf(text, 'method="POST",route="/api/work",status_code="499"') === 1;
    });
  });
});
