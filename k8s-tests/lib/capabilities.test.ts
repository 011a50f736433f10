// capabilities.ts without a cluster: which e2e checks the simulated and the real-node cluster
// can run, and why the others cannot.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  allowedToSkip,
  CLUSTER_REAL,
  CLUSTER_SIM,
  cannotRun,
  detect,
  E2E_CHECKS,
  REAL_NODE_LABEL,
  realCluster,
} from "./capabilities.ts";

test("on the simulated cluster only the checks without traffic or containers can run", () => {
  const runnable = (Object.keys(E2E_CHECKS) as (keyof typeof E2E_CHECKS)[]).filter((id) => !cannotRun(id, CLUSTER_SIM));
  assert.deepEqual(runnable, ["pods-ready"]);
  assert.match(cannotRun("helm-test", CLUSTER_SIM) ?? "", /run no container/);
  assert.match(cannotRun("reachable-through-ingress", CLUSTER_SIM) ?? "", /ingress controller/);
  assert.match(cannotRun("hpa-burst", CLUSTER_SIM) ?? "", /hpa\.test\.ts/);
});

test("on the real-node cluster everything but the ingress check can run", () => {
  const cannot = (Object.keys(E2E_CHECKS) as (keyof typeof E2E_CHECKS)[]).filter((id) => cannotRun(id, CLUSTER_REAL));
  assert.deepEqual(cannot, ["reachable-through-ingress"]);
  assert.match(cannotRun("reachable-through-ingress", CLUSTER_REAL) ?? "", /without a registry/);
});

test("on kind everything can run", () => {
  for (const id of Object.keys(E2E_CHECKS) as (keyof typeof E2E_CHECKS)[]) {
    assert.equal(cannotRun(id, realCluster("kind")), undefined, id);
  }
});

test("the cluster is told apart by its nodes; skipping needs an explicit permission", () => {
  const fake = { metadata: { annotations: { "kwok.x-k8s.io/node": "fake" } } };
  assert.equal(detect({ items: [fake, fake] }).kind, "cluster-sim");
  assert.equal(detect({ items: [{ metadata: {}, spec: { providerID: "kind://docker/k/k-worker" } }] }).kind, "kind");
  assert.equal(detect({ items: [fake, { metadata: {} }] }).kind, "other");
  const real = { metadata: { labels: { [REAL_NODE_LABEL]: "cluster-real" } } };
  assert.equal(detect({ items: [real] }).kind, "cluster-real");
  assert.equal(detect({ items: [real, { metadata: {} }] }).kind, "other");
  assert.equal(allowedToSkip(CLUSTER_SIM, {}), false);
  assert.equal(allowedToSkip(CLUSTER_SIM, { E2E_SKIP_UNSUPPORTED: "cluster-sim" }), true);
});
