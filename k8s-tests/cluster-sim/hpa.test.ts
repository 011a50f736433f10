// The chart's HPA against simulated load, on the simulated cluster (`make cluster-sim-up`).
//
// The metrics come the way they come on a real cluster: metrics-server scrapes each node's
// kubelet resource-metrics endpoint and serves metrics.k8s.io; the real HPA controller in
// kube-controller-manager reads them. Only the kubelet is simulated: kwok serves that endpoint
// for its fake nodes, with CPU usage taken from a ClusterResourceUsage object.
//
// The load model: a total CPU demand D (cores) shared evenly by the running pods, as a load
// balancer would share requests; the test rewrites the per-pod usage (D / pods) as pods come
// and go. With the chart's defaults (request 500m, target 70 %), D = 3 cores settles at
// ceil(3 / 0.35) = 9 pods. The test raises D, sees the replicas rise within the chart's
// scaleUp policies, lowers D, and sees them fall only after the scaleDown stabilization
// window and no faster than its policies. It records replicas over time as JSON and SVG in
// .local/cluster-sim/results/.
//
//   node --test k8s-tests/cluster-sim/hpa.test.ts
// Env: HPA_DEMAND_CORES (default 3), HPA_IDLE_CORES (default 0.2),
//      HPA_SCALE_DOWN_STEPS (scale-down steps to observe, default 2; 0 = until minReplicas)
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  type Cluster,
  cluster,
  eventually,
  externalServiceSecrets,
  freshNamespace,
  getJson,
  helmMust,
  kubectl,
  kubectlMust,
  STATE,
  sleep,
  strippedChart,
  VALUES,
} from "./lib.ts";
import { lineChart } from "./svg.ts";

const NS = "nodescale-hpa";
const USAGE = "nodescale-hpa-load";
const HIGH = Number(process.env.HPA_DEMAND_CORES ?? 3);
const IDLE = Number(process.env.HPA_IDLE_CORES ?? 0.2);
const DOWN_STEPS = Number(process.env.HPA_SCALE_DOWN_STEPS ?? 2);
const SAMPLE_MS = 2000;
// A change is seen up to a sample (plus the time the sample takes) late; a period start taken
// this much later only loosens a bound, never tightens it.
const SLACK_S = SAMPLE_MS / 1000 + 2;

interface Policy {
  type: "Pods" | "Percent";
  value: number;
  periodSeconds: number;
}
interface Rules {
  stabilizationWindowSeconds: number;
  selectPolicy: "Max" | "Min" | "Disabled";
  policies: Policy[];
}
interface HpaSpec {
  minReplicas: number;
  maxReplicas: number;
  metrics: { resource: { name: string; target: { averageUtilization: number } } }[];
  behavior: { scaleUp: Rules; scaleDown: Rules };
}
interface Sample {
  t: number; // seconds since the test's start
  replicas: number; // the Deployment's spec.replicas: what the HPA decided
  running: number; // pods Running (not terminating): what shares the load
  desired: number | null; // the HPA's status.desiredReplicas
  utilization: number | null; // the HPA's current average CPU utilization (%)
  demand: number; // total simulated CPU demand (cores)
}

let c: Cluster;
let chart: { dir: string; dispose: () => void };
const samples: Sample[] = [];
let t0 = 0;
let demand = IDLE;
let perPodMilli = -1;
let sampling = false;
let sampler: Promise<void> | undefined;
const marks: { t: number; label: string }[] = [];

before(async () => {
  c = await cluster();
  chart = strippedChart();
  await freshNamespace(c, NS);
  await externalServiceSecrets(c, NS);
});

after(async () => {
  sampling = false;
  await sampler;
  chart?.dispose();
  await kubectl(c, ["delete", "clusterresourceusage", USAGE, "--ignore-not-found"]);
  await kubectl(c, ["delete", "namespace", NS, "--wait=false"]);
});

const now = () => (Date.now() - t0) / 1000;

async function setUsage(milli: number): Promise<void> {
  if (milli === perPodMilli) return;
  const doc = {
    apiVersion: "kwok.x-k8s.io/v1alpha1",
    kind: "ClusterResourceUsage",
    metadata: { name: USAGE },
    spec: {
      selector: { matchNamespaces: [NS] },
      usages: [{ usage: { cpu: { value: `${milli}m` }, memory: { value: "160Mi" } } }],
    },
  };
  await kubectlMust(c, ["apply", "--server-side", "--field-manager=hpa-test", "--validate=strict", "-f", "-"], {
    input: JSON.stringify(doc),
  });
  perPodMilli = milli;
}

async function sample(): Promise<Sample> {
  const [d, h, pods] = await Promise.all([
    getJson<{ spec: { replicas: number } }>(c, ["deployment", "shop", "-n", NS]),
    getJson<{
      status: {
        desiredReplicas?: number;
        currentMetrics?: { resource?: { current?: { averageUtilization?: number } } }[];
      };
    }>(c, ["hpa", "shop", "-n", NS]),
    getJson<{ items: { metadata: { deletionTimestamp?: string }; status: { phase: string } }[] }>(c, [
      "pods",
      "-n",
      NS,
      "-l",
      "app.kubernetes.io/instance=shop,app.kubernetes.io/component!=test",
    ]),
  ]);
  const running = pods.items.filter((p) => p.status.phase === "Running" && !p.metadata.deletionTimestamp).length;
  return {
    t: now(),
    replicas: d.spec.replicas,
    running,
    desired: h.status.desiredReplicas ?? null,
    utilization: h.status.currentMetrics?.[0]?.resource?.current?.averageUtilization ?? null,
    demand,
  };
}

/** Samples every SAMPLE_MS and keeps the per-pod usage at demand / running pods. */
function startSampling(): void {
  sampling = true;
  sampler = (async () => {
    while (sampling) {
      try {
        const s = await sample();
        samples.push(s);
        if (s.running > 0) await setUsage(Math.round((demand * 1000) / s.running));
      } catch (e) {
        console.log(`sample failed (kept going): ${e}`);
      }
      await sleep(SAMPLE_MS);
    }
  })();
}

const last = () => samples[samples.length - 1];
/** The replicas in effect at time t (the last sample at or before t). */
function replicasAt(t: number): number {
  let r = samples[0]?.replicas ?? 0;
  for (const s of samples) {
    if (s.t > t) break;
    r = s.replicas;
  }
  return r;
}
/** Every change of the Deployment's replicas: [time, from, to]. */
function changes(fromT = 0): [number, number, number][] {
  const out: [number, number, number][] = [];
  samples.forEach((b, i) => {
    const a = samples[i - 1];
    if (a && b.t >= fromT && b.replicas !== a.replicas) out.push([b.t, a.replicas, b.replicas]);
  });
  return out;
}
/** The most the HPA may add in one period, from a period-start count (the chart's scaleUp). */
function upLimit(rules: Rules, start: number): number {
  const proposals = rules.policies.map((p) =>
    p.type === "Pods" ? start + p.value : Math.ceil(start * (1 + p.value / 100)),
  );
  return rules.selectPolicy === "Min" ? Math.min(...proposals) : Math.max(...proposals);
}
/** The fewest replicas the HPA may go down to in one period (the chart's scaleDown). */
function downLimit(rules: Rules, start: number): number {
  const proposals = rules.policies.map((p) =>
    p.type === "Pods" ? start - p.value : Math.trunc(start * (1 - p.value / 100)),
  );
  return rules.selectPolicy === "Min" ? Math.max(...proposals) : Math.min(...proposals);
}

function record(spec: HpaSpec, expected: number, tHigh: number, tLow: number): string {
  const dir = join(STATE, "results");
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const base = join(dir, `hpa-${stamp}`);
  writeFileSync(
    `${base}.json`,
    `${JSON.stringify({ hpa: spec, demandHighCores: HIGH, demandIdleCores: IDLE, expected, tHigh, tLow, marks, samples }, null, 2)}\n`,
  );
  const down = spec.behavior.scaleDown.stabilizationWindowSeconds;
  const svg = lineChart({
    title: `nodescale HPA on the simulated cluster: ${HIGH} cores of demand, then ${IDLE}`,
    xLabel: "seconds since the test started",
    leftLabel: "pods",
    rightLabel: "CPU demand (cores) / utilization (x100 %)",
    series: [
      {
        name: "replicas (HPA decision)",
        color: "#1f77b4",
        axis: "left",
        points: samples.map((s) => [s.t, s.replicas]),
      },
      {
        name: "pods running",
        color: "#2ca02c",
        axis: "left",
        dash: true,
        points: samples.map((s) => [s.t, s.running]),
      },
      { name: "demand, cores", color: "#d62728", axis: "right", points: samples.map((s) => [s.t, s.demand]) },
      {
        name: "avg utilization / 100",
        color: "#9467bd",
        axis: "right",
        dash: true,
        points: samples.filter((s) => s.utilization !== null).map((s) => [s.t, (s.utilization ?? 0) / 100]),
      },
    ],
    markers: marks.map((m) => ({ x: m.t, label: m.label })),
    bands: [{ x0: tLow, x1: tLow + down, label: `scaleDown stabilization ${down}s` }],
  });
  writeFileSync(`${base}.svg`, svg);
  writeFileSync(join(dir, "hpa-latest.svg"), svg);
  writeFileSync(join(dir, "hpa-latest.json"), `${JSON.stringify({ samples, marks }, null, 2)}\n`);
  return base;
}

test("the HPA scales the Deployment up under simulated load and back down, within the chart's behavior", {
  timeout: 30 * 60_000,
}, async () => {
  t0 = Date.now();
  await setUsage(Math.round((IDLE * 1000) / 2));
  await helmMust(c, "helm4", [
    "install",
    "shop",
    chart.dir,
    "-n",
    NS,
    "-f",
    join(VALUES, "external-services.yaml"),
    "--set",
    "fullnameOverride=shop",
    "--wait",
    "--wait-for-jobs",
    "--timeout",
    "4m",
  ]);
  marks.push({ t: now(), label: "installed" });
  const spec = (await getJson<{ spec: HpaSpec }>(c, ["hpa", "shop", "-n", NS])).spec;
  const cpu = spec.metrics.find((m) => m.resource?.name === "cpu");
  assert.ok(cpu, "the chart's HPA targets CPU");
  const target = cpu.resource.target.averageUtilization / 100;
  const request = 0.5; // resources.requests.cpu of the chart's defaults (asserted below)
  const podCpu = (
    await getJson<{ spec: { template: { spec: { containers: { resources: { requests: { cpu: string } } }[] } } } }>(c, [
      "deployment",
      "shop",
      "-n",
      NS,
    ])
  ).spec.template.spec.containers[0]?.resources.requests.cpu;
  assert.equal(podCpu, "500m");
  const expected = Math.min(spec.maxReplicas, Math.max(spec.minReplicas, Math.ceil(HIGH / (request * target))));
  console.log(
    `HPA: min ${spec.minReplicas}, max ${spec.maxReplicas}, target ${target * 100}% of ${request} cores; ` +
      `demand ${HIGH} cores -> expect ${expected} pods`,
  );

  startSampling();
  // 1. the metrics pipeline works: metrics-server -> metrics.k8s.io -> the HPA sees usage
  await eventually("the HPA to read CPU utilization from metrics.k8s.io", 180_000, async () => {
    const s = last();
    return s && s.utilization !== null;
  });
  const idle = last();
  assert.equal(idle?.replicas, spec.minReplicas, "idle: minReplicas");
  const top = await kubectlMust(c, ["top", "pods", "-n", NS, "--no-headers"]);
  console.log(`kubectl top pods (idle):\n${top.trimEnd()}`);

  // 2. load: replicas rise to the expected count, within the scaleUp policies
  demand = HIGH;
  const tHigh = now();
  marks.push({ t: tHigh, label: `demand ${HIGH} cores` });
  await eventually(
    `${expected} replicas`,
    6 * 60_000,
    async () => {
      const s = last();
      return (
        s && s.replicas >= expected && samples.filter((x) => x.t > s.t - 30).every((x) => x.replicas === s.replicas)
      );
    },
    SAMPLE_MS,
  );
  const up = changes(tHigh);
  console.log(`scale-up steps: ${up.map(([t, a, b]) => `${a}->${b} at +${(t - tHigh).toFixed(0)}s`).join(", ")}`);
  assert.ok(up.length >= 1);
  assert.equal(replicasAt(1e9), expected, `settles at ceil(demand / (request x target)) = ${expected}`);
  const upRules = spec.behavior.scaleUp;
  // More than the policies allow in one period is wanted (demand / target from minReplicas),
  // so the policies must show: it takes more than one step to get there.
  if (expected > upLimit(upRules, spec.minReplicas)) {
    assert.ok(up.length >= 2, `${spec.minReplicas} -> ${expected} in one step: the scaleUp policies did not apply`);
  }
  for (const [t, , to] of up) {
    for (const p of upRules.policies) {
      const start = replicasAt(t - p.periodSeconds + SLACK_S);
      assert.ok(
        to <= upLimit(upRules, start),
        `${to} replicas at +${(t - tHigh).toFixed(0)}s exceeds the scaleUp limit from ${start}`,
      );
    }
  }

  // 3. load gone: nothing happens during the stabilization window, then down by the policies
  demand = IDLE;
  const tLow = now();
  marks.push({ t: tLow, label: `demand ${IDLE} cores` });
  const downRules = spec.behavior.scaleDown;
  const window = downRules.stabilizationWindowSeconds;
  const period = Math.max(...downRules.policies.map((p) => p.periodSeconds));
  const steps = DOWN_STEPS > 0 ? DOWN_STEPS : Number.POSITIVE_INFINITY;
  await eventually(
    DOWN_STEPS > 0 ? `${DOWN_STEPS} scale-down steps` : "minReplicas",
    (window + period * Math.min(steps, 20) + 120) * 1000,
    async () => {
      const downs = changes(tLow).filter(([, a, b]) => b < a);
      return downs.length >= steps || last()?.replicas === spec.minReplicas;
    },
    SAMPLE_MS,
  );
  sampling = false;
  await sampler;
  const downs = changes(tLow);
  console.log(`scale-down steps: ${downs.map(([t, a, b]) => `${a}->${b} at +${(t - tLow).toFixed(0)}s`).join(", ")}`);
  const base = record(spec, expected, tHigh, tLow);
  console.log(`replicas over time: ${base}.svg (and .json)`);

  const firstDown = downs[0];
  assert.ok(firstDown, "the replicas fell after the load went");
  assert.ok(
    downs.every(([, a, b]) => b < a),
    "no scale-up after the load went",
  );
  assert.ok(
    firstDown[0] - tLow >= window - 1,
    `the first scale-down came ${(firstDown[0] - tLow).toFixed(0)}s after the load went: before the ${window}s stabilization window`,
  );
  assert.ok(
    firstDown[0] - tLow <= window + 90,
    `the first scale-down came ${(firstDown[0] - tLow).toFixed(0)}s after the load went: the window is ${window}s`,
  );
  for (const [t, , to] of downs) {
    for (const p of downRules.policies) {
      const start = replicasAt(t - p.periodSeconds + SLACK_S);
      assert.ok(
        to >= downLimit(downRules, start),
        `${to} replicas at +${(t - tLow).toFixed(0)}s is below the scaleDown limit from ${start}`,
      );
    }
  }
  assert.equal(firstDown[2], downLimit(downRules, firstDown[1]), "the first step goes as far as the policies allow");
});
