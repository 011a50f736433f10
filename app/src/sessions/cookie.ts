import { createHmac, timingSafeEqual } from "node:crypto";

// The session cookie's value: `s:<id>.<signature>`, the signature an HMAC-SHA256 of the id in
// base64 without padding. The same format express-session wrote, so that sessions made before
// this module replaced it stay valid through the rollout.

/** The session cookie's name. */
export const SESSION_COOKIE = "sid";

const signature = (id: string, secret: string) =>
  createHmac("sha256", secret).update(id).digest("base64").replace(/=+$/, "");

/** The cookie value for `id`, signed with `secret` (the first of SESSION_SECRETS). */
export function signSessionId(id: string, secret: string): string {
  return `s:${id}.${signature(id, secret)}`;
}

/**
 * The session id in a Cookie header, if its signature is right under one of `secrets` (the
 * first signs; the others are kept while a rotation retires them). Anything else, including a
 * malformed or unsigned value, is no session.
 */
export function sessionIdFrom(cookieHeader: string | undefined, secrets: readonly string[]): string | undefined {
  const raw = cookieValue(cookieHeader, SESSION_COOKIE);
  return raw === undefined ? undefined : verifiedId(raw, secrets);
}

/** The id in a session cookie's value as sent (URI-encoded), if it verifies. */
function verifiedId(raw: string, secrets: readonly string[]): string | undefined {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  const dot = value.lastIndexOf(".");
  if (!value.startsWith("s:") || dot < 2) return undefined;
  const id = value.slice(2, dot);
  const given = Buffer.from(value.slice(dot + 1));
  for (const secret of secrets) {
    const expected = Buffer.from(signature(id, secret));
    if (given.length === expected.length && timingSafeEqual(given, expected)) return id;
  }
  return undefined;
}

/** Verified cookie values kept, at most; past it the cache starts over. */
const VERIFIED_MAX = 10_000;

/**
 * sessionIdFrom with the values it verified remembered: a client sends the same cookie on every
 * request, and its HMAC was a tenth of GET /api/me's CPU. Only values that verified are kept,
 * so nothing unsigned ever comes out of it; the secrets are fixed for the life of the process.
 */
export function createSessionIdReader(
  secrets: readonly string[],
): (cookieHeader: string | undefined) => string | undefined {
  const verified = new Map<string, string>();
  return (cookieHeader) => {
    const raw = cookieValue(cookieHeader, SESSION_COOKIE);
    if (raw === undefined) return undefined;
    const known = verified.get(raw);
    if (known !== undefined) return known;
    const id = verifiedId(raw, secrets);
    if (id !== undefined) {
      if (verified.size >= VERIFIED_MAX) verified.clear();
      verified.set(raw, id);
    }
    return id;
  };
}

/** The first cookie named `name` in a Cookie header, as sent (still URI-encoded). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
