import { Counter } from "prom-client";
import type { Metrics } from "../metrics.ts";
import type { RedisClient } from "../redis.ts";
import { isLsn } from "./lsn.ts";

// Read-your-writes, per user: the primary's WAL position after a user's latest write, kept in
// Redis under the user's id so that every device and every instance sees it, and so that a
// login (which replaces the session) keeps it.
//
// Two writes by one user can finish on two instances in either order. The position is only
// ever raised, inside Redis, so the later-finishing but earlier write can never store the
// older position over the newer one.
//
// On a Redis Cluster: the script declares its one key in KEYS (numberOfKeys 1), which is what
// lets the Cluster client route it to the key's slot; it must never touch a key it was not
// given. No hash tag: users' positions spread over the shards.

/** What a read must see: nothing in particular, everything up to a WAL position, or unknown. */
export type ReadNeed = { kind: "any" } | { kind: "after"; lsn: string } | { kind: "unknown" };

export type Watermarks = {
  /** Raises the user's position to `lsn` unless it is already at or past it. */
  raise(userId: number, lsn: string): Promise<void>;
  /** What a read by this user must see; "unknown" when Redis does not answer. */
  need(userId: number): Promise<ReadNeed>;
  /** Counts and explains a committed write whose position could not be kept. */
  lost(reason: string): void;
};

// Compares the two hex halves of each position as numbers; each half fits a double exactly.
const raiseScript = `
local function parse(lsn)
  local slash = string.find(lsn, "/", 1, true)
  return tonumber(string.sub(lsn, 1, slash - 1), 16), tonumber(string.sub(lsn, slash + 1), 16)
end
local current = redis.call("GET", KEYS[1])
if current then
  local ch, cl = parse(current)
  local nh, nl = parse(ARGV[1])
  if ch > nh or (ch == nh and cl >= nl) then
    redis.call("PEXPIRE", KEYS[1], ARGV[2])
    return 0
  end
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return 1
`;

type WithRaise = RedisClient & { nodescaleRaiseLsn(key: string, lsn: string, ttlMs: number): Promise<number> };

export const watermarkKey = (userId: number) => `rw:user:${userId}`;

/**
 * `ttlMs`: how long a position matters. Once a replica is within REPLICA_MAX_LAG_MS of the
 * primary it has everything committed longer ago than that, so a position older than the lag
 * bound (plus a margin for the poll) routes nothing and may go.
 */
export function createWatermarks(redis: RedisClient, options: { ttlMs: number }, metrics: Metrics): Watermarks {
  if (!("nodescaleRaiseLsn" in redis)) redis.defineCommand("nodescaleRaiseLsn", { numberOfKeys: 1, lua: raiseScript });
  const client = redis as WithRaise;
  const lostWrites = new Counter({
    name: "nodescale_read_your_writes_lost_total",
    help: "Committed writes answered without keeping their WAL position (the writer's next reads may be stale).",
    labelNames: ["reason"] as const,
    registers: [metrics.registry],
  });
  return {
    async raise(userId, lsn) {
      if (!isLsn(lsn)) throw new Error(`not a WAL position: ${JSON.stringify(lsn)}`);
      await client.nodescaleRaiseLsn(watermarkKey(userId), lsn, options.ttlMs);
    },
    async need(userId) {
      try {
        const lsn = await redis.get(watermarkKey(userId));
        if (lsn === null) return { kind: "any" };
        return isLsn(lsn) ? { kind: "after", lsn } : { kind: "unknown" };
      } catch {
        return { kind: "unknown" };
      }
    },
    lost(reason) {
      lostWrites.inc({ reason });
    },
  };
}
