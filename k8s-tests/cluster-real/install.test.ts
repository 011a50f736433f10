// first-install: `helm upgrade --install --wait` from nothing completes on the first try on a
// real node, exactly as k8s-tests/kind/up.sh runs it, for both ways the chart can be given its
// secrets. On kwok this could never fail: a pod there is Ready without a container, so a pod
// that waits for its schema could not hold the install up. Here it would.
//
//   existing Secrets  every Secret the app reads exists before the release (a user's own, or
//                     an operator's): nothing of the release must exist before migrating
//   chart's Secret    the chart makes the Secret from values (the default for a first try):
//                     the schema must still be migrated before, or beside, the pods
//
// Each install starts from an empty database and a new namespace, and shows that the
// migration ran: each migration recorded once, and exactly one migrate run applied them.
// The chart-made-Secret install is left running for the rest of `make cluster-real-test`.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  appPods,
  backingServices,
  chartCopy,
  getJson,
  helm,
  installArgs,
  isReady,
  type Json,
  kubectl,
  kubectlMust,
  NAMESPACE,
  RELEASE,
  realCluster,
} from "./lib.ts";

const c = await realCluster();
const stack = backingServices(c);

/** An empty database: every table of the app's schema dropped, as on a new PostgreSQL. */
async function emptyDatabase(): Promise<void> {
  await stack.query(
    "primary",
    `DO $$ DECLARE t record; BEGIN
       FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
         EXECUTE 'DROP TABLE IF EXISTS public.' || quote_ident(t.tablename) || ' CASCADE';
       END LOOP;
     END $$`,
  );
}

async function migrationsRecorded(): Promise<Record<string, number>> {
  const out = await stack.query("primary", "SELECT version, count(*) FROM schema_migrations GROUP BY version");
  return Object.fromEntries(
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("|"))
      .map(([v, n]) => [v, Number(n)]),
  );
}

/** What each pod's migrate container said: how many applied the migrations. */
async function migrateRuns(namespace: string): Promise<{ applied: number; upToDate: number; pods: number }> {
  const pods = await appPods(c, namespace);
  let applied = 0;
  let upToDate = 0;
  for (const pod of pods) {
    const logs = await kubectlMust(c, ["logs", "-n", namespace, pod.metadata.name, "-c", "migrate"]);
    if (logs.includes('"migrations applied"')) applied++;
    if (logs.includes('"schema already up to date"')) upToDate++;
  }
  return { applied, upToDate, pods: pods.length };
}

async function freshNamespace(namespace: string): Promise<void> {
  await helm(c, ["uninstall", RELEASE, "--namespace", namespace, "--wait", "--ignore-not-found"], 5 * 60_000);
  await kubectl(c, ["delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=180s"], 200_000);
}

async function firstInstall(namespace: string, extra: string[], before?: () => Promise<void>): Promise<void> {
  await freshNamespace(namespace);
  await emptyDatabase();
  if (before) await before();
  const chart = chartCopy();
  const started = Date.now();
  let r: Awaited<ReturnType<typeof helm>>;
  try {
    r = await helm(c, installArgs(c, chart.dir, namespace, extra));
  } finally {
    chart.dispose();
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(`helm upgrade --install --wait in ${namespace}: exit ${r.code} after ${seconds}s`);
  if (r.code !== 0) {
    const pods = await kubectl(c, ["get", "pods,jobs", "-n", namespace, "-o", "wide"]);
    assert.fail(`the first install did not complete:\n${r.stderr.slice(-1500)}\n${pods.stdout}`);
  }
  const pods = await appPods(c, namespace);
  assert.ok(pods.length >= 2, `the app's pods exist (${pods.length})`);
  assert.deepEqual(
    pods.filter((p: Json) => !isReady(p)).map((p: Json) => p.metadata.name),
    [],
    "every app pod is Ready",
  );
  const recorded = await migrationsRecorded();
  assert.ok(Object.keys(recorded).length >= 1, "the schema is migrated");
  for (const [version, count] of Object.entries(recorded)) assert.equal(count, 1, `${version} recorded once`);
  const runs = await migrateRuns(namespace);
  console.log(`migrations ${Object.keys(recorded).join(", ")}; migrate runs: ${JSON.stringify(runs)}`);
  assert.equal(runs.applied, 1, "exactly one migrate run applied the migrations; the others found them applied");
  assert.equal(runs.applied + runs.upToDate, runs.pods, "every pod ran migrate to completion");
  const node = (await getJson(c, ["node", c.node])).status.nodeInfo.containerRuntimeVersion;
  assert.match(node, /^containerd:\/\//, "the pods ran on containerd");
}

test("first-install: existing Secrets (the pre-install path) complete under --wait", async () => {
  const ns = `${NAMESPACE}-secrets`;
  await firstInstall(
    ns,
    [
      "--set",
      "externalDatabase.password=",
      "--set",
      "externalDatabase.existingSecret=app-db",
      "--set",
      "externalDatabase.existingSecretPasswordKey=password",
      "--set",
      "sessionSecrets.existingSecret=app-sessions",
    ],
    async () => {
      await kubectlMust(c, ["create", "namespace", ns]);
      await kubectlMust(c, [
        "create",
        "secret",
        "generic",
        "app-db",
        "-n",
        ns,
        `--from-literal=password=${decodeURIComponent(new URL(stack.databaseUrl).password)}`,
      ]);
      await kubectlMust(c, [
        "create",
        "secret",
        "generic",
        "app-sessions",
        "-n",
        ns,
        "--from-literal=session-secrets=real-node-session-secret-1",
      ]);
    },
  );
  await freshNamespace(ns);
});

test("first-install: the chart's own Secret (the post-install path) completes under --wait", async () => {
  await firstInstall(NAMESPACE, []);
});
