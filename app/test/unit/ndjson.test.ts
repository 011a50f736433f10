import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AppError } from "../../src/errors.ts";
import { readNdjson } from "../../src/items/ndjson.ts";
import { copyRow } from "../../src/items/store.ts";

const limits = { maxLineBytes: 64, maxTotalBytes: 10_000 };

async function readAll(chunks: (string | Buffer)[], options = limits) {
  const lines = [];
  for await (const batch of readNdjson(chunks, options)) lines.push(...batch);
  return lines;
}

async function failure(chunks: (string | Buffer)[], options = limits): Promise<AppError> {
  try {
    await readAll(chunks, options);
  } catch (error) {
    assert.ok(error instanceof AppError);
    return error;
  }
  assert.fail("expected an AppError");
}

describe("readNdjson", () => {
  it("joins lines split across chunks, skips blank lines and numbers every line", async () => {
    const lines = await readAll(['{"a":', '1}\n\n{"b":2}\r\n', '{"c":"é"}']);
    assert.deepEqual(lines, [
      { line: 1, value: { a: 1 } },
      { line: 3, value: { b: 2 } },
      { line: 4, value: { c: "é" } },
    ]);
  });

  it("decodes a multi-byte character split between chunks", async () => {
    const bytes = Buffer.from('{"t":"€"}\n');
    const lines = await readAll([bytes.subarray(0, 7), bytes.subarray(7)]);
    assert.deepEqual(lines, [{ line: 1, value: { t: "€" } }]);
  });

  it("names the line of invalid JSON", async () => {
    const error = await failure(['{"ok":1}\n{"broken"\n']);
    assert.equal(error.status, 400);
    assert.equal(error.message, "line 2: not valid JSON");
  });

  it("names the line of invalid UTF-8", async () => {
    const error = await failure([
      Buffer.concat([Buffer.from('{"a":1}\n{"a":2}\n{"b":"'), Buffer.from([0xff]), Buffer.from('"}\n')]),
    ]);
    assert.equal(error.code, "invalid_utf8");
    assert.equal(error.message, "line 3: not valid UTF-8");
  });

  it("rejects a truncated UTF-8 sequence at the very end", async () => {
    const error = await failure([Buffer.concat([Buffer.from('{"a":"x'), Buffer.from([0xe2, 0x82])])]);
    assert.equal(error.code, "invalid_utf8");
  });

  it("refuses a line over the limit, even before it ends", async () => {
    const error = await failure([`{"t":"${"x".repeat(100)}`]);
    assert.equal(error.status, 413);
    assert.equal(error.message, "line 1: longer than 64 bytes");
  });

  it("refuses a body over the total limit", async () => {
    const error = await failure(["{}\n".repeat(20)], { maxLineBytes: 64, maxTotalBytes: 30 });
    assert.equal(error.code, "payload_too_large");
  });
});

describe("copyRow", () => {
  it("escapes what COPY's text format treats specially", () => {
    assert.equal(copyRow(7, { title: "a\tb", body: "line1\nline2\\end\r" }), "7\ta\\tb\tline1\\nline2\\\\end\\r\n");
  });
});
