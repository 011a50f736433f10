import type { Logger } from "./logger.ts";

declare global {
  namespace Express {
    interface Request {
      /** The request id (taken from a well-formed x-request-id, else generated). */
      id: string;
      /** The process logger bound to this request's id. */
      log: Logger;
    }
  }
}

declare module "express-session" {
  interface SessionData {
    userId: number;
    username: string;
  }
}
