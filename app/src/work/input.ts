import { isUtf8 } from "node:buffer";
import { z } from "zod";
import type { WorkInput } from "./task.ts";

// The body of POST /api/work, read and checked on the worker thread: a 3 MB body is several ms
// of JSON.parse, which the event loop must not spend (DESIGN.md: no CPU task over ~1 ms there).
// The answers match what the JSON body parser gives every other route.

// The text limit keeps one task bounded (about 0.1-1 s of one core at the top); the body limit
// leaves room for JSON escaping of that text.
export const MAX_TEXT_CHARS = 512 * 1024;
export const MAX_BODY = "3mb";

const workRequest = z.strictObject({
  text: z.string().min(1).max(MAX_TEXT_CHARS),
  iterations: z.number().int().min(1).max(1000).default(100),
});

export type BodyError = { error: { code: string; message: string } };

/** Parses and validates the raw body; a bad one is described, never thrown. */
export function parseWorkBody(bytes: Uint8Array): { input: WorkInput } | BodyError {
  if (!isUtf8(bytes)) return { error: { code: "invalid_utf8", message: "The body is not valid UTF-8." } };
  let body: unknown = {};
  // An empty body is an empty object, as the JSON body parser has it.
  if (bytes.byteLength > 0) {
    try {
      body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
    } catch (error) {
      return { error: { code: "invalid_json", message: (error as Error).message } };
    }
  }
  const result = workRequest.safeParse(body);
  if (result.success) return { input: result.data };
  const problems = result.error.issues
    .slice(0, 10)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue.message}`);
  return { error: { code: "invalid_body", message: problems.join("; ") } };
}
