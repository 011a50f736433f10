// Cross-site request forgery, as a browser on another site could try it (issue 15, item C):
// the session cookie is SameSite=Lax, and every cookie-authenticated write demands a JSON or
// NDJSON content type. A page on another origin can POST, with no CORS preflight, only
// application/x-www-form-urlencoded, multipart/form-data or text/plain; the app answers each
// with 415 before it acts, and it never grants the preflight another type would need. Logout
// too: it has nothing to say, yet it must be sent as JSON (an empty body or `{}`).
//
// The requests carry what a browser adds to a cross-site form post (Origin, Sec-Fetch-Site);
// the app's defence must not depend on them, so they are only there to be realistic.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, type Instance, jsonOf, registerAndLogin, startStack, stopStack, type Topology } from "./support.ts";

const crossSite = { origin: "https://evil.example", "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" };

// The three content types (and bodies) an HTML form or a no-preflight fetch can send.
const forms: [string, string, string][] = [
  ["urlencoded", "application/x-www-form-urlencoded", "title=forged&username=a&password=b&text=x"],
  [
    "multipart",
    "multipart/form-data; boundary=XyZ",
    '--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nforged\r\n--XyZ--\r\n',
  ],
  // text/plain is how a form smuggles a JSON-looking body: enctype="text/plain".
  ["text/plain", "text/plain", '{"title":"forged","ignore":"="}'],
];

// Every unsafe endpoint a browser would send the cookie to.
const endpoints = [
  "/api/items",
  "/api/items/import",
  "/api/auth/logout",
  "/api/auth/login",
  "/api/auth/register",
  "/api/work",
];

describe("cross-site form posts with a valid session cookie", { timeout: 120_000 }, () => {
  let stack: Topology | undefined;
  let instance: Instance;
  let victim: Client;

  before(async () => {
    stack = await startStack("csrf", { instances: 1, appEnv: { LOGIN_RATE_LIMIT_PER_MINUTE: "1000" } });
    instance = stack.instances[0] as Instance;
    victim = new Client(instance.url);
    await registerAndLogin(victim, "victim");
  });

  after(async () => {
    victim?.close();
    await stopStack(stack);
  });

  const mine = async () => {
    const reply = await victim.get("/api/items?mine=true");
    assert.equal(reply.status, 200, reply.text);
    return jsonOf(reply);
  };

  for (const path of endpoints)
    for (const [what, type, body] of forms)
      test(`POST ${path} as ${what} is refused with 415, and nothing happens`, async () => {
        const before = await mine();
        const reply = await victim.request(path, {
          method: "POST",
          body,
          headers: { "content-type": type, ...crossSite },
        });
        assert.equal(reply.status, 415, `${path} ${type}: ${reply.status} ${reply.text}`);
        assert.equal((jsonOf(reply) as { error: { code: string } }).error.code, "unsupported_media_type");
        assert.equal(reply.headers["access-control-allow-origin"], undefined, "no CORS grant");
        // Still logged in, and no item was written.
        assert.equal((await victim.get("/api/me")).status, 200, "the session survived");
        assert.deepEqual(await mine(), before, "no item was written");
      });

  test("a logout with no content type at all (a body-less cross-site POST) is refused too", async () => {
    const reply = await victim.request("/api/auth/logout", { method: "POST", headers: crossSite });
    assert.equal(reply.status, 415, reply.text);
    assert.equal((await victim.get("/api/me")).status, 200, "the session survived");
  });

  test("the CORS preflight a JSON post from another origin needs is never granted", async () => {
    for (const path of endpoints) {
      const reply = await victim.request(path, {
        method: "OPTIONS",
        headers: {
          origin: "https://evil.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type",
        },
      });
      assert.equal(reply.headers["access-control-allow-origin"], undefined, `${path}: ${reply.status}`);
      assert.equal(reply.headers["access-control-allow-headers"], undefined, `${path}: ${reply.status}`);
    }
  });

  test("logout as JSON works: an empty body or {}; anything else in it is a 400", async () => {
    const other = new Client(instance.url);
    try {
      await registerAndLogin(other, "leaver");
      const stray = await other.post("/api/auth/logout", { everywhere: true });
      assert.equal(stray.status, 400, stray.text);
      assert.equal((await other.get("/api/me")).status, 200, "a refused logout leaves the session");
      const empty = await other.request("/api/auth/logout", {
        method: "POST",
        body: "",
        headers: { "content-type": "application/json" },
      });
      assert.equal(empty.status, 204, empty.text);
      assert.equal((await other.get("/api/me")).status, 401, "logged out");

      await registerAndLogin(other, "leaver2");
      const braces = await other.post("/api/auth/logout", {});
      assert.equal(braces.status, 204, braces.text);
      assert.equal((await other.get("/api/me")).status, 401, "logged out");
    } finally {
      other.close();
    }
  });
});
