import type { Writable } from "node:stream";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import Cursor from "pg-cursor";

export type Item = { id: number; ownerId: number | null; title: string; body: string; createdAt: string };
export type NewItem = { title: string; body: string };

type ItemRow = { id: string; owner_id: string | null; title: string; body: string; created_at: string };

// created_at leaves PostgreSQL as a UTC timestamp in its ISO output ("2026-03-03 23:36:07.891999",
// fewer fraction digits when they are zero; the driver assumes the ISO DateStyle, as it always
// did). Parsing it into a Date only to print it again with toISOString was the largest single
// cost of a list after the network; rewriting the text costs a few slices.
const columns = "id, owner_id, title, body, (created_at at time zone 'UTC')::text as created_at";

/** "2026-03-03 23:36:07.891999" -> "2026-03-03T23:36:07.891Z", as Date.toISOString writes it. */
export function isoFromUtcTimestamp(text: string): string {
  const fraction = text.length > 20 ? text.slice(20, 23).padEnd(3, "0") : "000";
  return `${text.slice(0, 10)}T${text.slice(11, 19)}.${fraction}Z`;
}

export function toItem(row: ItemRow): Item {
  return {
    id: Number(row.id),
    ownerId: row.owner_id === null ? null : Number(row.owner_id),
    title: row.title,
    body: row.body,
    createdAt: isoFromUtcTimestamp(row.created_at),
  };
}

/** Inserts on the primary; the insert has committed when this returns. */
export async function insertItem(primary: pg.Pool, ownerId: number, item: NewItem): Promise<Item> {
  const { rows } = await primary.query<ItemRow>(
    `insert into items (owner_id, title, body) values ($1, $2, $3) returning ${columns}`,
    [ownerId, item.title, item.body],
  );
  return toItem(rows[0] as ItemRow);
}

/**
 * The WAL insert position, read after a commit: at or past the end of that commit's record.
 * pg_current_wal_lsn() would be the write position, which with synchronous_commit=off can
 * still be short of a commit that has returned, so a replica at it could lack the row.
 */
export async function currentLsn(primary: pg.Pool | pg.PoolClient): Promise<string> {
  const { rows } = await primary.query<{ lsn: string }>("select pg_current_wal_insert_lsn()::text as lsn");
  return (rows[0] as { lsn: string }).lsn;
}

export async function findItem(pool: pg.Pool, id: number): Promise<Item | undefined> {
  const { rows } = await pool.query<ItemRow>(`select ${columns} from items where id = $1`, [id]);
  return rows[0] && toItem(rows[0]);
}

/** Keyset pagination: stable and index-backed however deep the client pages. */
export async function listItems(
  pool: pg.Pool,
  options: { afterId: number; limit: number; ownerId?: number },
): Promise<Item[]> {
  const { rows } = await pool.query<ItemRow>(
    `select ${columns} from items
      where id > $1 and ($3::bigint is null or owner_id = $3)
      order by id limit $2`,
    [options.afterId, options.limit, options.ownerId ?? null],
  );
  return rows.map(toItem);
}

/**
 * Streams every item through a server-side cursor, `batchSize` rows at a time; the caller
 * pulls the next batch only when it is ready, so memory stays bounded by one batch.
 *
 * The cursor runs in an explicit transaction: a cursor lives only as long as its transaction,
 * and behind a transaction-mode pooler (PgBouncer) the server connection holding it stays this
 * client's only while a transaction is open. pg-cursor alone happens to keep it (it sends no
 * Sync until it closes, so PgBouncer 1.18 never sees the server idle), but that is a detail of
 * its protocol use; the transaction makes it a guarantee.
 */
export async function* streamItems(
  pool: pg.Pool,
  options: { ownerId?: number; batchSize: number },
): AsyncGenerator<Item[]> {
  const client = await pool.connect();
  try {
    await client.query("begin read only");
  } catch (error) {
    client.release(true);
    throw error;
  }
  const cursor = client.query(
    new Cursor<ItemRow>(`select ${columns} from items where ($1::bigint is null or owner_id = $1) order by id`, [
      options.ownerId ?? null,
    ]),
  );
  let failed = false;
  try {
    while (true) {
      const rows = await cursor.read(options.batchSize);
      if (rows.length === 0) return;
      yield rows.map(toItem);
    }
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    await cursor.close().catch(() => undefined);
    if (!failed) await client.query("commit").catch(() => (failed = true));
    // A connection whose cursor failed mid-stream is not trusted back into the pool (closing
    // it also ends its transaction).
    client.release(failed);
  }
}

/**
 * COPY into items for one owner: the caller writes rows made by `copyRow` and ends the stream.
 * COPY is one statement, so it lands whole or not at all, and it streams: the server takes
 * rows as they come, with backpressure, instead of one large parameter list per batch.
 */
export function copyItemsIn(client: pg.PoolClient): Writable {
  return client.query(copyFrom("copy items (owner_id, title, body) from stdin"));
}

// COPY's text format: one row a line, columns split by tabs; backslash escapes the rest.
const copyEscapes: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };
const needsEscape = /[\\\n\r\t]/g;

export function copyRow(ownerId: number, item: NewItem): string {
  const escaped = (text: string) => text.replace(needsEscape, (c) => copyEscapes[c] ?? c);
  return `${ownerId}\t${escaped(item.title)}\t${escaped(item.body)}\n`;
}
