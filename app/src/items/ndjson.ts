import { AppError, badRequest } from "../errors.ts";

// Reads newline-delimited JSON from a byte stream: memory holds one chunk and one partial
// line, never the whole body. Lines come out a chunk's worth at a time, which keeps the
// per-line cost to a JSON.parse (no per-line promise or buffer), and every error names its
// line.

export type NdjsonLimits = { maxLineBytes: number; maxTotalBytes: number };
export type NdjsonLine = { line: number; value: unknown };

export async function* readNdjson(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  limits: NdjsonLimits,
): AsyncGenerator<NdjsonLine[]> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let partial = "";
  let total = 0;
  let line = 0;

  const parseLines = (texts: string[]): NdjsonLine[] => {
    const parsed: NdjsonLine[] = [];
    for (const text of texts) {
      line++;
      if (exceeds(text, limits.maxLineBytes)) throw lineTooLong(line, limits.maxLineBytes);
      if (text.trim() === "") continue;
      try {
        parsed.push({ line, value: JSON.parse(text) });
      } catch {
        throw badRequest("invalid_json", `line ${line}: not valid JSON`);
      }
    }
    return parsed;
  };

  for await (const chunk of source) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    total += bytes.length;
    if (total > limits.maxTotalBytes) {
      throw new AppError(413, "payload_too_large", `the body exceeds ${limits.maxTotalBytes} bytes`);
    }
    let text: string;
    try {
      text = partial + decoder.decode(bytes, { stream: true });
    } catch {
      throw invalidUtf8(lineOfInvalidUtf8(bytes, line + 1));
    }
    const texts = text.split("\n");
    partial = texts.pop() ?? "";
    if (exceeds(partial, limits.maxLineBytes)) throw lineTooLong(line + texts.length + 1, limits.maxLineBytes);
    const parsed = parseLines(texts);
    if (parsed.length > 0) yield parsed;
  }
  try {
    partial += decoder.decode();
  } catch {
    throw invalidUtf8(line + 1);
  }
  const parsed = parseLines([partial]);
  if (parsed.length > 0) yield parsed;
}

// UTF-8 takes at most 3 bytes per UTF-16 code unit, so the exact byte count is needed only
// for strings that could be over the limit.
function exceeds(text: string, maxBytes: number): boolean {
  return text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes;
}

function invalidUtf8(line: number) {
  return badRequest("invalid_utf8", `line ${line}: not valid UTF-8`);
}

function lineTooLong(line: number, max: number) {
  return new AppError(413, "line_too_long", `line ${line}: longer than ${max} bytes`);
}

/** The line of the first piece that is not UTF-8 on its own; looked for only on the error path. */
function lineOfInvalidUtf8(bytes: Buffer, firstLine: number): number {
  let line = firstLine;
  for (let start = 0; start <= bytes.length; line++) {
    const newline = bytes.indexOf(10, start);
    const end = newline === -1 ? bytes.length : newline;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(start, end));
    } catch {
      return line;
    }
    start = end + 1;
  }
  return firstLine;
}
