import type { NextFunction, Request, Response } from "express";
import type { z } from "zod";
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
  if (req.is("application/json") === false || req.is("application/json") === null) {
    next(new AppError(415, "unsupported_media_type", "Send the body as application/json."));
    return;
  }
  next();
}
