// WAL positions are two hex halves of varying width ("0/FFFFFFFF", "1/0"): compared as text,
// a longer position can sort below a shorter one. Every pair here crosses such a boundary.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLsn, parseLsn } from "../../src/db/lsn.ts";
import { LSN_BOUNDARY_PAIRS } from "../lsn-pairs.ts";

describe("parseLsn", () => {
  it("reads both halves as one 64-bit position", () => {
    assert.equal(parseLsn("0/0"), 0n);
    assert.equal(parseLsn("0/1"), 1n);
    assert.equal(parseLsn("0/FFFFFFFF"), 0xffff_ffffn);
    assert.equal(parseLsn("1/0"), 0x1_0000_0000n);
    assert.equal(parseLsn("16/B374D848"), 0x16_b374_d848n);
    assert.equal(parseLsn("FFFFFFFF/FFFFFFFF"), 0xffff_ffff_ffff_ffffn);
  });

  it("accepts lower-case hex", () => {
    assert.equal(parseLsn("a/b374d848"), parseLsn("A/B374D848"));
  });

  for (const text of ["", "0", "/", "0/", "/0", "G/0", "0/G", "1/2/3", " 0/1", "0/1 ", "123456789/0", "0/123456789"]) {
    it(`refuses ${JSON.stringify(text)} and names it`, () => {
      assert.throws(() => parseLsn(text), { message: `not a WAL position: ${JSON.stringify(text)}` });
    });
  }
});

describe("isLsn", () => {
  it("says which values are WAL positions", () => {
    assert.equal(isLsn("0/16B3748"), true);
    assert.equal(isLsn("FFFFFFFF/FFFFFFFF"), true);
    assert.equal(isLsn("0/"), false);
    assert.equal(isLsn("x0/1"), false);
    assert.equal(isLsn("0/1x"), false);
    assert.equal(isLsn(undefined), false);
    assert.equal(isLsn(42), false);
    assert.equal(isLsn(null), false);
    assert.equal(isLsn({ toString: () => "0/1" }), false, "only a string, not something that prints as one");
  });
});

describe("positions in order across hex-width boundaries", () => {
  for (const [behind, ahead] of LSN_BOUNDARY_PAIRS) {
    it(`${ahead} is past ${behind}, not the other way round`, () => {
      assert.ok(parseLsn(ahead) > parseLsn(behind));
    });
  }

  it("a position equals itself, however it is spelt", () => {
    assert.equal(parseLsn("0/016b3748"), parseLsn("0/16B3748"));
  });
});
