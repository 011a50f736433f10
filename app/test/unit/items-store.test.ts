// created_at's text from PostgreSQL (a UTC timestamp in ISO DateStyle) becomes what
// Date.toISOString wrote before (app/src/items/store.ts).

import assert from "node:assert/strict";
import { it } from "node:test";
import { isoFromUtcTimestamp } from "../../src/items/store.ts";

it("rewrites PostgreSQL's UTC timestamp text as toISOString would, for every fraction width", () => {
  for (const [text, iso] of [
    ["2026-03-03 23:36:07.891999", "2026-03-03T23:36:07.891Z"],
    ["2026-03-03 23:36:07.8919", "2026-03-03T23:36:07.891Z"],
    ["2026-03-03 23:36:07.891", "2026-03-03T23:36:07.891Z"],
    ["2026-03-03 23:36:07.89", "2026-03-03T23:36:07.890Z"],
    ["2026-03-03 23:36:07.8", "2026-03-03T23:36:07.800Z"],
    ["2026-03-03 23:36:07", "2026-03-03T23:36:07.000Z"],
    ["1999-12-31 00:00:00.000001", "1999-12-31T00:00:00.000Z"],
  ]) {
    assert.equal(isoFromUtcTimestamp(text as string), iso, text);
    // What the driver's Date did: the instant, truncated to the millisecond.
    assert.equal(new Date(Date.parse(`${(text as string).replace(" ", "T").slice(0, 23)}Z`)).toISOString(), iso);
  }
});
