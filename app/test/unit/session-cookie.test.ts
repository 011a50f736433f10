// The session cookie's value (app/src/sessions/cookie.ts): the format express-session wrote,
// so sessions outlive the switch away from it, and a signature checked under every secret.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cookieValue,
  createSessionIdReader,
  SESSION_COOKIE,
  sessionIdFrom,
  signSessionId,
} from "../../src/sessions/cookie.ts";

const current = "current-secret-0123456789";
const retiring = "retiring-secret-0123456789";
const header = (value: string) => `theme=dark; ${SESSION_COOKIE}=${encodeURIComponent(value)}; lang=en`;

describe("the session cookie", () => {
  // What express-session 1.19 wrote: `s:` + cookie-signature 1.2.2's sign(id, secret), taken
  // from that package with these inputs on 2026-12-07.
  const expressSessionSigned = {
    abc: "s:abc.931YUu3uR+g1DEMlT/eCqazWGFNYo3ySTzi+e+3N63E",
    "id-3": "s:id-3.qQCpqPORFXD1bP/AUtbp9ok8G86ammXbUqzfjcrccmI",
  };

  it("signs as express-session did: s:<id>.<HMAC-SHA256, base64, unpadded>", () => {
    assert.equal(signSessionId("abc", current), expressSessionSigned.abc);
    assert.equal(signSessionId("id-3", current), expressSessionSigned["id-3"]);
  });

  it("reads the id back under the signing secret or a retiring one", () => {
    assert.equal(sessionIdFrom(header(signSessionId("id-1", current)), [current, retiring]), "id-1");
    assert.equal(sessionIdFrom(header(signSessionId("id-2", retiring)), [current, retiring]), "id-2");
    assert.equal(sessionIdFrom(header(expressSessionSigned["id-3"]), [current]), "id-3");
  });

  it("refuses a value signed with another secret, a changed id or signature, or no signature", () => {
    const good = signSessionId("victim", current);
    for (const value of [
      signSessionId("victim", "some-other-secret-012345"),
      good.replace("victim", "victin"),
      `${good.slice(0, -1)}${good.endsWith("A") ? "B" : "A"}`,
      `${good}x`,
      good.slice(0, -1),
      "s:victim",
      "victim",
      "s:.",
      "",
    ]) {
      assert.equal(sessionIdFrom(header(value), [current, retiring]), undefined, value);
    }
  });

  it("takes no id from a missing cookie, a malformed encoding, or a cookie whose name only ends in sid", () => {
    assert.equal(sessionIdFrom(undefined, [current]), undefined);
    assert.equal(sessionIdFrom("theme=dark", [current]), undefined);
    assert.equal(sessionIdFrom(`${SESSION_COOKIE}=%E0%A4%A`, [current]), undefined);
    assert.equal(
      sessionIdFrom(`x${SESSION_COOKIE}=${encodeURIComponent(signSessionId("a", current))}`, [current]),
      undefined,
    );
  });

  it("reads the first cookie of a name, trimmed, still encoded", () => {
    assert.equal(cookieValue("a=1; b=2;  c = 3 ", "c"), "3");
    assert.equal(cookieValue("a=1;a=2", "a"), "1");
    assert.equal(cookieValue("ab=1", "a"), undefined);
    assert.equal(cookieValue("a=s%3Ax", "a"), "s%3Ax");
    assert.equal(cookieValue("flag; a=1", "a"), "1");
    assert.equal(cookieValue(undefined, "a"), undefined);
  });

  it("remembers what verified, never what did not, across a cache that starts over", () => {
    const read = createSessionIdReader([current]);
    const good = header(signSessionId("kept", current));
    assert.equal(read(good), "kept");
    assert.equal(read(good), "kept", "the second time from memory");
    const forged = header(signSessionId("kept", "some-other-secret-012345"));
    assert.equal(read(forged), undefined);
    assert.equal(read(forged), undefined, "a failed value is checked again, not remembered as anything");
    // Past 10,000 values the cache starts over, and what it held still verifies.
    for (let i = 0; i < 10_001; i++) assert.equal(read(header(signSessionId(`id-${i}`, current))), `id-${i}`);
    assert.equal(read(good), "kept");
    assert.equal(read(undefined), undefined);
    assert.equal(read("theme=dark"), undefined);
  });
});
