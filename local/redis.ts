// Redis for the local topology: one redis-server on loopback, no persistence (a disposable
// session store), logs to a file.

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { type Exposure, HOST, redisPing, waitUntil } from "./net.ts";
import { isRunning, type ProcessRecord, spawnDaemon, tail } from "./process.ts";

/**
 * What every local redis-server runs with: nothing saved to disk (a stack's Redis is thrown
 * away with it), in the foreground so its pid is ours, logging to stdout (our log file).
 */
export const THROWAWAY_SERVER_ARGS = [
  "--save",
  "",
  "--appendonly",
  "no",
  "--daemonize",
  "no",
  "--logfile",
  "",
  "--maxclients",
  "10000",
];

export function findRedisServer(env: NodeJS.ProcessEnv = process.env): string {
  const bin = env.REDIS_SERVER ?? "redis-server";
  try {
    execFileSync(bin, ["--version"], { stdio: "ignore" });
    return bin;
  } catch {
    throw new Error("redis-server not found: install it with `make deps` (apt: redis-server; brew: redis)");
  }
}

export function redisUrl(port: number): string {
  return `redis://${HOST}:${port}/0`;
}

export async function startRedis(options: {
  bin: string;
  port: number;
  dir: string;
  logFile: string;
  expose?: Exposure | null;
}): Promise<ProcessRecord> {
  mkdirSync(options.dir, { recursive: true });
  const { record } = spawnDaemon({
    command: options.bin,
    args: [
      "--port",
      String(options.port),
      "--bind",
      HOST,
      // Protected mode refuses every non-loopback client of a password-less Redis; the one
      // extra address is a host-local bridge that only this machine's pods reach.
      ...(options.expose ? [options.expose.address, "--protected-mode", "no"] : []),
      "--dir",
      options.dir,
      ...THROWAWAY_SERVER_ARGS,
    ],
    logFile: options.logFile,
  });
  await waitUntil(`redis on port ${options.port}`, () => redisPing(options.port), {
    timeoutMs: 15_000,
    abort: () =>
      isRunning(record) ? null : `exited during start-up; log ${options.logFile}:\n${tail(options.logFile)}`,
  });
  return record;
}
