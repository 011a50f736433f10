// `make load SCENARIO=ramp`: run one k6 scenario against BASE_URL at TARGET_RPS.
//
// Uses `k6` from PATH when there is one (of the pinned major version: `k6 version` is
// checked), else the pinned grafana/k6 image through docker (host network, the repository
// mounted read-only except the results folder). With neither, one line says what to install,
// and the exit code is 1. A failed threshold exits 99 (k6's code).
//
//   SCENARIO      smoke | ramp | spike | soak | sessions | breakpoint (required)
//   BASE_URL      default http://127.0.0.1:8080 (make local-up / make kind-up)
//   TARGET_RPS    default 1000: the rate the shape is written for (load/shapes.ts)
//   RESULTS_DIR   default load/results (created when missing)
//   K6_IMAGE      default below; SHAPE_TIME_SCALE=0.1 shortens every stage for a try-out
//   K6_*          every other k6 setting of the caller's environment reaches k6, docker or not
//
// When BASE_URL is the load balancer of a local stack (`make local-up`, STACK_NAME), the
// stack's per-client limits are checked against what the shape needs before k6 starts: all
// of k6 comes from one address, and the app's default limits (10 logins, 5 registrations a
// minute) would stop setup() at its 11th login. Too low: the exit code is 2 and one line says
// how to restart the stack with the load-test limits (load/app-env.ts).
//
// Writes <RESULTS_DIR>/<scenario>-summary.json (k6's --summary-export, through
// K6_SUMMARY_EXPORT) and <RESULTS_DIR>/<scenario>-<time>.html (k6's web dashboard export,
// its live page bound to 127.0.0.1 unless K6_WEB_DASHBOARD_HOST says otherwise).

import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { loadConfig } from "../app/src/config.ts";
import { loadTopology } from "../local/topology.ts";
import { LOAD_TEST_APP_ENV } from "./app-env.ts";
import { clusterShape, peakOf, SHAPE_NAMES, type Shape, type ShapeName } from "./shapes.ts";

/**
 * Pinned to one major with @types/k6 (package.json, 2.3.0): k6 v2.3.0 is the release the
 * types describe (Go module go.k6.io/k6/v2, tag v2.3.0, 2026-09-21, seen on the Go module
 * proxy); runs TypeScript natively.
 */
export const K6_IMAGE = "grafana/k6:2.3.0";
export const K6_MAJOR = 2;

const REPO = resolve(import.meta.dirname, "..");

/** A command on PATH (also `make load-cluster`). */
export function has(cmd: string, path: string | undefined): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore", env: { PATH: path } }).status === 0;
}

/** A docker CLI whose daemon answers (the CLI alone is not enough). */
export function dockerWorks(env: NodeJS.ProcessEnv): boolean {
  return (
    has("docker", env.PATH) && spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000, env }).status === 0
  );
}

/** Why the `k6 version` output is not the pinned major, or null when it is. */
export function versionProblem(versionOutput: string): string | null {
  const m = /\bv?(\d+)\.(\d+)\.(\d+)/.exec(versionOutput);
  if (!m) return `could not read a version from \`k6 version\`: ${JSON.stringify(versionOutput.trim().slice(0, 200))}`;
  if (Number(m[1]) !== K6_MAJOR)
    return `k6 on PATH is v${m[1]}.${m[2]}.${m[3]}; the scripts are written and typed for k6 v${K6_MAJOR} (${K6_IMAGE}, @types/k6 2.x): install k6 v${K6_MAJOR}, or take k6 off PATH to use the image`;
  return null;
}

/** The app limits a run of `shape` needs from one client address, per minute. */
export function limitsNeeded(shape: Shape): Record<keyof typeof LOAD_TEST_APP_ENV, number> {
  if (shape.executor === "ramping-vus") {
    // every VU registers and logs in once; setup() one more user
    const users = peakOf(shape) + 1;
    return { LOGIN_RATE_LIMIT_PER_MINUTE: users, REGISTER_RATE_LIMIT_PER_MINUTE: users, WORK_RATE_LIMIT_PER_MINUTE: 1 };
  }
  const total = shape.mix.reduce((sum, m) => sum + m.weight, 0);
  const work = shape.mix.filter((m) => m.endpoint === "work").reduce((sum, m) => sum + m.weight, 0);
  return {
    LOGIN_RATE_LIMIT_PER_MINUTE: shape.users,
    REGISTER_RATE_LIMIT_PER_MINUTE: shape.users,
    // a minute at the peak rate (random picks scatter around the mean: room for that)
    WORK_RATE_LIMIT_PER_MINUTE: work === 0 ? 1 : Math.ceil((peakOf(shape) * 60 * work * 1.5) / total),
  };
}

/** The app's effective per-client limits for an instance environment (defaults included). */
export function appLimits(appEnv: NodeJS.ProcessEnv): Record<keyof typeof LOAD_TEST_APP_ENV, number> {
  const c = loadConfig(appEnv);
  return {
    LOGIN_RATE_LIMIT_PER_MINUTE: c.rateLimits.login.attemptsPerMinute,
    REGISTER_RATE_LIMIT_PER_MINUTE: c.rateLimits.registerPerMinute,
    WORK_RATE_LIMIT_PER_MINUTE: c.rateLimits.workPerMinute,
  };
}

/** One line per limit (`NAME=have (needs n)`) and whether all suffice. */
export function compareLimits(
  have: Record<string, number>,
  need: Record<string, number>,
): { ok: boolean; lines: string[] } {
  const lines = Object.entries(need).map(([k, n]) => {
    const h = have[k] ?? 0;
    return `${k}=${h} (${h >= n ? "needs" : "TOO LOW: needs"} ${n})`;
  });
  return { ok: Object.entries(need).every(([k, n]) => (have[k] ?? 0) >= n), lines };
}

/** The limits of the local stack whose load balancer is `baseUrl`; null when BASE_URL is not one. */
export function localStackLimits(
  baseUrl: string,
  name: string,
  stateRoot?: string,
): Record<keyof typeof LOAD_TEST_APP_ENV, number> | null {
  const stack = loadTopology({ name, stateRoot });
  if (!stack) return null;
  let same = false;
  try {
    same = new URL(stack.lbUrl).origin === new URL(baseUrl).origin;
  } catch {
    // not a URL: not this stack's
  }
  if (!same) return null;
  // appEnv() starts from this process's environment; the instances got the limits that
  // local-up recorded, so those replace whatever the caller of `make load` has set
  const env = { ...stack.appEnv(0) };
  for (const k of Object.keys(LOAD_TEST_APP_ENV)) delete env[k];
  return appLimits({ ...env, ...stack.state.appEnv });
}

/** What k6 gets in its environment besides the caller's own K6_* settings. */
export function k6Environment(
  env: NodeJS.ProcessEnv,
  o: { scenario: ShapeName; baseUrl: string; targetRps: string; resultsDir: string; stamp: string },
): Record<string, string> {
  return {
    BASE_URL: o.baseUrl,
    TARGET_RPS: o.targetRps,
    K6_SUMMARY_EXPORT: `${o.resultsDir}/${o.scenario}-summary.json`,
    K6_WEB_DASHBOARD: "true",
    // k6 binds the live dashboard to every interface unless told otherwise
    K6_WEB_DASHBOARD_HOST: env.K6_WEB_DASHBOARD_HOST || "127.0.0.1",
    K6_WEB_DASHBOARD_EXPORT: `${o.resultsDir}/${o.scenario}-${o.stamp}.html`,
    ...(env.SHAPE_TIME_SCALE ? { SHAPE_TIME_SCALE: env.SHAPE_TIME_SCALE } : {}),
  };
}

/**
 * `docker run` arguments: the caller's K6_* settings and then ours, each as `-e`. The
 * repository (read-only) and the results folder (writable) are mounted at the same paths as
 * on the host, so every path in the environment means the same inside.
 */
export function dockerArgs(
  env: NodeJS.ProcessEnv,
  k6Env: Record<string, string>,
  o: { image: string; script: string; resultsDir: string; uid: number },
): string[] {
  const own = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[0].startsWith("K6_") && e[1] !== undefined),
  );
  const all: Record<string, string> = { ...own, ...k6Env };
  delete all.K6_IMAGE; // ours, not k6's
  return [
    "run",
    "--rm",
    "-i",
    "--network",
    "host",
    "--user",
    `${o.uid}`,
    "-v",
    `${REPO}:${REPO}:ro`,
    "-v",
    `${o.resultsDir}:${o.resultsDir}`,
    "-w",
    REPO,
    ...Object.entries(all).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    o.image,
    "run",
    o.script,
  ];
}

export function main(env: NodeJS.ProcessEnv): number {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`make load: ${line}\n`);
  const scenario = (env.SCENARIO ?? "") as ShapeName;
  if (!SHAPE_NAMES.includes(scenario)) {
    err(`SCENARIO=${scenario || "<unset>"}: expected one of ${SHAPE_NAMES.join(", ")}`);
    return 2;
  }
  const baseUrl = env.BASE_URL || "http://127.0.0.1:8080";
  const targetRps = env.TARGET_RPS || "1000";
  const rps = Number(targetRps);
  if (!Number.isFinite(rps) || rps < 1) {
    err(`TARGET_RPS=${targetRps}: expected a number >= 1`);
    return 2;
  }

  const stackName = env.STACK_NAME || "default";
  const limits = localStackLimits(baseUrl, stackName);
  if (limits) {
    const verdict = compareLimits(limits, limitsNeeded(clusterShape(scenario, rps)));
    out(`local stack '${stackName}' at ${baseUrl}: ${verdict.lines.join(", ")}`);
    if (!verdict.ok) {
      const raise = Object.entries(LOAD_TEST_APP_ENV)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      err(
        `the stack's per-client limits are too low for ${scenario} from one address; restart it with the load-test limits: make local-down && ${raise} make local-up${stackName === "default" ? "" : ` STACK_NAME=${stackName}`}`,
      );
      return 2;
    }
  }

  const stamp = new Date()
    .toISOString()
    .replace(/[:]/g, "-")
    .replace(/\.\d+Z$/, "Z");
  // k6 creates no folders for its summary or dashboard files: make the folder first
  const resultsDir = resolve(REPO, env.RESULTS_DIR || join("load", "results"));
  mkdirSync(resultsDir, { recursive: true });
  const shown = relative(REPO, resultsDir).startsWith("..") ? resultsDir : relative(REPO, resultsDir);
  const k6Env = k6Environment(env, { scenario, baseUrl, targetRps, resultsDir, stamp });
  const script = `load/scenarios/${scenario}.ts`;
  let r: ReturnType<typeof spawnSync>;
  if (has("k6", env.PATH)) {
    const v = spawnSync("k6", ["version"], { encoding: "utf8", env, timeout: 30_000 });
    const problem = versionProblem(`${v.stdout ?? ""}`);
    if (problem) {
      err(problem);
      return 1;
    }
    out(`k6 run ${script} (BASE_URL=${baseUrl} TARGET_RPS=${targetRps}; results in ${shown}/)`);
    r = spawnSync("k6", ["run", script], { cwd: REPO, stdio: "inherit", env: { ...env, ...k6Env } });
  } else if (dockerWorks(env)) {
    const image = env.K6_IMAGE || K6_IMAGE;
    out(`docker run ${image} run ${script} (BASE_URL=${baseUrl} TARGET_RPS=${targetRps}; results in ${shown}/)`);
    r = spawnSync("docker", dockerArgs(env, k6Env, { image, script, resultsDir, uid: process.getuid?.() ?? 1000 }), {
      stdio: "inherit",
      env,
    });
  } else {
    err(
      `needs k6 v${K6_MAJOR} on PATH (https://grafana.com/docs/k6/latest/set-up/install-k6/) or a running Docker daemon (for ${K6_IMAGE})${has("docker", env.PATH) ? "; docker is installed but its daemon does not answer" : ""}; without either, \`make bench\` runs the same shapes locally`,
    );
    return 1;
  }
  if (r.error) {
    err(r.error.message);
    return 1;
  }
  return r.status ?? 1;
}

if (import.meta.main) process.exitCode = main(process.env);
