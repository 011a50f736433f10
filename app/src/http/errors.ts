import type { NextFunction, Request, Response } from "express";
import { isDatabaseUnavailable } from "../db/errors.ts";
import { AppError, errorBody } from "../errors.ts";

// Errors that body parsers raise carry `status`, `expose` and a `type`; these are the client's
// fault and keep their 4xx status with a stable code.
const parserErrorCodes: Record<string, string> = {
  "entity.parse.failed": "invalid_json",
  "entity.too.large": "payload_too_large",
  "entity.verify.failed": "invalid_body",
  "request.aborted": "request_aborted",
  "request.size.invalid": "invalid_body",
  "stream.encoding.set": "invalid_body",
  "charset.unsupported": "unsupported_charset",
  "encoding.unsupported": "unsupported_encoding",
  "parameters.too.many": "invalid_body",
};

type HttpError = Error & { status?: number; statusCode?: number; expose?: boolean; type?: string };

export function notFoundHandler(req: Request, res: Response) {
  res.status(404).json(errorBody("not_found", `No route for ${req.method} ${req.path.slice(0, 200)}`));
}

export function errorHandler(error: unknown, req: Request, res: Response, next: NextFunction) {
  if (res.headersSent) {
    // Too late for an error body: let Express end the connection.
    next(error);
    return;
  }
  if (error instanceof AppError) {
    if (error.status >= 500) req.log.warn({ code: error.code }, error.message);
    res.status(error.status).set(error.headers).json(errorBody(error.code, error.message));
    return;
  }
  const httpError = error as HttpError;
  const status = httpError.status ?? httpError.statusCode;
  if (status !== undefined && status >= 400 && status < 500 && httpError.expose !== false) {
    const code = parserErrorCodes[httpError.type ?? ""] ?? "bad_request";
    res.status(status).json(errorBody(code, httpError.message));
    return;
  }
  if (isDatabaseUnavailable(error)) {
    req.log.warn({ err: error }, "database unavailable");
    res
      .status(503)
      .set("retry-after", "1")
      .json(errorBody("database_unavailable", "The database is unavailable; retry shortly."));
    return;
  }
  // 57014 query_canceled: the statement timeout (PG_STATEMENT_TIMEOUT_MS) cut the query off,
  // which under load is an overload to back off from, not a request to change.
  if ((error as { code?: unknown }).code === "57014") {
    req.log.warn({ err: error }, "database statement timed out");
    res
      .status(503)
      .set("retry-after", "1")
      .json(errorBody("database_timeout", "The database took too long to answer; retry shortly."));
    return;
  }
  req.log.error({ err: error }, "unhandled error");
  res.status(500).json(errorBody("internal_error", "Something went wrong on our side."));
}
