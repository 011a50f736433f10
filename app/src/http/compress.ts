import { constants as zlib } from "node:zlib";
import compression from "compression";
import type { Request, Response } from "express";

// Compression only where it pays: the list, the export and /metrics, whose bodies run to
// kilobytes and megabytes. Every other answer is a few hundred bytes, where compression's wrappers cost more
// CPU than the bytes saved are worth (load/README.md has the bench's figures both ways).

const ndjson = /^application\/x-ndjson\b/;

/**
 * What compression's own type list takes (JSON, Prometheus's text) and NDJSON, which that
 * list does not know, so the export went out raw; only when the client asks, above 1 KB.
 */
export const compressed = compression({
  threshold: 1024,
  filter: (req: Request, res: Response) =>
    compression.filter(req, res) || ndjson.test(String(res.getHeader("content-type") ?? "")),
  // Brotli at quality 4 costs about what gzip does per byte while compressing better; the
  // default quality 11 is meant for static files compressed once.
  brotli: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } },
});
