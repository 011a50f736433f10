// `make load SCENARIO=ramp`: run one k6 scenario against BASE_URL at TARGET_RPS.
//
// Uses `k6` from PATH when there is one, else the pinned grafana/k6 image through docker
// (host network, the repository mounted read-only except load/results/). With neither, one
// line says what to install, and the exit code is 1. A failed threshold exits 99 (k6's code).
//
//   SCENARIO      smoke | ramp | spike | soak | sessions | breakpoint (required)
//   BASE_URL      default http://127.0.0.1:8080 (make local-up / make kind-up)
//   TARGET_RPS    default 1000: the rate the shape is written for (load/shapes.ts)
//   K6_IMAGE      default below; SHAPE_TIME_SCALE=0.1 shortens every stage for a try-out
//
// Writes load/results/<scenario>-summary.json (handleSummary) and
// load/results/<scenario>-<time>.html (k6's web dashboard export).

import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { SHAPE_NAMES, type ShapeName } from "./shapes.ts";

/** Pinned: the newest k6 release this machine could verify (Go module proxy, tag v1.8.1, 2026-08-12); runs TypeScript natively. */
export const K6_IMAGE = "grafana/k6:1.8.1";

const REPO = resolve(import.meta.dirname, "..");

function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** A docker CLI whose daemon answers (the CLI alone is not enough). */
function dockerWorks(): boolean {
  return has("docker") && spawnSync("docker", ["info"], { stdio: "ignore", timeout: 15_000 }).status === 0;
}

function main(env: NodeJS.ProcessEnv): number {
  const scenario = (env.SCENARIO ?? "") as ShapeName;
  if (!SHAPE_NAMES.includes(scenario)) {
    process.stderr.write(`make load: SCENARIO=${scenario || "<unset>"}: expected one of ${SHAPE_NAMES.join(", ")}\n`);
    return 2;
  }
  const baseUrl = env.BASE_URL || "http://127.0.0.1:8080";
  const targetRps = env.TARGET_RPS || "1000";
  const stamp = new Date()
    .toISOString()
    .replace(/[:]/g, "-")
    .replace(/\.\d+Z$/, "Z");
  mkdirSync(join(REPO, "load", "results"), { recursive: true });
  const k6Env: Record<string, string> = {
    BASE_URL: baseUrl,
    TARGET_RPS: targetRps,
    SUMMARY_DIR: "load/results",
    K6_WEB_DASHBOARD: "true",
    K6_WEB_DASHBOARD_EXPORT: `load/results/${scenario}-${stamp}.html`,
    ...(env.SHAPE_TIME_SCALE ? { SHAPE_TIME_SCALE: env.SHAPE_TIME_SCALE } : {}),
  };
  const script = `load/scenarios/${scenario}.ts`;
  let r: ReturnType<typeof spawnSync>;
  if (has("k6")) {
    process.stdout.write(`k6 run ${script} (BASE_URL=${baseUrl} TARGET_RPS=${targetRps})\n`);
    r = spawnSync("k6", ["run", script], { cwd: REPO, stdio: "inherit", env: { ...env, ...k6Env } });
  } else if (dockerWorks()) {
    const image = env.K6_IMAGE || K6_IMAGE;
    process.stdout.write(`docker run ${image} run ${script} (BASE_URL=${baseUrl} TARGET_RPS=${targetRps})\n`);
    const envArgs = Object.entries(k6Env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    r = spawnSync(
      "docker",
      [
        "run",
        "--rm",
        "-i",
        "--network",
        "host",
        "--user",
        `${process.getuid?.() ?? 1000}`,
        "-v",
        `${REPO}:/src:ro`,
        "-v",
        `${join(REPO, "load", "results")}:/src/load/results`,
        "-w",
        "/src",
        ...envArgs,
        image,
        "run",
        script,
      ],
      { stdio: "inherit" },
    );
  } else {
    process.stderr.write(
      `make load: needs k6 on PATH (https://grafana.com/docs/k6/latest/set-up/install-k6/) or a running Docker daemon (for ${K6_IMAGE})${has("docker") ? "; docker is installed but its daemon does not answer" : ""}; without either, \`make bench\` runs the same shapes locally\n`,
    );
    return 1;
  }
  if (r.error) {
    process.stderr.write(`make load: ${r.error.message}\n`);
    return 1;
  }
  return r.status ?? 1;
}

if (import.meta.main) process.exitCode = main(process.env);
