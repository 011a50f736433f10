// The chart's `helm test` script (charts/nodescale/files/helm-test.mjs) run against the real
// app, the way the test pods run it (`node --input-type=module --eval <script>`, CHECK and
// BASE_URL in the environment), with the local topology standing in for the cluster:
// nginx in front of two app instances, Redis, a PostgreSQL primary and a streaming replica.
// Proves the checks pass against the app as it is, not only that the chart renders them.
//
//   node --test charts/tests/helm-test-script.test.ts     (needs redis, nginx, postgresql: make deps)
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { freePort } from "../../local/net.ts";
import { startTestStack, teardown } from "../../local/test/helpers.ts";
import type { Topology } from "../../local/topology.ts";

const script = readFileSync(new URL("../nodescale/files/helm-test.mjs", import.meta.url), "utf8");
let stack: Topology | undefined;

before(async () => {
  stack = await startTestStack("helm-test", { instances: 2 });
});
after(async () => {
  await teardown(stack);
});

function runCheck(
  check: string,
  baseUrl: string,
  metricsUrl?: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, CHECK: check, BASE_URL: baseUrl };
    if (metricsUrl) env.METRICS_URL = metricsUrl;
    const child = spawn(process.execPath, ["--input-type=module", "--eval", script], { env });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("close", (code) => resolve({ code, output }));
  });
}

for (const check of ["readiness", "session", "replicas"]) {
  test(`helm test "${check}" passes against the app behind nginx`, async () => {
    const { code, output } = await runCheck(check, stack!.lbUrl);
    console.log(output.trimEnd());
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`# ${check}: passed`));
  });
}

test("the session check sees the session served by more than one instance", async () => {
  const { output } = await runCheck("session", stack!.lbUrl);
  assert.match(output, /served by 2 instance\(s\)/);
});

// As the chart runs the app: METRICS_PORT set, the metrics Service at METRICS_URL (issue 13,
// item 5). One instance, so the internal port is that instance's.
test('helm test "readiness" with the internal port: /metrics and the detail only there', async () => {
  const metricsPort = await freePort();
  const internal = await startTestStack("helm-test-internal", {
    instances: 1,
    appEnv: { METRICS_PORT: String(metricsPort) },
  });
  try {
    const { code, output } = await runCheck("readiness", internal.lbUrl, `http://127.0.0.1:${metricsPort}`);
    console.log(output.trimEnd());
    assert.equal(code, 0, output);
    assert.match(output, /GET \/metrics on the app's Service is 404/);
    assert.match(output, /the internal port's \/readyz reports the dependencies/);
  } finally {
    await teardown(internal);
  }
});

// As the chart runs the app behind a TLS Ingress or Gateway: COOKIE_SECURE=true, so the
// cookie is Secure whatever the last hop says. The test pod talks to the Service directly, in
// plain HTTP, and says https as the front door would; here, straight to the instance, and
// through nginx, which overwrites that header with its own scheme (http), as an ingress
// behind an outer TLS terminator does: login still sets the (Secure) cookie.
test('helm test "session" passes with COOKIE_SECURE=true, as behind a TLS front door', async () => {
  const secure = await startTestStack("helm-test-secure", {
    instances: 1,
    appEnv: { COOKIE_SECURE: "true", TRUST_PROXY: "1" },
  });
  try {
    const direct = await runCheck("session", (secure.instances[0] as { url: string }).url);
    console.log(direct.output.trimEnd());
    assert.equal(direct.code, 0, direct.output);
    assert.match(direct.output, /ok - login sets a session cookie/);
    const viaHttp = await runCheck("session", secure.lbUrl);
    assert.equal(viaHttp.code, 0, viaHttp.output);
    assert.match(viaHttp.output, /ok - login sets a session cookie/);
  } finally {
    await teardown(secure);
  }
});

test("an unknown check name fails with exit code 2", async () => {
  const { code, output } = await runCheck("nope", stack!.lbUrl);
  assert.equal(code, 2);
  assert.match(output, /unknown CHECK "nope"/);
});
