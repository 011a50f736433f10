// When a phase's numbers are the client's, or not the server's, limit (runner/flags.ts).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { coresOf, phaseFlags } from "../runner/flags.ts";

describe("phaseFlags", () => {
  it("flags a saturation run whose server stayed below 0.9 of a core, and a client at 0.9", () => {
    assert.deepEqual(phaseFlags({ serverCores: 0.63, clientCores: 0.95, saturating: true }), [
      "client-limited: the load generator used 0.95 of a core",
      "server not saturated: 0.63 of a core (< 0.9)",
    ]);
  });

  it("leaves a busy server with a light client alone, and an open-loop run below 0.9", () => {
    assert.deepEqual(phaseFlags({ serverCores: 0.9, clientCores: 0.89, saturating: true }), []);
    assert.deepEqual(phaseFlags({ serverCores: 0.2, clientCores: 0.1, saturating: false, sendLagP99Ms: 10 }), []);
  });

  it("flags an open-loop run that fell behind its schedule or dropped arrivals", () => {
    assert.deepEqual(
      phaseFlags({ serverCores: 0.2, clientCores: 0.1, saturating: false, sendLagP99Ms: 10.5, dropped: 3 }),
      ["client behind schedule: send lag p99 11 ms (> 10 ms)", "3 arrivals dropped: the offered rate was not held"],
    );
  });
});

describe("coresOf", () => {
  it("is CPU seconds over wall seconds, to 2 decimals, 0 for no time", () => {
    assert.equal(coresOf(3.5, 5), 0.7);
    assert.equal(coresOf(1, 3), 0.33);
    assert.equal(coresOf(1, 0), 0);
  });
});
