import { promisify } from "node:util";
import { type BrotliOptions, brotliCompress, brotliCompressSync, gzip, gzipSync, constants as zlib } from "node:zlib";
import compression from "compression";
import type { Request, Response } from "express";

// Compression only where it pays: the list, the export and /metrics, whose bodies run to
// kilobytes and megabytes. Every other answer is a few hundred bytes.
//
// Two ways, by the shape of the body (load/README.md has the bench's figures):
// - a stream (the export, millions of rows): compression's middleware, which compresses as the
//   rows go out, with backpressure;
// - a body complete in memory (a page of the list): one synchronous call into zlib, or for a
//   large body one call on libuv's pool. A compression stream per response (the middleware,
//   or zlib's asynchronous one-shot calls, which make one too) cost 0.18-0.2 ms of CPU on a
//   2.4 KB page, as much as the rest of the request; the synchronous call costs 0.02-0.03 ms
//   alone, and about 0.1 ms in the app by the bench.

/** Below this, a body goes out as it is: the bytes saved are not worth a round into zlib. */
const THRESHOLD_BYTES = 1024;
/**
 * Up to this, a complete body is compressed on the event loop (about 0.3 ms at quality 4,
 * less than serializing it); above it (a 100-item page of long bodies), on libuv's pool.
 */
const ON_THE_LOOP_MAX_BYTES = 64 * 1024;

const ndjson = /^application\/x-ndjson\b/;

/**
 * For streamed bodies: what compression's own type list takes (JSON, Prometheus's text) and
 * NDJSON, which that list does not know, so the export went out raw; only when the client
 * asks, above 1 KB.
 */
export const compressed = compression({
  threshold: THRESHOLD_BYTES,
  filter: (req: Request, res: Response) =>
    compression.filter(req, res) || ndjson.test(String(res.getHeader("content-type") ?? "")),
  // Brotli at quality 4 costs about what gzip does per byte while compressing better; the
  // default quality 11 is meant for static files compressed once.
  brotli: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } },
});

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

const brotli = (text: string, options: BrotliOptions) =>
  text.length <= ON_THE_LOOP_MAX_BYTES ? brotliCompressSync(text, options) : brotliAsync(text, options);
const gzipped = (text: string) => (text.length <= ON_THE_LOOP_MAX_BYTES ? gzipSync(text) : gzipAsync(text));

/**
 * Answers `body` as JSON, compressed in one piece when the client accepts brotli or gzip (the
 * one it prefers; a browser lists gzip first) and the text is worth it.
 */
export async function sendJson(req: Request, res: Response, body: unknown): Promise<void> {
  const text = JSON.stringify(body);
  res.vary("Accept-Encoding").type("json");
  const encoding = text.length < THRESHOLD_BYTES ? false : req.acceptsEncodings("br", "gzip");
  if (encoding === "br") {
    const params = { [zlib.BROTLI_PARAM_QUALITY]: 4, [zlib.BROTLI_PARAM_SIZE_HINT]: text.length };
    res.set("content-encoding", "br").send(await brotli(text, { params }));
  } else if (encoding === "gzip") {
    res.set("content-encoding", "gzip").send(await gzipped(text));
  } else {
    res.send(text);
  }
}
