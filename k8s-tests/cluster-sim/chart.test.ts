// The chart against a real API server (the simulated cluster: `make cluster-sim-up`):
// every values case of charts/tests/values is accepted with strict field validation;
// install -> upgrade -> rollback -> uninstall with Helm 4 and Helm 3; an upgrade that would
// change the Deployment's (immutable) selector is caught; a template with an unknown field
// is rejected by the server.
//
//   node --test k8s-tests/cluster-sim/chart.test.ts
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  applyCrds,
  type Cluster,
  cluster,
  eventually,
  externalServiceSecrets,
  freshNamespace,
  getJson,
  type Helm,
  helm,
  helmMust,
  kubectl,
  kubectlMust,
  strippedChart,
  VALUES,
} from "./lib.ts";

let c: Cluster;
let chart: { dir: string; dispose: () => void };

before(async () => {
  c = await cluster();
  chart = strippedChart();
  await applyCrds(c);
});
after(() => chart?.dispose());

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface List<T = Obj> {
  items: T[];
}

describe("every values case is accepted by the API server with strict field validation", () => {
  const ns = "nodescale-matrix";
  before(async () => {
    await freshNamespace(c, ns);
  });
  after(async () => {
    await kubectl(c, ["delete", "namespace", ns, "--wait=false"]);
  });

  for (const file of readdirSync(VALUES).filter((f) => f.endsWith(".yaml"))) {
    test(`${file}: server-side dry-run apply, fieldValidation=Strict`, async () => {
      // hooks and `helm test` pods included: they are objects the server must take too
      const rendered = await helmMust(c, "helm4", [
        "template",
        "matrix",
        chart.dir,
        "--namespace",
        ns,
        "-f",
        join(VALUES, file),
      ]);
      const r = await kubectl(
        c,
        [
          "apply",
          "--server-side",
          "--dry-run=server",
          "--validate=strict",
          "--field-manager=cluster-sim",
          "-n",
          ns,
          "-f",
          "-",
        ],
        { input: rendered },
      );
      assert.equal(r.code, 0, `rejected:\n${r.stderr}${r.stdout}`);
      assert.doesNotMatch(r.stderr, /unknown field|duplicate field|Warning/i, r.stderr);
      const applied = r.stdout.split("\n").filter((l) => /\(server dry run\)/.test(l)).length;
      const objects = rendered.split(/^---$/m).filter((d) => /^kind:/m.test(d)).length;
      assert.ok(objects >= 4, `only ${objects} objects rendered`);
      assert.equal(applied, objects, `${applied} of ${objects} objects applied:\n${r.stdout}`);
    });
  }
});

// The values of the lifecycle: external services (every Secret existing), the ServiceMonitor
// and an HTTPRoute (their CRDs applied), a fixed full name so an upgrade can change only the
// selector.
function lifecycleValues(): string[] {
  return [
    "-f",
    join(VALUES, "external-services.yaml"),
    "-f",
    join(VALUES, "monitoring.yaml"),
    "-f",
    join(VALUES, "gateway-api.yaml"),
    "--set",
    "fullnameOverride=shop",
  ];
}
const WAIT = ["--wait", "--wait-for-jobs", "--timeout", "4m"];

async function releaseStatus(helmBin: Helm, ns: string): Promise<{ version: number; status: string }> {
  const s = JSON.parse(await helmMust(c, helmBin, ["status", "shop", "-n", ns, "-o", "json"]).then(jsonPart));
  return { version: s.version, status: s.info.status };
}
// helmMust returns stdout+stderr; the JSON is the first line starting with "{"
function jsonPart(out: string): string {
  const i = out.indexOf("{");
  return out.slice(i, out.lastIndexOf("}") + 1);
}

async function appConfig(ns: string): Promise<Record<string, string>> {
  return (await getJson<Obj>(c, ["configmap", "shop", "-n", ns])).data ?? {};
}
async function hpaMin(ns: string): Promise<number> {
  const h = await getJson<Obj>(c, ["hpa", "shop", "-n", ns]);
  return (h.spec as { minReplicas: number }).minReplicas;
}
async function readyPods(ns: string): Promise<number> {
  const pods = await getJson<List<{ status: { phase: string; conditions?: { type: string; status: string }[] } }>>(c, [
    "pods",
    "-n",
    ns,
    "-l",
    "app.kubernetes.io/instance=shop,app.kubernetes.io/component!=test",
  ]);
  return pods.items.filter(
    (p) => p.status.phase === "Running" && p.status.conditions?.some((x) => x.type === "Ready" && x.status === "True"),
  ).length;
}

for (const helmBin of ["helm4", "helm3"] as const) {
  describe(`${helmBin}: install -> upgrade -> rollback -> uninstall`, () => {
    const ns = `nodescale-${helmBin}`;
    before(async () => {
      await freshNamespace(c, ns);
      await externalServiceSecrets(c, ns);
    });
    after(async () => {
      await kubectl(c, ["delete", "namespace", ns, "--wait=false"]);
    });

    test("install: every object created, no migration hook, pods Running and Ready on kwok nodes", async () => {
      const out = await helmMust(c, helmBin, ["install", "shop", chart.dir, "-n", ns, ...lifecycleValues(), ...WAIT]);
      assert.doesNotMatch(out, /unknown field|Warning:/i, out);
      assert.deepEqual(await releaseStatus(helmBin, ns), { version: 1, status: "deployed" });
      for (const kind of [
        "deployment",
        "service",
        "serviceaccount",
        "configmap",
        "hpa",
        "pdb",
        "networkpolicy",
        "servicemonitor",
        "httproute",
      ]) {
        const r = await kubectl(c, ["get", kind, "-n", ns, "-l", "app.kubernetes.io/instance=shop", "-o", "name"]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.trim().length > 0, `no ${kind} of the release`);
      }
      // the migration is the app pods' initContainer (kwok runs no containers): no Job at all
      const jobs = await getJson<List>(c, ["jobs", "-n", ns]);
      assert.equal(jobs.items.length, 0, "no migration Job: the app pods migrate in an initContainer");
      const deployment = await getJson<Obj>(c, ["deployment", "shop", "-n", ns]);
      const spec = (deployment.spec as { template: { spec: { initContainers?: { name: string }[] } } }).template.spec;
      assert.deepEqual(
        spec.initContainers?.map((i) => i.name),
        ["migrate"],
        "the Deployment migrates in an initContainer",
      );
      assert.equal(await readyPods(ns), 2, "HPA minReplicas pods Ready");
      const cfg = await appConfig(ns);
      assert.equal(cfg.LOG_LEVEL, "info");
    });

    test("upgrade with changed values: the config rolls the pods, the HPA takes the new minimum", async () => {
      const before = await getJson<Obj>(c, ["deployment", "shop", "-n", ns]);
      const out = await helmMust(c, helmBin, [
        "upgrade",
        "shop",
        chart.dir,
        "-n",
        ns,
        ...lifecycleValues(),
        "--set",
        "config.logLevel=debug",
        "--set",
        "autoscaling.minReplicas=3",
        "--set",
        "resources.requests.cpu=250m",
        ...WAIT,
      ]);
      assert.doesNotMatch(out, /unknown field|Warning:/i, out);
      assert.deepEqual(await releaseStatus(helmBin, ns), { version: 2, status: "deployed" });
      assert.equal((await appConfig(ns)).LOG_LEVEL, "debug");
      assert.equal(await hpaMin(ns), 3);
      const afterUp = await getJson<Obj>(c, ["deployment", "shop", "-n", ns]);
      const ann = (o: Obj) =>
        (o.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
      assert.notEqual(ann(afterUp)["checksum/config"], ann(before)["checksum/config"], "checksum/config changed");
      await eventually("3 Ready pods", 120_000, async () => (await readyPods(ns)) === 3);
    });

    test("rollback to revision 1: the old values are back", async () => {
      await helmMust(c, helmBin, ["rollback", "shop", "1", "-n", ns, ...WAIT]);
      assert.deepEqual(await releaseStatus(helmBin, ns), { version: 3, status: "deployed" });
      assert.equal((await appConfig(ns)).LOG_LEVEL, "info");
      assert.equal(await hpaMin(ns), 2);
    });

    test("an upgrade that changes the Deployment selector (immutable) fails, and the release recovers", async () => {
      const r = await helm(c, helmBin, [
        "upgrade",
        "shop",
        chart.dir,
        "-n",
        ns,
        ...lifecycleValues(),
        "--set",
        "nameOverride=renamed", // selector app.kubernetes.io/name: nodescale -> renamed
        "--timeout",
        "2m",
      ]);
      assert.notEqual(r.code, 0, `the upgrade succeeded:\n${r.stdout}`);
      assert.match(r.stderr, /field is immutable/, r.stderr);
      assert.match(r.stderr, /spec\.selector/, r.stderr);
      const d = await getJson<Obj>(c, ["deployment", "shop", "-n", ns]);
      const sel = (d.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      assert.equal(sel["app.kubernetes.io/name"], "nodescale", "the live selector is unchanged");
      assert.equal((await releaseStatus(helmBin, ns)).status, "failed");
      await helmMust(c, helmBin, ["rollback", "shop", "3", "-n", ns, ...WAIT]);
      assert.deepEqual(await releaseStatus(helmBin, ns), { version: 5, status: "deployed" });
    });

    test("uninstall: nothing of the release is left", async () => {
      await helmMust(c, helmBin, ["uninstall", "shop", "-n", ns, "--wait", "--timeout", "2m"]);
      const left = await kubectlMust(c, [
        "get",
        "all,configmap,secret,serviceaccount,pdb,networkpolicy,hpa,servicemonitor,httproute",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/instance=shop",
        "-o",
        "name",
      ]);
      assert.equal(left.trim(), "", `left behind:\n${left}`);
      await eventually("the pods gone", 60_000, async () => (await readyPods(ns)) === 0);
    });
  });
}

// kubectl's strict decoding says `unknown field "..."`; server-side apply's typed patch says
// `field not declared in schema`.
const REJECTED =
  /unknown field "spec\.revisionHistoryLimitt"|\.spec\.revisionHistoryLimitt: field not declared in schema/;

describe("a template with an unknown field is rejected by the server", () => {
  const ns = "nodescale-unknown-field";
  let patched: { dir: string; dispose: () => void };
  before(async () => {
    await freshNamespace(c, ns);
    await externalServiceSecrets(c, ns);
    patched = strippedChart();
    const f = join(patched.dir, "templates/deployment.yaml");
    const src = readFileSync(f, "utf8");
    const out = src.replace(/^(\s+)revisionHistoryLimit:/m, "$1revisionHistoryLimitt: 3\n$1revisionHistoryLimit:");
    assert.notEqual(out, src, "could not patch deployment.yaml");
    writeFileSync(f, out);
  });
  after(async () => {
    patched?.dispose();
    await kubectl(c, ["delete", "namespace", ns, "--wait=false"]);
  });

  test("kubectl apply --validate=strict: the server names the field", async () => {
    const rendered = await helmMust(c, "helm4", [
      "template",
      "bad",
      patched.dir,
      "-n",
      ns,
      "-f",
      join(VALUES, "external-services.yaml"),
    ]);
    const r = await kubectl(
      c,
      ["apply", "--server-side", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "-"],
      {
        input: rendered,
      },
    );
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, REJECTED, r.stderr);
  });

  test("helm4 install (server-side apply, fieldValidation=Strict by default) fails on it", async () => {
    const r = await helm(c, "helm4", [
      "install",
      "bad4",
      patched.dir,
      "-n",
      ns,
      "-f",
      join(VALUES, "external-services.yaml"),
      "--timeout",
      "2m",
    ]);
    assert.notEqual(r.code, 0, `installed:\n${r.stdout}`);
    assert.match(r.stderr, REJECTED, r.stderr);
    const d = await kubectl(c, ["get", "deployment", "bad4-nodescale", "-n", ns]);
    assert.notEqual(d.code, 0, "the Deployment must not exist");
  });

  // Helm 3.22 validates client-side only when the server cannot (kubectl's ParamVerifyingSchema
  // skips it when the server supports fieldValidation), yet sends no fieldValidation=Strict
  // itself: the server drops the field with a warning and the install succeeds. The lifecycle
  // tests above therefore fail on any "Warning:" in Helm's output; Helm 3 users are told to
  // check `helm template | kubectl apply --dry-run=server --validate=strict` (or use Helm 4).
  test("helm3 install: the server only warns (Helm 3 sends no fieldValidation=Strict) and drops the field", async () => {
    const r = await helm(c, "helm3", [
      "install",
      "bad3",
      patched.dir,
      "-n",
      ns,
      "-f",
      join(VALUES, "external-services.yaml"),
      "--timeout",
      "2m",
    ]);
    assert.equal(r.code, 0, `Helm 3 behaves differently now, update this test and the README:\n${r.stderr}`);
    assert.match(r.stderr, /Warning: unknown field \\?"spec\.revisionHistoryLimitt\\?"/, r.stderr);
    const d = await getJson<Obj>(c, ["deployment", "bad3-nodescale", "-n", ns]);
    assert.equal((d.spec as Record<string, unknown>).revisionHistoryLimitt, undefined, "the field was dropped");
  });
});
