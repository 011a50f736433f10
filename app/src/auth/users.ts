import type pg from "pg";
import { AppError } from "../errors.ts";

export type User = { id: number; username: string };

const UNIQUE_VIOLATION = "23505";

export async function createUser(primary: pg.Pool, username: string, passwordHash: string): Promise<User> {
  try {
    const { rows } = await primary.query<{ id: string; username: string }>(
      "insert into users (username, password_hash) values ($1, $2) returning id, username",
      [username, passwordHash],
    );
    const row = rows[0] as { id: string; username: string };
    return { id: Number(row.id), username: row.username };
  } catch (error) {
    if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
      throw new AppError(409, "username_taken", "That username is taken.");
    }
    throw error;
  }
}

// Credentials are read from the primary: a user who has just registered must be able to log
// in at once, whatever a replica has replayed.
export async function findUserForLogin(
  primary: pg.Pool,
  username: string,
): Promise<(User & { passwordHash: string }) | undefined> {
  const { rows } = await primary.query<{ id: string; username: string; password_hash: string }>(
    "select id, username, password_hash from users where username = $1",
    [username],
  );
  const row = rows[0];
  return row && { id: Number(row.id), username: row.username, passwordHash: row.password_hash };
}
