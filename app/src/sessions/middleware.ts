import { randomBytes } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { cookieValue, createSessionIdReader, SESSION_COOKIE, signSessionId } from "./cookie.ts";
import type { RedisSessionStore } from "./store.ts";

// Sessions: a signed cookie naming a key in Redis (store.ts). Written at login, deleted at
// logout, never touched in between, so a request that only reads its session costs one GET
// and no write. This replaced express-session, which on every request hashed the session
// three times and built a throwaway one for every request without a cookie.

export type SessionUser = { id: number; username: string };

export type Session = {
  /** The id in the cookie; the Redis key's suffix. */
  readonly id: string;
  userId?: number;
  username?: string;
  /** In Redis already (loaded from it, or saved): a regeneration deletes it. */
  stored: boolean;
};

/** What regenerateSession, saveSession and destroySession need: one per app, on each request. */
export type SessionControl = {
  store: RedisSessionStore;
  config: Config["session"];
};

export { SESSION_COOKIE };

// 24 random bytes, as express-session made them: ids nobody can guess or enumerate.
const newSession = (): Session => ({ id: randomBytes(24).toString("base64url"), stored: false });

/**
 * Loads the session named by a valid session cookie; any other request gets a new, empty
 * session, saved only if a route saves it (login). A Redis failure is the request's error
 * (503 redis_unavailable).
 */
export function createSessionMiddleware(config: Config["session"], store: RedisSessionStore): RequestHandler {
  const control: SessionControl = { store, config };
  const sessionIdOf = createSessionIdReader(config.secrets);
  return (req: Request, _res: Response, next: NextFunction) => {
    req.sessions = control;
    const id = sessionIdOf(req.headers.cookie);
    if (id === undefined) {
      req.session = newSession();
      next();
      return;
    }
    store.get(id).then((stored) => {
      // An expired session reads as none; Redis would have dropped it within the second.
      const live = stored !== null && stored.expires.getTime() > Date.now();
      req.session = live ? { id, userId: stored.userId, username: stored.username, stored: true } : newSession();
      next();
    }, next);
  };
}

/** Whether the request carries a session cookie (valid or not: the middleware decides). */
export function hasSessionCookie(req: Request): boolean {
  return cookieValue(req.headers.cookie, SESSION_COOKIE) !== undefined;
}

/**
 * The session middleware for routes that only read a session: a request without a session
 * cookie has none to load, and goes on anonymous (`req.session` undefined) instead of having
 * a new session built (a random id) only to be thrown away unsaved. Login and
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

function controlOf(req: Request): SessionControl {
  if (req.sessions === undefined) throw new Error("the session middleware did not run for this route");
  return req.sessions;
}

/**
 * A new id for the request's session, the old one deleted: an id planted before login is
 * worth nothing after it (session fixation).
 */
export async function regenerateSession(req: Request): Promise<Session> {
  const { store } = controlOf(req);
  if (req.session?.stored) await store.destroy(req.session.id);
  req.session = newSession();
  return req.session;
}

/** Saves now, and sets the cookie, so that a store failure is this request's error. */
export async function saveSession(req: Request): Promise<void> {
  const { store, config } = controlOf(req);
  const session = req.session;
  if (session === undefined) throw new Error("no session to save");
  const expires = new Date(Date.now() + config.ttlSeconds * 1000);
  // "auto" follows req.secure, which trusts X-Forwarded-Proto from the load balancer; "true"
  // holds whatever the last hop says (a TLS terminator in front of the ingress forwards plain
  // HTTP).
  const secure = config.cookieSecure === "true" || (config.cookieSecure === "auto" && req.secure);
  await store.set(session.id, { userId: session.userId, username: session.username, expires }, { secure });
  session.stored = true;
  req.res?.cookie(SESSION_COOKIE, signSessionId(session.id, config.secrets[0] as string), {
    path: "/",
    expires,
    httpOnly: true,
    sameSite: "lax",
    secure,
  });
}

export async function destroySession(req: Request): Promise<void> {
  const session = req.session;
  if (session === undefined) return;
  await controlOf(req).store.destroy(session.id);
  req.session = undefined;
}
