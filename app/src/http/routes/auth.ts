import { type RequestHandler, Router } from "express";
import type pg from "pg";
import { z } from "zod";
import { clientIp } from "../../auth/client-ip.ts";
import { decoyHash, hashPassword, verifyPassword } from "../../auth/passwords.ts";
import type { RateLimits } from "../../auth/rate-limit.ts";
import { createUser, findUserForLogin } from "../../auth/users.ts";
import { AppError } from "../../errors.ts";
import {
  destroySession,
  regenerateSession,
  requireUser,
  SESSION_COOKIE,
  saveSession,
  sessionFromCookie,
} from "../../sessions/middleware.ts";
import { emptyJsonBody, jsonBody, noQuery, parse } from "../validate.ts";

const credentials = z.strictObject({
  username: z
    .string()
    .min(3)
    .max(64)
    .regex(/^[A-Za-z0-9_.-]+$/, { error: "letters, digits, '_', '.' and '-' only" }),
  password: z.string().min(8).max(256),
});

const json = [noQuery, ...jsonBody("4kb")];

export function authRouter(deps: { primary: pg.Pool; session: RequestHandler; limits: RateLimits }) {
  const router = Router();

  router.post("/api/auth/register", ...json, async (req, res) => {
    const { username, password } = parse(credentials, req.body);
    // Counted after validation, so only requests that would cost a password hash count.
    await deps.limits.register.consume(clientIp(req));
    const user = await createUser(deps.primary, username, await hashPassword(password));
    res.status(201).json(user);
  });

  router.post("/api/auth/login", ...json, deps.session, async (req, res) => {
    const { username, password } = parse(credentials, req.body);
    const ip = clientIp(req);
    await deps.limits.login.begin(ip, username);
    const user = await findUserForLogin(deps.primary, username);
    const valid = await verifyPassword(password, user?.passwordHash ?? (await decoyHash()));
    if (user === undefined || !valid) {
      await deps.limits.login.failed(ip);
      throw new AppError(401, "invalid_credentials", "Wrong username or password.");
    }
    await deps.limits.login.succeeded(username);
    // A fresh id at login, so a session id planted before login is worth nothing after it.
    const session = await regenerateSession(req);
    session.userId = user.id;
    session.username = user.username;
    await saveSession(req);
    res.json({ id: user.id, username: user.username });
  });

  // JSON even with nothing to say: a cross-origin page cannot send it without a CORS
  // preflight (never granted), so no other site can log a user out (README.md, "Sessions,
  // cookies and cross-site requests").
  router.post("/api/auth/logout", noQuery, ...emptyJsonBody(), deps.session, async (req, res) => {
    if (req.session?.stored) await destroySession(req);
    res.clearCookie(SESSION_COOKIE, { path: "/" });
    res.status(204).end();
  });

  router.get("/api/me", noQuery, sessionFromCookie(deps.session), (req, res) => {
    res.json(requireUser(req));
  });

  return router;
}
