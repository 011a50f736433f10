import { AppError, badRequest } from "../errors.ts";

// Reads newline-delimited JSON from a byte stream one line at a time: memory holds one chunk
// and one partial line, never the whole body. Each line is checked for size and UTF-8 before
// it is parsed, and every error names its line.

export type NdjsonLimits = { maxLineBytes: number; maxTotalBytes: number };

export async function* readNdjson(
  source: AsyncIterable<Buffer | string>,
  limits: NdjsonLimits,
): AsyncGenerator<{ line: number; value: unknown }> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let total = 0;
  let line = 0;

  const parseLine = (bytes: Buffer) => {
    line++;
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw badRequest("invalid_utf8", `line ${line}: not valid UTF-8`);
    }
    if (text.trim() === "") return undefined;
    try {
      return { line, value: JSON.parse(text) as unknown };
    } catch {
      throw badRequest("invalid_json", `line ${line}: not valid JSON`);
    }
  };

  for await (const chunk of source) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    total += buffer.length;
    if (total > limits.maxTotalBytes) {
      throw new AppError(413, "payload_too_large", `the body exceeds ${limits.maxTotalBytes} bytes`);
    }
    let start = 0;
    for (let newline = buffer.indexOf(10, start); newline !== -1; newline = buffer.indexOf(10, start)) {
      const piece = buffer.subarray(start, newline);
      const whole = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
      pending = [];
      pendingBytes = 0;
      start = newline + 1;
      if (whole.length > limits.maxLineBytes) throw lineTooLong(line + 1, limits.maxLineBytes);
      const parsed = parseLine(whole);
      if (parsed) yield parsed;
    }
    if (start < buffer.length) {
      // Copy: the rest of this chunk outlives it, and a slice would pin the whole chunk.
      const rest = Buffer.from(buffer.subarray(start));
      pendingBytes += rest.length;
      if (pendingBytes > limits.maxLineBytes) throw lineTooLong(line + 1, limits.maxLineBytes);
      pending.push(rest);
    }
  }
  if (pending.length > 0) {
    const parsed = parseLine(Buffer.concat(pending));
    if (parsed) yield parsed;
  }
}

function lineTooLong(line: number, max: number) {
  return new AppError(413, "line_too_long", `line ${line}: longer than ${max} bytes`);
}
