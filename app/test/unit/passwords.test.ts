// Password hashing: scrypt with the parameters written into the stored hash, compared in
// constant time; anything that is not such a hash never verifies.

import assert from "node:assert/strict";
import { scryptSync } from "node:crypto";
import { describe, it } from "node:test";
import { decoyHash, hashPassword, verifyPassword } from "../../src/auth/passwords.ts";

describe("passwords", () => {
  it("stores scheme, parameters, a 16-byte salt and a 32-byte key", async () => {
    const stored = await hashPassword("correct horse battery staple");
    const [scheme, n, r, p, salt, key, ...rest] = stored.split("$");
    assert.deepEqual([scheme, n, r, p, rest.length], ["scrypt", "16384", "8", "5", 0]);
    assert.equal(Buffer.from(salt ?? "", "base64").length, 16);
    assert.equal(Buffer.from(key ?? "", "base64").length, 32);
    // The key is scrypt of the NFKC form with exactly those parameters.
    const expected = scryptSync("correct horse battery staple", Buffer.from(salt ?? "", "base64"), 32, {
      N: 16384,
      r: 8,
      p: 5,
      maxmem: 64 * 1024 * 1024,
    });
    assert.equal(key, expected.toString("base64"));
  });

  it("verifies the right password and refuses a wrong one", async () => {
    const stored = await hashPassword("s3cret-password");
    assert.equal(await verifyPassword("s3cret-password", stored), true);
    assert.equal(await verifyPassword("s3cret-passwore", stored), false);
    assert.equal(await verifyPassword("", stored), false);
  });

  it("salts every hash", async () => {
    const [a, b] = await Promise.all([hashPassword("same"), hashPassword("same")]);
    assert.notEqual(a, b);
    assert.equal(await verifyPassword("same", b), true);
  });

  it("compares the NFKC form, so one password typed two ways is the same", async () => {
    const composed = "caf\u00e9";
    const decomposed = "cafe\u0301";
    assert.equal(await verifyPassword(decomposed, await hashPassword(composed)), true);
  });

  it("verifies against the parameters stored in the hash, not today's", async () => {
    const salt = Buffer.alloc(16, 7);
    const key = scryptSync("older", salt, 32, { N: 1024, r: 4, p: 1 });
    const stored = ["scrypt", 1024, 4, 1, salt.toString("base64"), key.toString("base64")].join("$");
    assert.equal(await verifyPassword("older", stored), true);
    assert.equal(await verifyPassword("newer", stored), false);
  });

  it("never verifies against something that is not a scrypt hash", async () => {
    const good = await hashPassword("pw");
    const [, n, r, p, salt, key] = good.split("$");
    for (const stored of [
      "",
      "plaintext",
      `bcrypt$${n}$${r}$${p}$${salt}$${key}`,
      `scrypt$${n}$${r}$${p}$${salt}`,
      `scrypt$${n}$${r}$${p}`,
      `scrypt$${n}$${r}$${p}$${salt}$${Buffer.alloc(16).toString("base64")}`,
    ])
      assert.equal(await verifyPassword("pw", stored), false, JSON.stringify(stored));
  });

  it("keeps one decoy hash, which no password verifies against by chance", async () => {
    const decoy = await decoyHash();
    assert.equal(await decoyHash(), decoy, "made once");
    assert.match(decoy, /^scrypt\$16384\$8\$5\$/);
    assert.equal(await verifyPassword("password", decoy), false);
  });
});
