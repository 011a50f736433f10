// The closed-loop run split over worker threads, against a real local server: every thread
// sends its own share of the request numbers, and the merged result counts what the server
// answered.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { endpointRequest, type Fixture, jobRequest, runClosedThreads } from "../runner/drive.ts";

const fixture: Fixture = { run: "t", cookies: ["sid=a", "sid=b", "sid=c"], itemIds: [10, 11] };

describe("jobRequest", () => {
  it("numbers an endpoint job's requests from its start: items, sessions and users in turn", () => {
    const job = { kind: "endpoint", endpoint: "item-read", fixture, seqStart: 4 } as const;
    assert.deepEqual(jobRequest(job, 1), { spec: endpointRequest("item-read", fixture, 5).spec, cookie: "sid=c" });
    assert.equal(jobRequest(job, 1).spec.path, "/api/items/11");
    assert.equal(jobRequest(job, 0).spec.path, "/api/items/10");
    // login: user seq % users, no session; register: a new user for every number
    const login = endpointRequest("login", fixture, 4);
    assert.equal(login.cookie, undefined);
    assert.match(String(login.spec.body), /"username":"[^"]*t[^"]*"/);
    assert.notEqual(
      endpointRequest("register", fixture, 1).spec.body,
      endpointRequest("register", fixture, 2).spec.body,
    );
    const fixed = { kind: "fixed", spec: login.spec } as const;
    assert.deepEqual(jobRequest(fixed, 99), { spec: login.spec });
  });
});

describe("runClosedThreads", () => {
  const seen = new Map<string, number>();
  let served = 0;
  let base = "";
  const server = createServer((req, res) => {
    served++;
    seen.set(req.url ?? "", (seen.get(req.url ?? "") ?? 0) + 1);
    res.end("{}");
  });
  before(async () => {
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  });

  it("runs each thread on its own request numbers and merges what they counted", async () => {
    // 2 threads, item ids [10, 11]: thread 0 sends the even numbers (item 10), thread 1 the odd
    const job = { kind: "endpoint", endpoint: "item-read", fixture, seqStart: 0 } as const;
    const r = await runClosedThreads(base, job, { connections: 4, durationS: 0.3, threads: 2 });
    assert.equal(r.errors, 0);
    assert.ok(r.requests > 0);
    assert.equal(r.requests, served, "every answer counted once");
    assert.deepEqual([...seen.keys()].sort(), ["/api/items/10", "/api/items/11"]);
    assert.ok(r.latency.max > 0 && Number.isFinite(r.latency.max));
    assert.ok(r.clientCpuS > 0);
  });
});
