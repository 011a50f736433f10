// The users table through auth/users.ts, on a real PostgreSQL primary with the app's schema:
// a new user gets an id, a taken name is a 409 (never a 500), any other database error is
// passed on, and login reads back exactly what was stored.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { createUser, findUserForLogin } from "../../src/auth/users.ts";
import { AppError } from "../../src/errors.ts";
import { postgresForTests, type Service } from "./services.ts";

describe("users", { timeout: 120_000 }, () => {
  let service: Service;
  let pool: pg.Pool;

  before(async () => {
    service = await postgresForTests("users");
    pool = new pg.Pool({ connectionString: service.url, max: 2 });
  });

  after(async () => {
    await pool?.end();
    await service?.stop();
  });

  const name = () => `user_${randomBytes(5).toString("hex")}`;

  test("creates a user with a numeric id, and finds it with its hash for login", async () => {
    const username = name();
    const created = await createUser(pool, username, "scrypt$stored-hash");
    assert.equal(typeof created.id, "number");
    assert.ok(created.id > 0);
    assert.deepEqual(created, { id: created.id, username });
    const found = await findUserForLogin(pool, username);
    assert.deepEqual(found, { id: created.id, username, passwordHash: "scrypt$stored-hash" });
    const next = await createUser(pool, name(), "h");
    assert.ok(next.id > created.id, "ids are numbers, not strings");
  });

  test("a taken username is 409 username_taken", async () => {
    const username = name();
    await createUser(pool, username, "first");
    const error = await createUser(pool, username, "second").then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof AppError, String(error));
    assert.deepEqual([error.status, error.code, error.message], [409, "username_taken", "That username is taken."]);
    assert.equal((await findUserForLogin(pool, username))?.passwordHash, "first", "the first user is kept");
  });

  test("any other database error is passed on as it is", async () => {
    const error = await createUser(pool, name(), null as unknown as string).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(!(error instanceof AppError), "not dressed up as a client error");
    assert.equal((error as { code?: string }).code, "23502", "PostgreSQL's not-null violation");
  });

  test("an unknown username finds nothing", async () => {
    assert.equal(await findUserForLogin(pool, name()), undefined);
  });
});
