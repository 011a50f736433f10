// The open-loop runner against a real local server: a stall of the client or of the server
// shows in the latencies (timed from each arrival's schedule, not from its send), and an
// arrival that finds every slot taken is a drop: a failure of infinite latency. The stalls are
// built into the test, so the bounds below follow from its construction, not from the
// machine's speed.

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { runOpen } from "../runner/drive.ts";
import type { RequestSpec } from "../shapes.ts";

const spec: RequestSpec = { method: "GET", path: "/", auth: false, ok: [200], route: "GET /" };
const busyWait = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe("runOpen", () => {
  let held: ServerResponse[] = [];
  let hold = false;
  let base = "";
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    if (hold) held.push(res);
    else res.end("ok");
  });
  const release = () => {
    hold = false;
    for (const res of held) res.end("ok");
    held = [];
  };

  before(async () => {
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    release();
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  });

  it("times a request from its schedule when the client stalls (no coordinated omission)", async () => {
    // arrival k is due at k/100 s; the client blocks its event loop for 300 ms while making
    // the first one, so arrivals 1..30 all leave at >= 0.31 s: arrival 2 (due at 0.02 s) is
    // >= 290 ms late, arrival 3 >= 280 ms. Timed from the send, both would be fast.
    const r = await runOpen(
      base,
      (i) => {
        if (i === 0) busyWait(300);
        return { spec };
      },
      { rps: 100, durationS: 1, maxInFlight: 200 },
    );
    assert.deepEqual([r.offered, r.requests, r.dropped, r.errors], [100, 100, 0, 0]);
    // the two slowest of 100 (p99 = index 98) are at least arrival 3's 280 ms
    assert.ok(r.latency.p99 >= 280, `p99 ${r.latency.p99} ms counts the stall`);
    assert.ok(r.sendLag.max >= 290, `send lag ${r.sendLag.max} ms shows it`);
  });

  it("counts arrivals that find every slot taken as drops of infinite latency", async () => {
    // The server holds every answer until the 100th arrival has been offered: the first 50
    // take the 50 slots, the other 50 are dropped, whatever the timing.
    hold = true;
    const r = await runOpen(
      base,
      (i) => {
        if (i === 99) setImmediate(release);
        return { spec };
      },
      { rps: 100, durationS: 1, maxInFlight: 50 },
    );
    assert.deepEqual([r.offered, r.requests, r.dropped, r.errors], [100, 50, 50, 0]);
    // 50 served and 50 infinite: p50 = index 49, the slowest served one (arrival 1, due at
    // 0.01 s and answered after arrival 100 fell due at 1 s: >= 990 ms); p95 on a drop
    assert.ok(r.latency.p50 >= 990 && Number.isFinite(r.latency.p50), `p50 ${r.latency.p50}`);
    assert.equal(r.latency.p95, Number.POSITIVE_INFINITY);
    assert.equal(r.latency.max, Number.POSITIVE_INFINITY);
  });
});
