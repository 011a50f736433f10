import { isUtf8 } from "node:buffer";
import express, { type NextFunction, type Request, type Response } from "express";
import { z } from "zod";
import { AppError, badRequest } from "../errors.ts";

/** Parses untrusted input with a zod schema; a failure answers 400 naming each field. */
export function parse<T extends z.ZodType>(schema: T, input: unknown, what = "body"): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 10)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : what}: ${issue.message}`);
  throw badRequest(`invalid_${what}`, problems.join("; "));
}

/** Rejects a body that is not declared as JSON before any parser reads it. */
export function requireJson(req: Request, _res: Response, next: NextFunction) {
  if (!req.is("application/json")) {
    next(new AppError(415, "unsupported_media_type", "Send the body as application/json."));
    return;
  }
  next();
}

/**
 * Parses a JSON body of at most `limit`. body-parser decodes UTF-8 leniently (a bad byte
 * becomes U+FFFD and the request succeeds with altered text), so the raw bytes are checked
 * first and invalid UTF-8 answers 400.
 */
export function jsonBody(limit: string) {
  return [
    requireJson,
    express.json({
      limit,
      verify: (_req, _res, bytes) => {
        if (!isUtf8(bytes)) throw badRequest("invalid_utf8", "The body is not valid UTF-8.");
      },
    }),
  ];
}

/**
 * For an unsafe request that carries nothing (logout): the body must still be declared JSON,
 * empty or `{}`. What keeps cookie-authenticated writes safe from other sites (CSRF) is that
 * each demands a JSON or NDJSON content type while the cookie is SameSite=Lax: a page on
 * another origin can send a form (urlencoded, multipart) or text/plain with no preflight, but
 * any other content type needs a CORS preflight, which this app never grants. A same-site
 * page (a sibling subdomain) passes SameSite, so without this it could log a user out.
 */
export function emptyJsonBody() {
  return [
    (req: Request, _res: Response, next: NextFunction) => {
      // The header itself, not req.is(): an empty body has no type to type-is.
      const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
      if (type !== "application/json") {
        next(new AppError(415, "unsupported_media_type", "Send the body as application/json: empty or {}."));
        return;
      }
      next();
    },
    express.json({ limit: "1kb" }),
    (req: Request, _res: Response, next: NextFunction) => {
      parse(z.strictObject({}).optional(), req.body);
      next();
    },
  ];
}

const emptyQuery = z.strictObject({});

/** For routes that take no query parameters: any parameter is an unknown field, 400. */
export function noQuery(req: Request, _res: Response, next: NextFunction) {
  parse(emptyQuery, req.query, "query");
  next();
}

/** PostgreSQL text cannot hold NUL; rejecting it here keeps it a 400 instead of a failed insert. */
export const noNul = (text: string) => !text.includes("\u0000");
