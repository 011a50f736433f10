// What `make load-cluster` applies: a ConfigMap holding the `k6 archive` of one scenario and a
// k6-operator TestRun that runs it on PARALLELISM runners; and how k6 splits a shape over them.

import { clusterShape, type Shape, type ShapeName } from "../../load/shapes.ts";

/** The key of the archive in the ConfigMap, and the file the runners run (/test/<key>). */
export const ARCHIVE_KEY = "archive.tar";
/** A ConfigMap holds at most 1 MiB (etcd's object limit, binaryData counted base64-decoded). */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;

/**
 * Trend statistics each runner reports (k6 `--summary-trend-stats`, given to `k6 archive`, so
 * they are part of the archived options). `count` weighs each runner's numbers; the grid of
 * percentiles lets the combined percentiles be computed from each runner's distribution
 * (combine.ts) instead of guessed from one percentile of each.
 */
export const SUMMARY_TREND_STATS = [
  "count",
  "avg",
  "min",
  "med",
  "max",
  "p(1)",
  "p(5)",
  "p(10)",
  "p(25)",
  "p(50)",
  "p(75)",
  "p(90)",
  "p(95)",
  "p(97.5)",
  "p(99)",
  "p(99.5)",
  "p(99.9)",
];

export type LoadClusterOptions = {
  name: string;
  namespace: string;
  scenario: ShapeName;
  targetRps: number;
  parallelism: number;
  baseUrl: string;
  image: string;
  runnerCpu: string;
  runnerMemory: string;
  /** SHAPE_TIME_SCALE, when set. */
  timeScale?: string;
  /** The caller's K6_* settings (an output, say), passed to every runner. */
  k6Env: Record<string, string>;
};

/** The environment of every runner: what the scripts read, then the caller's K6_* settings. */
export function runnerEnv(o: LoadClusterOptions): { name: string; value: string }[] {
  const env: Record<string, string> = {
    ...o.k6Env,
    BASE_URL: o.baseUrl,
    TARGET_RPS: String(o.targetRps),
    // each runner prints its summary between marker lines; its log is all that is left of it
    SUMMARY_TO_STDOUT: "1",
    ...(o.timeScale ? { SHAPE_TIME_SCALE: o.timeScale } : {}),
  };
  return Object.entries(env).map(([name, value]) => ({ name, value }));
}

/** `k6 archive` arguments: the options depend on TARGET_RPS, and k6 freezes them in the archive. */
export function archiveArgs(o: LoadClusterOptions, out: string): string[] {
  return [
    "archive",
    "-e",
    `TARGET_RPS=${o.targetRps}`,
    ...(o.timeScale ? ["-e", `SHAPE_TIME_SCALE=${o.timeScale}`] : []),
    `--summary-trend-stats=${SUMMARY_TREND_STATS.join(",")}`,
    "-O",
    out,
    `load/scenarios/${o.scenario}.ts`,
  ];
}

const labels = (o: LoadClusterOptions) => ({
  "app.kubernetes.io/name": "nodescale-load",
  "app.kubernetes.io/part-of": "nodescale",
  "nodescale.dev/scenario": o.scenario,
});

/** The ConfigMap with the archive (base64 in binaryData); `archive` null: a dry run, no archive. */
export function configMap(o: LoadClusterOptions, archive: Buffer | null): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: o.name,
      namespace: o.namespace,
      labels: labels(o),
      ...(archive ? {} : { annotations: { "nodescale.dev/dry-run": "no archive: k6 archive did not run" } }),
    },
    binaryData: { [ARCHIVE_KEY]: archive ? archive.toString("base64") : "" },
  };
}

/** The TestRun (k6-operator v1.6.0, k6.io/v1alpha1). */
export function testRun(o: LoadClusterOptions): Record<string, unknown> {
  return {
    apiVersion: "k6.io/v1alpha1",
    kind: "TestRun",
    metadata: { name: o.name, namespace: o.namespace, labels: labels(o) },
    spec: {
      parallelism: o.parallelism,
      script: { configMap: { name: o.name, file: ARCHIVE_KEY } },
      // The initializer (k6 inspect of the archive) and the starter take the runner's settings
      // when not given; the jobs stay after the run, so the runners' logs can be read.
      runner: {
        image: o.image,
        env: runnerEnv(o),
        metadata: { labels: labels(o) },
        // requests = limits: a runner that is throttled sends late and reports the server slow
        resources: {
          requests: { cpu: o.runnerCpu, memory: o.runnerMemory },
          limits: { cpu: o.runnerCpu, memory: o.runnerMemory },
        },
        containerSecurityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
      },
    },
  };
}

// ----- how k6 splits a shape over N runners -----------------------------------------------
//
// The operator starts runner i of N (1-based) with --execution-segment=(i-1)/N:i/N and
// --execution-segment-sequence=0,1/N,...,1 (pkg/segmentation at v1.6.0). In k6
// (lib/execution_segment.go, lib/executor/ramping_arrival_rate.go): an arrival rate is
// multiplied by the segment's length exactly (a fraction: rate/N each), and the iterations of
// the one global schedule are striped over the segments, so together the runners send the
// shape's rate; a whole number (VUs) is striped too: with N equal segments, of every N units
// runner i gets the i-th, so it gets floor(v/N), plus 1 when i <= v mod N.

/** A whole number k6 gives runner `index` (1-based) of `n` equal segments. */
export function segmentShare(value: number, index: number, n: number): number {
  return Math.floor(value / n) + (index - 1 < value % n ? 1 : 0);
}

export type RunnerShare = {
  index: number;
  /** Arrival shapes: the rates (start, then each stage's target); sessions: VU counts. */
  rates: number[];
  preAllocatedVUs?: number;
  maxVUs?: number;
};

/** What each of `n` runners runs of `shape`. */
export function runnerShares(shape: Shape, n: number): RunnerShare[] {
  return Array.from({ length: n }, (_, k) => {
    const index = k + 1;
    if (shape.executor === "ramping-arrival-rate") {
      return {
        index,
        rates: [shape.startRate, ...shape.stages.map((s) => s.target)].map((r) => r / n),
        preAllocatedVUs: segmentShare(shape.preAllocatedVUs, index, n),
        maxVUs: segmentShare(shape.maxVUs, index, n),
      };
    }
    return {
      index,
      rates: [shape.startVUs, ...shape.stages.map((s) => s.target)].map((v) => segmentShare(v, index, n)),
    };
  });
}

/** Why `n` runners cannot run `scenario` at `targetRps` as intended; empty when they can. */
export function splitProblems(scenario: ShapeName, targetRps: number, n: number): string[] {
  const shape = clusterShape(scenario, targetRps);
  const shares = runnerShares(shape, n);
  const problems: string[] = [];
  if (shape.executor === "ramping-arrival-rate") {
    const starved = shares.filter((s) => (s.maxVUs ?? 0) < 1);
    if (starved.length > 0)
      problems.push(
        `${starved.length} of ${n} runners get no VU (maxVUs ${shape.maxVUs} over ${n} runners): their share of the arrivals would all be dropped; use PARALLELISM <= ${shape.maxVUs}`,
      );
  } else if (shares.some((s) => Math.max(...s.rates) < 1)) {
    problems.push(
      `some of ${n} runners get no VU at the peak (${Math.max(shape.startVUs, ...shape.stages.map((s) => s.target))} VUs over ${n} runners)`,
    );
  }
  return problems;
}
