// `make load` on a machine without k6: `k6` (or `docker`) replaced by a stub that prints its
// arguments and environment. Against a local stack started with the load-test limits, make
// load reports the raised limits, creates the results folder and hands k6 the paths in it;
// a stack with the app's default limits is refused before k6 starts; a k6 of another major
// is refused; the docker path keeps the caller's K6_* settings; the dashboard stays on loopback.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { startTestStack, teardown } from "../../local/test/helpers.ts";
import type { Topology } from "../../local/topology.ts";
import { LOAD_TEST_APP_ENV } from "../app-env.ts";
import { appLimits, compareLimits, limitsNeeded } from "../k6.ts";
import { clusterShape, SHAPE_NAMES } from "../shapes.ts";

const REPO = resolve(import.meta.dirname, "..", "..");
const tmp = mkdtempSync(join(tmpdir(), "make-load-"));
const STUB_K6 = join(tmp, "k6-bin");
const STUB_DOCKER = join(tmp, "docker-bin");
// node, make and sh; nothing from /usr/local/bin (a real docker CLI may live there)
const BASE_PATH = [dirname(process.execPath), join(REPO, "node_modules", ".bin"), "/usr/bin", "/bin"].join(":");

function stub(dir: string, name: string, script: string): void {
  spawnSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, name), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, name), 0o755);
}

stub(
  STUB_K6,
  "k6",
  `if [ "$1" = version ]; then echo "k6 \${STUB_K6_VERSION:-v2.3.0} (commit/stub, go1.24, linux/amd64)"; exit 0; fi
echo "k6-stub args: $*"; env | sort | sed 's/^/k6-stub env: /'`,
);
stub(STUB_DOCKER, "docker", `if [ "$1" = info ]; then exit 0; fi; echo "docker-stub args: $*"`);

let stack: Topology | undefined;

before(async () => {
  // what `LOGIN_RATE_LIMIT_PER_MINUTE=100000 ... make local-up` records
  stack = await startTestStack("make-load", { instances: 1, appEnv: LOAD_TEST_APP_ENV });
});

after(async () => {
  await teardown(stack);
  rmSync(tmp, { recursive: true, force: true });
});

function run(cmd: string, args: string[], env: Record<string, string>) {
  const r = spawnSync(cmd, args, { cwd: REPO, encoding: "utf8", env: { HOME: process.env.HOME ?? "/tmp", ...env } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test("make load SCENARIO=smoke against a local stack with the load-test limits: limits shown, results folder made", () => {
  assert.ok(stack);
  const results = join(tmp, "fresh", "results");
  const r = run("make", ["load", "SCENARIO=smoke", `BASE_URL=${stack.lbUrl}`], {
    PATH: `${STUB_K6}:${BASE_PATH}`,
    STACK_NAME: stack.name,
    RESULTS_DIR: results,
  });
  console.log(r.out);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /LOGIN_RATE_LIMIT_PER_MINUTE=100000 \(needs 20\)/);
  assert.match(r.out, /REGISTER_RATE_LIMIT_PER_MINUTE=100000 \(needs 20\)/);
  assert.match(r.out, /k6-stub args: run load\/scenarios\/smoke\.ts/);
  assert.ok(existsSync(results), "make load creates the results folder (k6 creates none)");
  assert.ok(r.out.includes(`k6-stub env: K6_SUMMARY_EXPORT=${results}/smoke-summary.json`), r.out);
  assert.match(r.out, new RegExp(`k6-stub env: K6_WEB_DASHBOARD_EXPORT=${results}/smoke-.*\\.html`));
  assert.match(r.out, /k6-stub env: K6_WEB_DASHBOARD_HOST=127\.0\.0\.1/);
  assert.ok(r.out.includes(`k6-stub env: BASE_URL=${stack.lbUrl}`), r.out);
});

test("a stack with the app's default limits would stop every shape in setup(): make load says so", () => {
  assert.ok(stack);
  // the same stack's environment without the raised limits: what plain `make local-up` gives
  const env = { ...stack.appEnv(0) };
  for (const k of Object.keys(LOAD_TEST_APP_ENV)) delete env[k];
  const defaults = appLimits(env);
  assert.equal(defaults.LOGIN_RATE_LIMIT_PER_MINUTE, 10);
  for (const name of SHAPE_NAMES) {
    const verdict = compareLimits(defaults, limitsNeeded(clusterShape(name, 1000)));
    assert.equal(verdict.ok, false, `${name} with ${verdict.lines.join(", ")}`);
    assert.ok(verdict.lines.some((l) => l.includes("TOO LOW")));
  }
  for (const name of SHAPE_NAMES) {
    const raised = compareLimits(appLimits({ ...env, ...LOAD_TEST_APP_ENV }), limitsNeeded(clusterShape(name, 1000)));
    assert.equal(raised.ok, true, `${name} with ${raised.lines.join(", ")}`);
  }
});

test("a k6 of another major version is refused before it runs anything", () => {
  const r = run(process.execPath, ["load/k6.ts"], {
    PATH: `${STUB_K6}:${BASE_PATH}`,
    SCENARIO: "smoke",
    BASE_URL: "http://127.0.0.1:9",
    STACK_NAME: "no-such-stack",
    RESULTS_DIR: join(tmp, "r2"),
    STUB_K6_VERSION: "v1.8.1",
  });
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /k6 on PATH is v1\.8\.1; the scripts are written and typed for k6 v2/);
  assert.doesNotMatch(r.out, /k6-stub args/);
});

test("the docker path passes the caller's K6_* settings through", () => {
  const r = run(process.execPath, ["load/k6.ts"], {
    PATH: `${STUB_DOCKER}:${BASE_PATH}`,
    SCENARIO: "ramp",
    BASE_URL: "http://127.0.0.1:9",
    STACK_NAME: "no-such-stack",
    RESULTS_DIR: join(tmp, "r3"),
    K6_OUT: "experimental-prometheus-rw",
    K6_PROMETHEUS_RW_SERVER_URL: "http://127.0.0.1:9090/api/v1/write",
  });
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /docker-stub args: run .* grafana\/k6:2\.3\.0 run load\/scenarios\/ramp\.ts/);
  assert.match(r.out, /-e K6_OUT=experimental-prometheus-rw /);
  assert.match(r.out, /-e K6_PROMETHEUS_RW_SERVER_URL=http:\/\/127\.0\.0\.1:9090\/api\/v1\/write /);
  assert.match(r.out, /-e K6_WEB_DASHBOARD_HOST=127\.0\.0\.1 /);
});
