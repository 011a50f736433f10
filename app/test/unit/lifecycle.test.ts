import assert from "node:assert/strict";
import { request } from "node:http";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { shutDown } from "../../src/lifecycle.ts";
import { startApp } from "../support.ts";

function post(url: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (chunk) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

describe("shutdown sequence", () => {
  it("fails readiness at once, keeps serving while draining, finishes in-flight work, then stops", async () => {
    const app = await startApp();
    const text = "x".repeat(200_000);
    // Three tasks on one worker thread: still running when the server stops accepting.
    const inFlight = [1, 2, 3].map(() => post(`${app.url}/api/work`, { text, iterations: 300 }));
    await delay(50);

    const stopped = shutDown(
      { server: app.server, lifecycle: app.lifecycle, drainMs: 300, timeoutMs: 20_000, log: app.log, closers: [] },
      "test",
    );
    const duringDrain = await fetch(`${app.url}/readyz`);
    assert.equal(duringDrain.status, 503);
    assert.equal(((await duringDrain.json()) as { status: string }).status, "draining");
    assert.equal(duringDrain.headers.get("connection"), "close", "keep-alive clients are asked to leave");
    assert.equal((await fetch(`${app.url}/livez`)).status, 200, "liveness is unaffected by draining");

    assert.equal(await stopped, 0);
    for (const response of await Promise.all(inFlight)) assert.equal(response.status, 200);
    await assert.rejects(fetch(`${app.url}/livez`), "no longer accepting after the drain");
    await app.close();
  });
});
