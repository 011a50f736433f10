import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { runWork } from "../../src/work/task.ts";

describe("runWork", () => {
  it("chains SHA-256 over the input the requested number of times", () => {
    const text = "the quick brown fox";
    const first = createHash("sha256").update(text).digest();
    const second = createHash("sha256").update(first).update(text).digest();
    assert.equal(runWork({ text, iterations: 1 }).digest, first.toString("hex"));
    assert.equal(runWork({ text, iterations: 2 }).digest, second.toString("hex"));
  });

  it("counts words in any script and ranks the most frequent first", () => {
    const result = runWork({ text: "Été été ÉTÉ, b a b — 42 42 42 42", iterations: 1 });
    assert.equal(result.words, 10);
    assert.deepEqual(result.topWords.slice(0, 3), [
      { word: "42", count: 4 },
      { word: "été", count: 3 },
      { word: "b", count: 2 },
    ]);
    assert.equal(result.bytes, Buffer.byteLength("Été été ÉTÉ, b a b — 42 42 42 42"));
  });
});
