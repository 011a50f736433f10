// What compression costs and saves on the routes that compress (the list, the export): the
// bench measures each twice, with a browser's Accept-Encoding and with identity, and samples
// one response of each for its size on the wire.

import { request } from "undici";
import { ACCEPT_ENCODING } from "../shapes.ts";

export type WireSample = { bytes: number; encoding: string };

/** One response as it crosses the wire: its bytes before any decoding, and its encoding. */
export async function wireSample(url: string, acceptEncoding = ACCEPT_ENCODING, cookie?: string): Promise<WireSample> {
  const headers: Record<string, string> = { "accept-encoding": acceptEncoding };
  if (cookie) headers.cookie = cookie;
  const res = await request(url, { headers });
  const bytes = (await res.body.arrayBuffer()).byteLength;
  if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode} while sampling its size`);
  const encoding = res.headers["content-encoding"];
  return { bytes, encoding: typeof encoding === "string" ? encoding : "identity" };
}

export type CompressionCost = {
  route: string;
  /** The encoding the app chose for a browser's Accept-Encoding. */
  encoding: string;
  bytes: number;
  identityBytes: number;
  cpuMsPerRequest: number;
  identityCpuMsPerRequest: number;
  /** App CPU compression adds per request, and per KiB it keeps off the wire. */
  extraCpuMs: number;
  extraCpuMsPerKiBSaved: number | null;
};

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export function compressionCost(
  route: string,
  compressed: { cpuMsPerRequest: number; sample: WireSample },
  identity: { cpuMsPerRequest: number; sample: WireSample },
): CompressionCost {
  const extraCpuMs = compressed.cpuMsPerRequest - identity.cpuMsPerRequest;
  const savedKiB = (identity.sample.bytes - compressed.sample.bytes) / 1024;
  return {
    route,
    encoding: compressed.sample.encoding,
    bytes: compressed.sample.bytes,
    identityBytes: identity.sample.bytes,
    cpuMsPerRequest: compressed.cpuMsPerRequest,
    identityCpuMsPerRequest: identity.cpuMsPerRequest,
    extraCpuMs: round(extraCpuMs, 4),
    extraCpuMsPerKiBSaved: savedKiB > 0 ? round(extraCpuMs / savedKiB, 5) : null,
  };
}
