// BENCH_PHASES: which parts of the bench run (runner/phases.ts).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ALL_PHASES, parsePhases, phasesNotRun } from "../runner/phases.ts";

describe("parsePhases", () => {
  it("runs everything when unset, empty or all", () => {
    for (const raw of [undefined, "", " ", "all"]) assert.deepEqual(parsePhases(raw), [...ALL_PHASES]);
  });

  it("always keeps the endpoints, and returns the run order whatever the order asked", () => {
    assert.deepEqual(parsePhases("endpoints"), ["endpoints"]);
    assert.deepEqual(parsePhases("shapes"), ["endpoints", "shapes"]);
    assert.deepEqual(parsePhases(" pm2 , operating-point "), ["endpoints", "operating-point", "pm2"]);
  });

  it("adds the operating point to the fixed rate unless BENCH_FIXED_RPS gives the rate", () => {
    assert.deepEqual(parsePhases("fixed-rate"), ["endpoints", "operating-point", "fixed-rate"]);
    assert.deepEqual(parsePhases("fixed-rate", true), ["endpoints", "fixed-rate"]);
  });

  it("refuses an unknown phase, naming it", () => {
    assert.throws(() => parsePhases("endpoints,shape"), /unknown phase shape; expected all or a list of endpoints/);
  });

  it("lists what a run left out", () => {
    assert.deepEqual(phasesNotRun(["endpoints"]), ["operating-point", "fixed-rate", "pm2", "shapes"]);
    assert.deepEqual(phasesNotRun([...ALL_PHASES]), []);
  });
});
