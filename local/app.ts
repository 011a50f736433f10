// The reference app as plain processes: `node <entry>` with cwd = app/, the environment
// contract of DESIGN.md, logs to a file, ready when GET /readyz answers 200.

import { appendFileSync, existsSync } from "node:fs";
import { HOST, httpRequest, waitUntil } from "./net.ts";
import { isRunning, type ProcessRecord, run, spawnDaemon, tail } from "./process.ts";

export interface AppProcessOptions {
  node: string;
  entry: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  logFile: string;
}

export function checkAppEntry(entry: string): void {
  if (!existsSync(entry)) throw new Error(`app entry ${entry} does not exist (APP_ENTRY overrides it)`);
}

/** `node <entry> migrate` with the app's environment; throws with the output when it fails. */
export async function runMigrate(o: AppProcessOptions, timeoutMs: number): Promise<void> {
  const r = await run(o.node, [o.entry, "migrate"], { cwd: o.cwd, env: o.env, timeoutMs });
  appendFileSync(o.logFile, r.stdout + r.stderr);
  if (r.code !== 0) {
    throw new Error(`\`node ${o.entry} migrate\` failed (exit ${r.code}); log ${o.logFile}:\n${tail(o.logFile)}`);
  }
}

/** Start one instance and wait until GET /readyz answers 200 directly on its port. */
export async function startApp(
  o: AppProcessOptions & { port: number; readyTimeoutMs: number },
): Promise<ProcessRecord> {
  const { record } = spawnDaemon({ command: o.node, args: [o.entry], cwd: o.cwd, env: o.env, logFile: o.logFile });
  try {
    await waitUntil(
      `${o.env.INSTANCE_NAME} on port ${o.port}`,
      async () => (await httpRequest(`http://${HOST}:${o.port}/readyz`, { timeoutMs: 1000 })).status === 200,
      {
        timeoutMs: o.readyTimeoutMs,
        intervalMs: 50,
        abort: () => (isRunning(record) ? null : `exited during start-up; log ${o.logFile}:\n${tail(o.logFile)}`),
      },
    );
  } catch (err) {
    try {
      process.kill(-record.pid, "SIGKILL");
    } catch {
      // gone
    }
    throw err;
  }
  return record;
}
