import type { NextFunction, Request, RequestHandler, Response } from "express";
import session from "express-session";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import type { RedisSessionStore } from "./store.ts";

export type SessionUser = { id: number; username: string };

/** The session cookie's name. */
export const SESSION_COOKIE = "sid";

/**
 * Whether the request carries a session cookie. A cookie that merely ends in the name
 * (`xsid=`) also counts: the session middleware then decides, as it would have anyway.
 */
export function hasSessionCookie(req: Request): boolean {
  return req.headers.cookie?.includes(`${SESSION_COOKIE}=`) === true;
}

export function createSessionMiddleware(config: Config["session"], store: RedisSessionStore): RequestHandler {
  const middleware = session({
    name: SESSION_COOKIE,
    store,
    secret: config.secrets,
    resave: false,
    saveUninitialized: false,
    // Expiry resets only when the session changes; see the store for why there is no touch.
    rolling: false,
    cookie: {
      httpOnly: true,
      sameSite: "lax",
      // "auto" follows req.secure, which trusts X-Forwarded-Proto from the load balancer.
      secure: config.cookieSecure === "auto" ? "auto" : config.cookieSecure === "true",
      maxAge: config.ttlSeconds * 1000,
    },
  });
  if (config.cookieSecure !== "true") return middleware;
  // COOKIE_SECURE=true says the client's side is TLS whatever the last hop says (a TLS
  // terminator in front of the ingress forwards plain HTTP). express-session sets a Secure
  // cookie only on a request it sees as secure, and would otherwise set none: login would
  // answer 200 with no session.
  return (req, res, next) => {
    Object.defineProperty(req, "secure", { value: true, configurable: true });
    middleware(req, res, next);
  };
}

/**
 * The session middleware for routes that only read a session: a request without a session
 * cookie has none to load, and goes on anonymous (`req.session` undefined) instead of having
 * a new session built (a random id, three hashes) only to be thrown away unsaved. Login and
 * logout, which make and end sessions, take the middleware itself.
 */
export function sessionFromCookie(middleware: RequestHandler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (hasSessionCookie(req)) middleware(req, res, next);
    else next();
  };
}

/**
 * Like sessionFromCookie, and when Redis does not answer, the request goes on without a
 * session too. For reads that only use the session to route around replica lag, that is
 * safe: a request with a session cookie but no session (sessionUnknown) reads from the
 * primary.
 */
export function optionalSession(middleware: RequestHandler): RequestHandler {
  const fromCookie = sessionFromCookie(middleware);
  return (req: Request, res: Response, next: NextFunction) => {
    fromCookie(req, res, (error?: unknown) => {
      if (error instanceof AppError && error.code === "redis_unavailable") {
        next();
        return;
      }
      next(error);
    });
  };
}

/** A session cookie came, but its session could not be loaded (Redis did not answer). */
export function sessionUnknown(req: Request): boolean {
  return req.session === undefined && hasSessionCookie(req);
}

export function currentUser(req: Request): SessionUser | undefined {
  const { userId, username } = req.session ?? {};
  return userId !== undefined && username !== undefined ? { id: userId, username } : undefined;
}

export function requireUser(req: Request): SessionUser {
  const user = currentUser(req);
  if (user === undefined) throw new AppError(401, "not_authenticated", "Log in first.");
  return user;
}

const promisify =
  (method: "save" | "regenerate" | "destroy") =>
  (req: Request): Promise<void> =>
    new Promise((resolve, reject) => {
      req.session[method]((error: unknown) => (error ? reject(error) : resolve()));
    });

/** Saves now, so that a store failure becomes this request's error rather than a lost write. */
export const saveSession = promisify("save");
export const regenerateSession = promisify("regenerate");
export const destroySession = promisify("destroy");
