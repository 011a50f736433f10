// Which requests get an access log line (issue 14): 5xx, aborted and slow ones always, the
// rest as a sample; every request is timed in the histogram whatever the sample says.

import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import express from "express";
import { type AccessLogPolicy, requestContext, worthALine } from "../../src/http/context.ts";
import { createLifecycle } from "../../src/lifecycle.ts";
import { createMetrics } from "../../src/metrics.ts";
import { loggerInto } from "../support.ts";

describe("worthALine", () => {
  const never = () => 0.999_999;
  const always = () => 0;
  const policy: AccessLogPolicy = { sampleRate: 0.01, slowMs: 1000 };

  it("logs 5xx and 499 whatever the sample", () => {
    for (const status of [500, 502, 503, 599, 499])
      assert.equal(worthALine(policy, status, 1, never), true, `${status}`);
  });

  it("leaves ordinary 2xx, 3xx and 4xx to the sample", () => {
    for (const status of [200, 201, 204, 304, 400, 401, 404, 429]) {
      assert.equal(worthALine(policy, status, 999, never), false, `${status} unsampled`);
      assert.equal(worthALine(policy, status, 999, always), true, `${status} sampled`);
    }
  });

  it("logs a request at or past the slow threshold", () => {
    assert.equal(worthALine(policy, 200, 1000, never), true);
    assert.equal(worthALine(policy, 200, 999, never), false);
  });

  it("samples at the rate asked: below it logs, at or above it does not", () => {
    assert.equal(
      worthALine(policy, 200, 1, () => 0.009_99),
      true,
    );
    assert.equal(
      worthALine(policy, 200, 1, () => 0.01),
      false,
    );
    // 1 logs everything (Math.random() < 1 always); 0 nothing.
    assert.equal(worthALine({ sampleRate: 1, slowMs: 1000 }, 200, 1, never), true);
    assert.equal(worthALine({ sampleRate: 0, slowMs: 1000 }, 200, 1, always), false);
  });
});

describe("the access log of an app", () => {
  type Line = { msg: string; route?: string; status?: number; reqId?: string };
  let server: Server;
  let base: string;
  const lines: Line[] = [];
  const metrics = createMetrics();

  before(async () => {
    const log = loggerInto(lines);
    const app = express();
    const accessLog = { sampleRate: 0, slowMs: 60_000 };
    app.use(requestContext({ instance: "t", log, metrics, lifecycle: createLifecycle(), accessLog }));
    app.get("/ok", (_req, res) => {
      res.json({ ok: true });
    });
    app.get("/fail", (req, res) => {
      req.log.warn("about to fail");
      res.status(500).json({ error: { code: "internal_error", message: "no" } });
    });
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("times every request, writes no line for a success and one for a 500, with the handler's own lines bound to the request id", async () => {
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`${base}/ok`)).status, 200);
    const failed = await fetch(`${base}/fail`, { headers: { "x-request-id": "req-fail-1" } });
    assert.equal(failed.status, 500);
    await failed.text();
    const text = await metrics.registry.metrics();
    assert.match(text, /http_request_duration_seconds_count\{method="GET",route="\/ok",status_code="200"\} 20/);
    assert.deepEqual(
      lines.filter((l) => l.route === "/ok"),
      [],
    );
    assert.deepEqual(
      lines.filter((l) => l.reqId === "req-fail-1").map((l) => [l.msg, l.status]),
      [
        ["about to fail", undefined],
        ["request", 500],
      ],
    );
  });
});
