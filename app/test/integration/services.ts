// Real Redis and PostgreSQL for tests that need one service and nothing else (no app, no
// nginx), so that they start in well under a second, or not at all: `make mutation` runs such
// tests once per mutant and starts the services once for all of them, passing them in
// TEST_REDIS_URL and TEST_DATABASE_URL (the latter with the app's schema migrated).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, releasePorts } from "../../../local/net.ts";
import { stopProcess } from "../../../local/process.ts";
import { findRedisServer, redisUrl, startRedis } from "../../../local/redis.ts";
import { startTestStack, teardown } from "../../../local/test/helpers.ts";

export type Service = { url: string; stop(): Promise<void> };

/** TEST_REDIS_URL when set; otherwise a redis-server of its own on a leased port. */
export async function redisForTests(): Promise<Service> {
  const given = process.env.TEST_REDIS_URL;
  if (given) return { url: given, stop: async () => undefined };
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "nodescale-test-redis-"));
  const record = await startRedis({ bin: findRedisServer(), port, dir, logFile: join(dir, "redis.log") });
  return {
    url: redisUrl(port),
    async stop() {
      await stopProcess(record, "SIGTERM", 10_000);
      rmSync(dir, { recursive: true, force: true });
      releasePorts([port]);
    },
  };
}

/** TEST_DATABASE_URL when set; otherwise the migrated primary of a one-instance local stack. */
export async function postgresForTests(prefix: string): Promise<Service> {
  const given = process.env.TEST_DATABASE_URL;
  if (given) return { url: given, stop: async () => undefined };
  const stack = await startTestStack(prefix, { instances: 1, appEnv: { LOG_LEVEL: "warn" } });
  return { url: stack.databaseUrl, stop: () => teardown(stack) };
}
