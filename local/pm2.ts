// The app under PM2 in cluster mode (app/ecosystem.config.cjs), for the tests and the bench of
// the one-machine path. PM2 is AGPL-3.0: it is a dev dependency here, never the app's.
// Each cluster gets its own PM2_HOME, so it never touches a PM2 the user runs.

import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { waitUntil } from "./net.ts";
import { REPO_ROOT } from "./topology.ts";

const run = promisify(execFile);
const APP_DIR = join(REPO_ROOT, "app");
const PM2 = join(REPO_ROOT, "node_modules", ".bin", "pm2");
const TSC = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");

export type Pm2Worker = { pid: number; status: string };

export type Pm2Cluster = {
  url: string;
  /** `pm2 <args>` against this cluster's PM2 home. */
  pm2(args: string[]): Promise<string>;
  workers(): Promise<Pm2Worker[]>;
  stop(): Promise<void>;
};

/** PM2 runs the built app, as on a VM: compile app/dist first. */
export async function buildApp(): Promise<void> {
  await run(process.execPath, [TSC, "-p", "tsconfig.build.json"], { cwd: APP_DIR });
}

/**
 * Starts app/ecosystem.config.cjs with `workers` processes on `port` and waits until it
 * answers /readyz. `env` is the app's environment (the same contract as a local instance).
 */
export async function startPm2Cluster(options: {
  env: NodeJS.ProcessEnv;
  port: number;
  metricsPort: number;
  workers: number | "max";
}): Promise<Pm2Cluster> {
  const home = await mkdtemp(join(tmpdir(), "nodescale-pm2-"));
  const pm2 = async (args: string[]) => {
    const { stdout } = await run(PM2, args, {
      cwd: APP_DIR,
      env: {
        ...options.env,
        PM2_HOME: home,
        PORT: String(options.port),
        METRICS_PORT: String(options.metricsPort),
        PM2_INSTANCES: String(options.workers),
        // Each worker names itself hostname-<index> (x-instance).
        INSTANCE_NAME: "",
      },
      timeout: 90_000,
    });
    return stdout;
  };
  const cluster: Pm2Cluster = {
    url: `http://127.0.0.1:${options.port}`,
    pm2,
    async workers() {
      const list = JSON.parse(await pm2(["jlist"])) as { name: string; pid: number; pm2_env: { status: string } }[];
      return list.filter((p) => p.name === "nodescale").map((p) => ({ pid: p.pid, status: p.pm2_env.status }));
    },
    async stop() {
      await pm2(["kill"]).catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
  try {
    await pm2(["start", "ecosystem.config.cjs"]);
    await waitUntil(
      "the PM2 cluster answers /readyz",
      async () => (await fetch(`${cluster.url}/readyz`)).status === 200,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
