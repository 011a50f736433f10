// The login flow as a client sees it, on the real stack (Redis sessions, PostgreSQL users):
// - a wrong password is refused with 401, with the very body an unknown user gets, so the
//   answer does not tell which usernames exist;
// - login issues a fresh session id, and the id the client had before is dead in Redis;
// - logout deletes the session from Redis, so a copy of the old cookie is worth nothing;
// - the cookie's flags: HttpOnly, SameSite=Lax, Path=/, Max-Age from SESSION_TTL_SECONDS,
//   and Secure exactly when the request arrived over TLS (COOKIE_SECURE=auto trusts
//   X-Forwarded-Proto from the one proxy hop in front).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { Client, type Instance, jsonOf, registerAndLogin, startStack, stopStack, type Topology } from "./support.ts";

const SESSION_TTL_SECONDS = 3600;

/** The session id inside a signed `sid` cookie value (`s:<id>.<signature>`, URL-encoded). */
function sessionId(cookie: string | undefined): string {
  const match = /^s:([^.]+)\./.exec(decodeURIComponent(cookie ?? ""));
  assert.ok(match, `a signed session cookie (got ${cookie})`);
  return match[1] as string;
}

function setCookieLine(headers: Record<string, unknown>): string {
  const lines = (headers["set-cookie"] as string[] | undefined) ?? [];
  const sid = lines.filter((l) => l.startsWith("sid="));
  assert.equal(sid.length, 1, `one sid cookie set (got ${JSON.stringify(lines)})`);
  return sid[0] as string;
}

const attributes = (line: string) =>
  line
    .split(";")
    .slice(1)
    .map((a) => a.trim().split("=")[0]?.toLowerCase());

describe("authentication", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let redis: Redis;
  let instance: Instance;

  before(async () => {
    stack = await startStack("auth", {
      instances: 1,
      appEnv: { SESSION_TTL_SECONDS: String(SESSION_TTL_SECONDS), LOGIN_RATE_LIMIT_PER_MINUTE: "1000" },
    });
    redis = new Redis(stack.redisUrl);
    instance = stack.instances[0] as Instance;
  });

  after(async () => {
    redis?.disconnect();
    await stopStack(stack);
  });

  test("a wrong password gets 401 with the same body as an unknown user, and no session", async () => {
    const client = new Client(instance.url);
    const { username, password } = await registerAndLogin(client, "victim");
    const stranger = new Client(instance.url);
    const wrong = await stranger.post("/api/auth/login", { username, password: `${password}x` });
    const unknown = await stranger.post("/api/auth/login", {
      username: `nobody_${randomBytes(4).toString("hex")}`,
      password,
    });
    const right = await stranger.post("/api/auth/login", { username, password });
    client.close();
    stranger.close();

    assert.equal(wrong.status, 401, wrong.text);
    assert.deepEqual(jsonOf(wrong), {
      error: { code: "invalid_credentials", message: "Wrong username or password." },
    });
    assert.equal(unknown.status, 401, unknown.text);
    assert.equal(unknown.text, wrong.text, "an unknown user gets the same body, byte for byte");
    assert.equal(wrong.headers["set-cookie"], undefined, "a failed login sets no cookie");
    assert.equal(unknown.headers["set-cookie"], undefined);
    assert.equal(right.status, 200, "the right password still works after the failures");
  });

  test("login issues a new session id; the id from before is gone from Redis", async () => {
    const client = new Client(instance.url);
    const { username, password } = await registerAndLogin(client, "fixation");
    const first = sessionId(client.cookies.get("sid"));
    assert.equal(await redis.exists(`sess:${first}`), 1, "the first session is in Redis");

    // Log in again while presenting the first session's cookie (as a planted id would be).
    const again = await client.post("/api/auth/login", { username, password });
    assert.equal(again.status, 200, again.text);
    const second = sessionId(client.cookies.get("sid"));
    assert.notEqual(second, first, "a fresh session id at login");
    assert.equal(await redis.exists(`sess:${first}`), 0, "the session presented at login is destroyed");
    const stored = JSON.parse((await redis.get(`sess:${second}`)) ?? "null") as { username?: string } | null;
    assert.equal(stored?.username, username, "the new session holds the user");

    const withOldCookie = new Client(instance.url);
    withOldCookie.cookies.set("sid", encodeURIComponent(`s:${first}.forged`));
    assert.equal((await withOldCookie.get("/api/me")).status, 401);
    client.close();
    withOldCookie.close();
  });

  test("logout deletes the session from Redis; a copy of the cookie no longer works", async () => {
    const client = new Client(instance.url);
    const user = await registerAndLogin(client, "leaver");
    const cookie = client.cookies.get("sid") as string;
    const id = sessionId(cookie);
    assert.equal(await redis.exists(`sess:${id}`), 1);
    assert.deepEqual(jsonOf(await client.get("/api/me")), { id: user.id, username: user.username });

    const logout = await client.post("/api/auth/logout", {});
    assert.equal(logout.status, 204);
    assert.match(setCookieLine(logout.headers), /^sid=;.*Expires=Thu, 01 Jan 1970/, "the cookie is cleared");
    assert.equal(await redis.exists(`sess:${id}`), 0, "the session is gone from Redis");

    const copy = new Client(instance.url);
    copy.cookies.set("sid", cookie);
    const me = await copy.get("/api/me");
    assert.equal(me.status, 401, "the old cookie no longer authenticates");
    assert.equal((jsonOf(me) as { error: { code: string } }).error.code, "not_authenticated");
    client.close();
    copy.close();
  });

  test("the session cookie is HttpOnly, SameSite=Lax, lives SESSION_TTL_SECONDS, and is Secure only over TLS", async () => {
    const plain = new Client(instance.url);
    await registerAndLogin(plain, "flags");
    const overTls = new Client(instance.url);
    const { username, password } = await registerAndLogin(overTls, "tls", { "x-forwarded-proto": "https" });
    const login = await overTls.post(
      "/api/auth/login",
      { username, password },
      { headers: { "x-forwarded-proto": "https" } },
    );
    const loginPlain = await plain.post("/api/auth/login", { username, password });
    plain.close();
    overTls.close();

    const tlsLine = setCookieLine(login.headers);
    const plainLine = setCookieLine(loginPlain.headers);
    for (const line of [tlsLine, plainLine]) {
      assert.match(line, /; Path=\/(;|$)/, line);
      assert.match(line, /; HttpOnly(;|$)/, line);
      assert.match(line, /; SameSite=Lax(;|$)/, line);
      const expires = /; Expires=([^;]+)/.exec(line)?.[1];
      assert.ok(expires, `an expiry (${line})`);
      const seconds = (Date.parse(expires) - Date.parse(String(login.headers.date))) / 1000;
      assert.ok(
        Math.abs(seconds - SESSION_TTL_SECONDS) <= 5,
        `expires SESSION_TTL_SECONDS after the answer (${seconds} s)`,
      );
      assert.deepEqual(
        attributes(line).filter((a) => a !== "secure"),
        ["path", "expires", "httponly", "samesite"],
      );
    }
    assert.match(tlsLine, /; Secure(;|$)/, "COOKIE_SECURE=auto: Secure behind a TLS-terminating proxy");
    assert.doesNotMatch(plainLine, /Secure/, "COOKIE_SECURE=auto: not Secure over plain HTTP");
  });
});
