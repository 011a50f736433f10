// Every error a route raises on purpose carries a stable code and an HTTP status; anything
// else reaching the error handler is our fault and answers 500.

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "AppError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export const badRequest = (code: string, message: string) => new AppError(400, code, message);
export const notFound = (code: string, message: string) => new AppError(404, code, message);
export const unavailable = (code: string, message: string, retryAfterSeconds = 1) =>
  new AppError(503, code, message, { "retry-after": String(retryAfterSeconds) });

export type ErrorBody = { error: { code: string; message: string } };

export const errorBody = (code: string, message: string): ErrorBody => ({ error: { code, message } });
