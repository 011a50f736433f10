import type { Logger } from "./logger.ts";
import type { Session, SessionControl } from "./sessions/middleware.ts";

declare global {
  namespace Express {
    interface Request {
      /** The request id (taken from a well-formed x-request-id, else generated). */
      id: string;
      /** The process logger bound to this request's id. */
      log: Logger;
      /** This request's session, once a session middleware ran and Redis answered. */
      session?: Session;
      /** Set by the session middleware, for regenerateSession, saveSession, destroySession. */
      sessions?: SessionControl;
    }
  }
}
