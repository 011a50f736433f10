// Sessions against a real Redis, with nothing else running: the Store over ioredis (what it
// writes, for how long, what it reads back, what a Redis failure becomes), and the session
// middleware in an Express app of its own (cookie flags for each COOKIE_SECURE, login with a
// fresh id, logout, the optional session of reads when Redis is away).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import express from "express";
import { Redis } from "ioredis";
import { AppError } from "../../src/errors.ts";
import { errorHandler } from "../../src/http/errors.ts";
import { createLogger } from "../../src/logger.ts";
import {
  createSessionMiddleware,
  currentUser,
  destroySession,
  optionalSession,
  regenerateSession,
  requireUser,
  saveSession,
  sessionUnknown,
} from "../../src/sessions/middleware.ts";
import { RedisSessionStore } from "../../src/sessions/store.ts";
import { redisForTests, type Service } from "./services.ts";

/** A client of a Redis that is not there: every command fails at once. */
function awayRedis(): Redis {
  const client = new Redis({ port: 9, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  client.on("error", () => undefined);
  return client;
}

const silent = createLogger({ level: "silent", instance: "session-test" });

const unique = () => randomBytes(6).toString("hex");

describe("RedisSessionStore", { timeout: 60_000 }, () => {
  let service: Service;
  let redis: Redis;
  let store: RedisSessionStore;
  let prefix: string;

  before(async () => {
    service = await redisForTests();
    redis = new Redis(service.url);
    prefix = `test-${unique()}:`;
    store = new RedisSessionStore({ redis, ttlSeconds: 600, prefix });
  });

  after(async () => {
    redis?.disconnect();
    await service?.stop();
  });

  test("stores a session as JSON that expires with its cookie, reads it back, destroys it", async () => {
    const expires = new Date(Date.now() + 120_000);
    await store.set("abc", { userId: 7, username: "ada", expires }, { secure: true });
    const ttl = await redis.ttl(`${prefix}abc`);
    assert.ok(ttl > 100 && ttl <= 120, `TTL follows the cookie's expiry (got ${ttl} s)`);
    // express-session's layout, so that the version before this store reads it (and back).
    assert.deepEqual(JSON.parse((await redis.get(`${prefix}abc`)) ?? "null"), {
      cookie: {
        originalMaxAge: 600_000,
        expires: expires.toISOString(),
        secure: true,
        httpOnly: true,
        path: "/",
        sameSite: "lax",
      },
      userId: 7,
      username: "ada",
    });
    assert.deepEqual(await store.get("abc"), { userId: 7, username: "ada", expires });
    await store.destroy("abc");
    assert.equal(await redis.exists(`${prefix}abc`), 0);
    assert.equal(await store.get("abc"), null);
  });

  test("reads a session that express-session wrote", async () => {
    const expires = new Date(Date.now() + 60_000).toISOString();
    await redis.set(
      `${prefix}old`,
      JSON.stringify({
        cookie: { originalMaxAge: 60_000, expires, secure: false, httpOnly: true, path: "/", sameSite: "lax" },
        userId: 3,
        username: "bob",
      }),
    );
    assert.deepEqual(await store.get("old"), { userId: 3, username: "bob", expires: new Date(expires) });
  });

  test("gives an expiry already past the configured TTL, and rounds a near one up to whole seconds", async () => {
    await store.set("past", { expires: new Date(Date.now() - 5000) }, { secure: false });
    const pastTtl = await redis.ttl(`${prefix}past`);
    assert.ok(pastTtl > 590 && pastTtl <= 600, `an expiry in the past gets ttlSeconds (got ${pastTtl} s)`);
    await store.set("soon", { expires: new Date(Date.now() + 1500) }, { secure: false });
    const soonTtl = await redis.pttl(`${prefix}soon`);
    assert.ok(soonTtl > 1000 && soonTtl <= 2000, `1.5 s left is rounded up to 2 s (PTTL ${soonTtl} ms)`);
  });

  test("reads a value that is not a session as no session", async () => {
    for (const [key, value] of [
      ["garbage", "{not json"],
      ["number", "42"],
      ["null", "null"],
    ]) {
      await redis.set(`${prefix}${key}`, value as string);
      assert.equal(await store.get(key as string), null, value);
    }
  });

  test("uses the sess: prefix by default", async () => {
    const plain = new RedisSessionStore({ redis, ttlSeconds: 60 });
    const id = unique();
    await plain.set(id, { expires: new Date(Date.now() + 60_000) }, { secure: false });
    assert.equal(await redis.exists(`sess:${id}`), 1);
    await plain.destroy(id);
    assert.equal(await redis.exists(`sess:${id}`), 0);
  });

  test("turns a Redis failure into 503 redis_unavailable on every operation", async () => {
    const away = awayRedis();
    const broken = new RedisSessionStore({ redis: away, ttlSeconds: 60 });
    for (const operation of [
      () => broken.get("x"),
      () => broken.set("x", { expires: new Date() }, { secure: false }),
      () => broken.destroy("x"),
    ]) {
      const error = await operation().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof AppError, String(error));
      assert.deepEqual([error.status, error.code], [503, "redis_unavailable"]);
      assert.ok(error.cause, "the cause is kept for the logs");
    }
    away.disconnect();
  });
});

describe("session middleware", { timeout: 60_000 }, () => {
  let service: Service;
  let redis: Redis;

  before(async () => {
    service = await redisForTests();
    redis = new Redis(service.url);
  });

  after(async () => {
    redis?.disconnect();
    await service?.stop();
  });

  /** An Express app with the session middleware and the routes the app builds on it. */
  async function app(cookieSecure: "auto" | "true" | "false", client: Redis = redis) {
    const prefix = `mw-${unique()}:`;
    const store = new RedisSessionStore({ redis: client, ttlSeconds: 120, prefix });
    const session = createSessionMiddleware(
      {
        secrets: ["first-secret-0123456789", "old-secret-0123456789"],
        ttlSeconds: 120,
        cookieSecure,
        loginRateLimitPerMinute: 10,
      },
      store,
    );
    const a = express();
    a.set("trust proxy", 1);
    a.use((req, _res, next) => {
      req.log = silent;
      next();
    });
    a.post("/login", session, async (req, res) => {
      const session = await regenerateSession(req);
      session.userId = 42;
      session.username = "ada";
      await saveSession(req);
      res.json({ sid: session.id });
    });
    a.get("/me", session, (req, res) => {
      res.json(requireUser(req));
    });
    a.get("/optional", optionalSession(session), (req, res) => {
      res.json({ user: currentUser(req) ?? null, hasSession: req.session !== undefined, unknown: sessionUnknown(req) });
    });
    a.post("/logout", session, async (req, res) => {
      await destroySession(req);
      res.status(204).end();
    });
    a.use(errorHandler);
    const server: Server = createServer(a);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      url,
      prefix,
      close: () => new Promise((resolve) => server.close(resolve)),
    };
  }

  const sidOf = (response: Response) => response.headers.getSetCookie().find((c) => c.startsWith("sid="));

  test("login sets one signed sid cookie: HttpOnly, SameSite=Lax, Path=/, 120 s; nothing is set otherwise", async () => {
    const a = await app("false");
    try {
      const login = await fetch(`${a.url}/login`, { method: "POST", headers: { "x-forwarded-proto": "https" } });
      const cookie = sidOf(login);
      assert.ok(cookie, "a sid cookie");
      const { sid } = (await login.json()) as { sid: string };
      assert.match(cookie, new RegExp(`^sid=s%3A${sid}\\.[^;]+; Path=/; Expires=[^;]+; HttpOnly; SameSite=Lax$`));
      const expires = Date.parse(/Expires=([^;]+)/.exec(cookie)?.[1] ?? "");
      const answered = Date.parse(login.headers.get("date") ?? "");
      assert.ok(Math.abs(expires - answered - 120_000) <= 2000, "expires after ttlSeconds");
      assert.equal(await redis.exists(`${a.prefix}${sid}`), 1);

      const value = cookie.split(";")[0] as string;
      const me = await fetch(`${a.url}/me`, { headers: { cookie: value } });
      assert.deepEqual(await me.json(), { id: 42, username: "ada" });
      assert.equal(sidOf(me), undefined, "an unchanged session sets no cookie (no rolling, no touch)");
    } finally {
      await a.close();
    }
  });

  test("COOKIE_SECURE: auto follows the request's TLS, true always (a TLS front door may forward plain HTTP), false never", async () => {
    const secure = async (mode: "auto" | "true" | "false", https: boolean) => {
      const a = await app(mode);
      try {
        const login = await fetch(`${a.url}/login`, {
          method: "POST",
          headers: https ? { "x-forwarded-proto": "https" } : {},
        });
        const cookie = sidOf(login);
        return cookie === undefined ? "none" : /; Secure/.test(cookie) ? "secure" : "plain";
      } finally {
        await a.close();
      }
    };
    assert.equal(await secure("auto", true), "secure");
    assert.equal(await secure("auto", false), "plain");
    assert.equal(await secure("true", true), "secure");
    assert.equal(await secure("true", false), "secure");
    assert.equal(await secure("false", true), "plain");
  });

  test("login again issues a new id and drops the old session; logout deletes it", async () => {
    const a = await app("false");
    try {
      const first = await fetch(`${a.url}/login`, { method: "POST" });
      const { sid: firstId } = (await first.json()) as { sid: string };
      const firstCookie = (sidOf(first) ?? "").split(";")[0] as string;
      const second = await fetch(`${a.url}/login`, { method: "POST", headers: { cookie: firstCookie } });
      const { sid: secondId } = (await second.json()) as { sid: string };
      assert.notEqual(secondId, firstId);
      assert.equal(await redis.exists(`${a.prefix}${firstId}`), 0, "the session presented at login is gone");
      const secondCookie = (sidOf(second) ?? "").split(";")[0] as string;
      const out = await fetch(`${a.url}/logout`, { method: "POST", headers: { cookie: secondCookie } });
      assert.equal(out.status, 204);
      assert.equal(await redis.exists(`${a.prefix}${secondId}`), 0, "logout deletes the session");
      const me = await fetch(`${a.url}/me`, { headers: { cookie: secondCookie } });
      assert.equal(me.status, 401);
      assert.deepEqual(await me.json(), { error: { code: "not_authenticated", message: "Log in first." } });
    } finally {
      await a.close();
    }
  });

  test("a read with an optional session goes on anonymously when Redis is away; a required one answers 503", async () => {
    const up = await app("false");
    const login = await fetch(`${up.url}/login`, { method: "POST" });
    const cookie = (sidOf(login) ?? "").split(";")[0] as string;
    const known = await fetch(`${up.url}/optional`, { headers: { cookie } });
    assert.deepEqual(await known.json(), { user: { id: 42, username: "ada" }, hasSession: true, unknown: false });
    await up.close();

    const away = awayRedis();
    const down = await app("false", away);
    try {
      const optional = await fetch(`${down.url}/optional`, { headers: { cookie } });
      assert.equal(optional.status, 200);
      // A cookie without its session: whose it is cannot be known (reads go to the primary).
      assert.deepEqual(await optional.json(), { user: null, hasSession: false, unknown: true });
      const required = await fetch(`${down.url}/me`, { headers: { cookie } });
      assert.equal(required.status, 503);
      assert.equal(required.headers.get("retry-after"), "1");
      assert.equal(((await required.json()) as { error: { code: string } }).error.code, "redis_unavailable");
      const anonymous = await fetch(`${down.url}/optional`);
      // No cookie: anonymous, and no throwaway session is built (Redis is not even asked).
      assert.deepEqual(await anonymous.json(), { user: null, hasSession: false, unknown: false });
    } finally {
      await down.close();
      away.disconnect();
    }
  });

  test("optionalSession passes on an error that is not Redis being away", async () => {
    const failing = optionalSession((_req, _res, next) => next(new Error("boom")));
    const passed = await new Promise<unknown>((resolve) =>
      failing({ headers: { cookie: "sid=s%3Aany" } } as never, {} as never, (error?: unknown) => resolve(error)),
    );
    assert.equal((passed as Error).message, "boom");
    const other = optionalSession((_req, _res, next) => next(new AppError(503, "database_unavailable", "x")));
    const passedOn = await new Promise<unknown>((resolve) =>
      other({ headers: { cookie: "sid=s%3Aany" } } as never, {} as never, (error?: unknown) => resolve(error)),
    );
    assert.equal((passedOn as AppError).code, "database_unavailable");
  });

  test("currentUser needs both the id and the name", () => {
    const req = (session: unknown) => ({ session }) as never;
    assert.deepEqual(currentUser(req({ userId: 1, username: "a" })), { id: 1, username: "a" });
    assert.equal(currentUser(req({ userId: 1 })), undefined);
    assert.equal(currentUser(req({ username: "a" })), undefined);
    assert.equal(currentUser(req(undefined)), undefined);
    assert.throws(() => requireUser(req({ userId: 1 })), { code: "not_authenticated", status: 401 });
  });
});
