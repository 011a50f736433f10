// The static check of `make load-cluster`'s manifests (k8s-tests/static/run.sh): the files a
// DRY_RUN=1 run wrote, for SCENARIO at TARGET_RPS over PARALLELISM runners.
//
//   node k8s-tests/load-cluster/check.ts DIR SCENARIO TARGET_RPS PARALLELISM
//
// - testrun.json validates strictly against the k6-operator v1.6.0 field list
//   (testrun-fields.ts; an unknown field, a missing required one or a wrong type fails), plus
//   what the operator's own Validate()/ParseScript() refuse;
// - writes DIR/core-pod.json: the runner's core/v1 values (env, resources, security context)
//   in a Pod as the operator builds it, for kube-validate to decode strictly with k8s.io/api;
// - parallelism, the script's ConfigMap and key, the runners' image, environment and resources;
// - the split: k6's execution segments give each runner rate/N of every stage and whole VU
//   counts that add up to the shape's, each runner at least one VU.
// Prints `ok - ...` per verified fact; exits 1 at the first failure.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { K6_IMAGE } from "../../load/k6.ts";
import { clusterShape, type ShapeName } from "../../load/shapes.ts";
import { ARCHIVE_KEY, runnerShares } from "./manifests.ts";
import { type CoreValue, corePod, semanticProblems, TESTRUN, validate } from "./testrun-fields.ts";

type Json = Record<string, unknown>;

function fail(message: string): never {
  console.error(`not ok - ${message}`);
  process.exit(1);
}
function ok(condition: unknown, message: string): void {
  if (!condition) fail(message);
  console.log(`ok - ${message}`);
}
// biome-ignore lint/suspicious/noExplicitAny: walking untyped JSON
const dig = (o: any, ...path: string[]): any => path.reduce((v, k) => (v == null ? undefined : v[k]), o);

/** Core values the Pod of corePod() carries (everything else would go unchecked). */
const CORE_IN_POD = new Set([
  "env",
  "envFrom",
  "resources",
  "containerSecurityContext",
  "readinessProbe",
  "livenessProbe",
  "volumeMounts",
  "affinity",
  "imagePullSecrets",
  "tolerations",
  "topologySpreadConstraints",
  "securityContext",
  "volumes",
]);

/** Problems of a TestRun against the field list and the operator's own checks. */
export function testRunProblems(tr: Json): { problems: string[]; core: CoreValue[] } {
  const core: CoreValue[] = [];
  const problems = [...validate(tr, TESTRUN, "", core), ...semanticProblems(tr)];
  for (const c of core) {
    const m = /^spec\.runner\.([A-Za-z]+)(\[\d+\])?$/.exec(c.path);
    if (!m || !CORE_IN_POD.has(m[1] as string)) problems.push(`${c.path}: a ${c.core} this check does not decode`);
  }
  return { problems, core };
}

function main(dir: string, scenario: ShapeName, targetRps: number, n: number): void {
  const tr = JSON.parse(readFileSync(join(dir, "testrun.json"), "utf8")) as Json;
  const cm = JSON.parse(readFileSync(join(dir, "configmap.json"), "utf8")) as Json;
  const { problems, core } = testRunProblems(tr);
  ok(
    problems.length === 0,
    `the TestRun validates against the k6-operator v1.6.0 fields${problems.map((p) => `\n  ${p}`).join("")}`,
  );
  writeFileSync(join(dir, "core-pod.json"), JSON.stringify(corePod(dig(tr, "spec", "runner") ?? {}, "runner-core")));
  ok(
    core.length >= 2,
    `its core/v1 values go to kube-validate in core-pod.json (${core.map((c) => c.path).join(", ")})`,
  );

  const spec = dig(tr, "spec");
  ok(spec.parallelism === n, `parallelism: ${n} (${spec.parallelism})`);
  const script = dig(spec, "script", "configMap");
  ok(
    script?.name === dig(cm, "metadata", "name") &&
      dig(tr, "metadata", "namespace") === dig(cm, "metadata", "namespace"),
    `the script is the ConfigMap ${script?.name} beside it`,
  );
  ok(
    script?.file === ARCHIVE_KEY && ARCHIVE_KEY in (dig(cm, "binaryData") ?? {}),
    `the runners run its key ${ARCHIVE_KEY}`,
  );
  const runner = dig(spec, "runner");
  ok(runner.image === K6_IMAGE, `the runners run ${K6_IMAGE}, the image make load pins (${runner.image})`);
  const env = Object.fromEntries(
    ((runner.env ?? []) as { name: string; value: string }[]).map((e) => [e.name, e.value]),
  );
  ok(env.TARGET_RPS === String(targetRps), `TARGET_RPS=${targetRps} reaches the runners (${env.TARGET_RPS})`);
  ok(env.SUMMARY_TO_STDOUT === "1", "SUMMARY_TO_STDOUT=1: each runner prints its summary between the marker lines");
  // the chart's Service: <release>.<namespace>, port service.port (80 by default), as kind-up installs it
  const servicePort = /^service:\n(?:\s+.*\n)*?\s+port: (\d+)/m.exec(
    readFileSync(join(import.meta.dirname, "../../charts/nodescale/values.yaml"), "utf8"),
  )?.[1];
  const url = new URL(env.BASE_URL ?? "http://invalid");
  ok(
    url.hostname === "nodescale.nodescale.svc.cluster.local" && (url.port || "80") === servicePort,
    `BASE_URL is the chart's Service, port ${servicePort} (${env.BASE_URL})`,
  );
  for (const side of ["requests", "limits"])
    for (const r of ["cpu", "memory"])
      ok(
        dig(runner, "resources", side, r),
        `the runners have a ${r} ${side.replace(/s$/, "")} (${dig(runner, "resources", side, r)})`,
      );

  // the split of what the manifest asks for: its TARGET_RPS over its parallelism
  const shape = clusterShape(scenario, Number(env.TARGET_RPS));
  const shares = runnerShares(shape, spec.parallelism);
  ok(shares.length === n, `${n} runner shares`);
  if (shape.executor === "ramping-arrival-rate") {
    const totals = [shape.startRate, ...shape.stages.map((s) => s.target)];
    totals.forEach((total, stage) => {
      const each = shares.map((s) => s.rates[stage] as number);
      ok(
        each.every((r) => r === total / n) && Math.abs(each.reduce((a, b) => a + b, 0) - total) < 1e-6,
        `stage ${stage}: ${total} req/s split evenly, ${total / n} per runner`,
      );
    });
    for (const key of ["preAllocatedVUs", "maxVUs"] as const) {
      const each = shares.map((s) => s[key] as number);
      ok(
        each.reduce((a, b) => a + b, 0) === shape[key] &&
          Math.max(...each) - Math.min(...each) <= 1 &&
          Math.min(...each) >= 1,
        `${key} ${shape[key]} striped over the runners: ${[...new Set(each)].join(" or ")} each, at least 1`,
      );
    }
  } else {
    const totals = [shape.startVUs, ...shape.stages.map((s) => s.target)];
    totals.forEach((total, stage) => {
      const each = shares.map((s) => s.rates[stage] as number);
      ok(
        each.reduce((a, b) => a + b, 0) === total && Math.max(...each) - Math.min(...each) <= 1,
        `stage ${stage}: ${total} VUs striped evenly`,
      );
    });
  }
}

if (import.meta.main) {
  const [dir, scenario, rps, n] = process.argv.slice(2);
  if (!dir || !scenario || !rps || !n) fail("usage: check.ts DIR SCENARIO TARGET_RPS PARALLELISM");
  main(dir, scenario as ShapeName, Number(rps), Number(n));
}
