// A 10-second local smoke of the `sessions` shape through nginx (part of `make test`): users
// register, log in once, then loop over /api/me, item reads and write-then-read. Zero errors,
// read-your-writes held on every check, and both instances served.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestStack, teardown } from "../../local/test/helpers.ts";
import type { Topology } from "../../local/topology.ts";
import { LOAD_TEST_APP_ENV } from "../app-env.ts";
import { runVUs, setupFixture } from "../runner/drive.ts";
import { clusterShape, scaleTo, type VuShape } from "../shapes.ts";

const SECONDS = 10;
const VUS = 4;

let stack: Topology | undefined;

before(async () => {
  stack = await startTestStack("load-smoke", {
    instances: 2,
    // every virtual user comes from 127.0.0.1
    appEnv: LOAD_TEST_APP_ENV,
  });
});

after(async () => {
  await teardown(stack);
});

test(`sessions shape, ${VUS} VUs for ${SECONDS} s through nginx: no error, read-your-writes holds`, {
  timeout: 120_000,
}, async () => {
  assert.ok(stack);
  const shape = scaleTo(clusterShape("sessions", 1000), { peak: VUS, durationS: SECONDS }) as VuShape;
  const fixture = await setupFixture(stack.lbUrl, 1, 20);
  const r = await runVUs(shape, stack.lbUrl, fixture, { progress: (line) => console.log(line) });
  console.log(
    `sessions smoke: ${r.requests} requests, ${r.errors} errors, p95 ${r.latency.p95} ms, p99 ${r.latency.p99} ms, ` +
      `read-your-writes ${r.readYourWrites?.held}/${r.readYourWrites?.checked}, instances ${JSON.stringify(r.instances)}`,
  );
  assert.deepEqual(r.errorSamples, [], "no request may fail");
  assert.equal(r.errors, 0);
  assert.ok(r.readYourWrites && r.readYourWrites.checked > 0, "no write-then-read happened");
  assert.equal(r.readYourWrites.held, r.readYourWrites.checked, "a user did not read what they had just written");
  const served = Object.keys(r.instances);
  assert.equal(served.length, 2, `nginx sent everything to ${served.join(", ")}`);
  for (const route of ["GET /api/me", "POST /api/items", "GET /api/items/:id"]) {
    assert.ok(
      r.routes.some((x) => x.route === route && x.requests > 0),
      `${route} was never called`,
    );
  }
});
