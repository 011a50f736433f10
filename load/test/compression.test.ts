import assert from "node:assert/strict";
import { it } from "node:test";
import { compressionCost } from "../runner/compression.ts";

it("prices compression as the CPU it adds against the bytes it saves, per KiB", () => {
  const cost = compressionCost(
    "GET /api/items",
    { cpuMsPerRequest: 0.3, sample: { bytes: 1024, encoding: "br" } },
    { cpuMsPerRequest: 0.25, sample: { bytes: 5 * 1024, encoding: "identity" } },
  );
  assert.deepEqual(cost, {
    route: "GET /api/items",
    encoding: "br",
    bytes: 1024,
    identityBytes: 5120,
    cpuMsPerRequest: 0.3,
    identityCpuMsPerRequest: 0.25,
    extraCpuMs: 0.05,
    extraCpuMsPerKiBSaved: 0.0125,
  });
  // Nothing saved (below the threshold, say): no price per KiB.
  const none = compressionCost(
    "GET /x",
    { cpuMsPerRequest: 0.1, sample: { bytes: 900, encoding: "identity" } },
    { cpuMsPerRequest: 0.1, sample: { bytes: 900, encoding: "identity" } },
  );
  assert.equal(none.extraCpuMsPerKiBSaved, null);
  assert.equal(none.extraCpuMs, 0);
});
