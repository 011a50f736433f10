// Unit tests of `make load-cluster`'s pure parts: the TestRun field list refuses what the
// operator's schema refuses, k6's striping of whole numbers, the summaries read from runner
// logs and combined (percentiles from merged distributions), the options from the environment.
// Run by `make k8s-static` (k8s-tests/static/run.sh).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { clusterShape } from "../../load/shapes.ts";
import { testRunProblems } from "./check.ts";
import {
  combine,
  evaluate,
  mergedQuantile,
  SUMMARY_BEGIN,
  SUMMARY_END,
  type Summary,
  summaryFromLog,
} from "./combine.ts";
import { type LoadClusterOptions, runnerShares, segmentShare, splitProblems, testRun } from "./manifests.ts";
import { optionsFrom } from "./run.ts";

const options = (o: Partial<LoadClusterOptions> = {}): LoadClusterOptions => ({
  name: "nodescale-ramp-x",
  namespace: "nodescale-load",
  scenario: "ramp",
  targetRps: 50000,
  parallelism: 10,
  baseUrl: "http://nodescale.nodescale.svc.cluster.local",
  image: "grafana/k6:2.3.0",
  runnerCpu: "2",
  runnerMemory: "2Gi",
  k6Env: {},
  ...o,
});

// biome-ignore lint/suspicious/noExplicitAny: planting faults in untyped JSON
const planted = (change: (tr: any) => void) => {
  const tr = structuredClone(testRun(options()));
  change(tr);
  return testRunProblems(tr).problems;
};

describe("the TestRun field list (k6-operator v1.6.0)", () => {
  it("accepts the TestRun make load-cluster renders", () => {
    assert.deepEqual(testRunProblems(testRun(options())).problems, []);
  });
  it("refuses a misspelt field anywhere, naming it", () => {
    assert.match(
      planted((t) => {
        t.spec.paralelism = t.spec.parallelism;
        delete t.spec.parallelism;
      }).join("\n"),
      /spec\.paralelism: unknown field/,
    );
    assert.match(
      planted((t) => {
        t.spec.runner.resource = {};
      }).join("\n"),
      /spec\.runner\.resource: unknown field/,
    );
    assert.match(
      planted((t) => {
        t.spec.script.configMap.key = "x";
      }).join("\n"),
      /spec\.script\.configMap\.key: unknown field/,
    );
    assert.match(
      planted((t) => {
        t.metadata.labelz = {};
      }).join("\n"),
      /metadata\.labelz: unknown field/,
    );
  });
  it("refuses a missing required field and a wrong type", () => {
    assert.match(
      planted((t) => {
        delete t.spec.parallelism;
      }).join("\n"),
      /spec\.parallelism: required/,
    );
    assert.match(
      planted((t) => {
        t.spec.parallelism = "10";
      }).join("\n"),
      /spec\.parallelism: expected a 32-bit integer/,
    );
    assert.match(
      planted((t) => {
        t.spec.quiet = true;
      }).join("\n"),
      /spec\.quiet: expected a string/,
    );
    assert.match(
      planted((t) => {
        t.spec.cleanup = "always";
      }).join("\n"),
      /spec\.cleanup: expected one of post/,
    );
    assert.match(
      planted((t) => {
        t.spec.runner.metadata.labels.n = 1;
      }).join("\n"),
      /labels\.n: expected a string/,
    );
  });
  it("refuses what the operator refuses besides the schema", () => {
    assert.match(
      planted((t) => {
        t.spec.script.localFile = "/x.js";
      }).join("\n"),
      /exactly one of configMap/,
    );
    assert.match(
      planted((t) => {
        t.spec.script.configMap.file = "a/archive.tar";
      }).join("\n"),
      /a key, no path/,
    );
    assert.match(
      planted((t) => {
        t.spec.token = "x";
      }).join("\n"),
      /reserved by Grafana Cloud/,
    );
    assert.match(
      planted((t) => {
        t.apiVersion = "k6.io/v1";
      }).join("\n"),
      /apiVersion/,
    );
  });
  it("refuses a core/v1 value the check would not decode", () => {
    assert.match(
      planted((t) => {
        t.spec.initializer = { resources: {} };
      }).join("\n"),
      /spec\.initializer\.resources: a ResourceRequirements this check does not decode/,
    );
  });
});

describe("k6's execution segments", () => {
  it("stripes a whole number like k6: of every N units runner i gets the i-th", () => {
    for (const n of [1, 2, 3, 7, 10]) {
      for (const v of [0, 1, 5, 9, 10, 11, 123, 2500]) {
        const byStriping = Array.from({ length: n }, () => 0);
        for (let unit = 0; unit < v; unit++) byStriping[unit % n] = (byStriping[unit % n] as number) + 1;
        assert.deepEqual(
          Array.from({ length: n }, (_, k) => segmentShare(v, k + 1, n)),
          byStriping,
          `${v} over ${n}`,
        );
      }
    }
  });
  it("gives each runner rate/N of every stage", () => {
    const shape = clusterShape("spike", 1234);
    const shares = runnerShares(shape, 7);
    if (shape.executor !== "ramping-arrival-rate") throw new Error("spike is an arrival shape");
    shape.stages.forEach((s, i) => {
      const sum = shares.reduce((a, r) => a + (r.rates[i + 1] as number), 0);
      assert.ok(Math.abs(sum - s.target) < 1e-9);
    });
  });
  it("refuses more runners than VUs", () => {
    assert.deepEqual(splitProblems("ramp", 50000, 10), []);
    assert.match(splitProblems("smoke", 5, 50).join(), /get no VU/);
  });
});

/** k6's TrendSink.P: sorted values, linear interpolation at p*(n-1). */
function k6Percentile(sorted: number[], p: number): number {
  const i = p * (sorted.length - 1);
  const lo = sorted[Math.floor(i)] as number;
  const hi = sorted[Math.ceil(i)] as number;
  return lo + (hi - lo) * (i - Math.floor(i));
}
const STATS = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999];
function trendValues(samples: number[]): Record<string, number> {
  const s = [...samples].sort((a, b) => a - b);
  const v: Record<string, number> = {
    count: s.length,
    avg: s.reduce((a, b) => a + b, 0) / s.length,
    min: s[0] as number,
    max: s[s.length - 1] as number,
    med: k6Percentile(s, 0.5),
  };
  for (const p of STATS) v[`p(${p * 100})`] = k6Percentile(s, p);
  return v;
}
/** A deterministic sample of a latency-like distribution (no Math.random: reproducible). */
function samples(n: number, scale: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const u = (x + 1) / (2 ** 31 + 1);
    return scale * -Math.log(1 - u) + 5;
  });
}
const summaryOf = (lat: number[], reqs: number, failed: number, p95Ok: boolean): Summary => ({
  metrics: {
    http_reqs: { type: "counter", contains: "default", values: { count: reqs, rate: reqs / 100 } },
    http_req_failed: {
      type: "rate",
      values: { rate: failed / reqs, passes: failed, fails: reqs - failed },
      thresholds: { "rate<=0.01": { ok: failed / reqs <= 0.01 } },
    },
    "http_req_duration{scenario:ramp,kind:api}": {
      type: "trend",
      contains: "time",
      values: trendValues(lat),
      thresholds: { "p(95)<300": { ok: p95Ok } },
    },
    vus: { type: "gauge", values: { value: 3, min: 0, max: 40 } },
  },
});

describe("the runners' summaries", () => {
  it("uses the marker lines the scripts print (load/scenarios/common.ts)", () => {
    const common = readFileSync(join(import.meta.dirname, "../../load/scenarios/common.ts"), "utf8");
    assert.ok(common.includes(`SUMMARY_BEGIN = "${SUMMARY_BEGIN}"`), "begin marker differs from common.ts");
    assert.ok(common.includes(`SUMMARY_END = "${SUMMARY_END}"`), "end marker differs from common.ts");
  });
  it("reads the summary between the markers of a runner's log, without setup data", () => {
    const data = {
      metrics: { http_reqs: { type: "counter", values: { count: 3, rate: 1 } } },
      setup_data: { sids: ["sid=secret"] },
    };
    const log = `time="..." level=warning msg="login: HTTP 429"\n\n${SUMMARY_BEGIN}\n${JSON.stringify(data)}\n${SUMMARY_END}\n`;
    const s = summaryFromLog(log);
    assert.equal(s?.metrics.http_reqs?.values.count, 3);
    assert.equal(s && "setup_data" in s, false);
    assert.equal(summaryFromLog(`${SUMMARY_BEGIN}\n{"metrics":{}`), null, "no end marker: no summary");
    assert.equal(summaryFromLog("k6 was killed"), null);
  });
  it("sums counts, pools rates, weighs the mean, and re-evaluates thresholds on the whole", () => {
    const a = summaryOf(samples(4000, 20, 1), 4000, 20, true);
    const b = summaryOf(samples(4000, 20, 2), 4000, 60, true);
    const c = combine([a, b]);
    assert.equal(c.metrics.http_reqs?.values.count, 8000);
    assert.equal(c.metrics.http_reqs?.values.rate, 80);
    assert.equal(c.metrics.http_req_failed?.values.passes, 80);
    assert.equal(c.metrics.http_req_failed?.values.rate, 0.01);
    assert.equal(c.metrics.vus?.values.value, 6);
    const failed = c.thresholds.find((t) => t.expression === "rate<=0.01");
    assert.deepEqual(failed?.failedOnRunners, [2], "runner 2 failed on its share (1.5 %)");
    assert.equal(failed?.combined, true, "1 % over all requests passes");
    const all = [...samples(4000, 20, 1), ...samples(4000, 20, 2)];
    const avg = all.reduce((x, y) => x + y, 0) / all.length;
    assert.ok(Math.abs((c.metrics["http_req_duration{scenario:ramp,kind:api}"]?.values.avg as number) - avg) < 1e-9);
  });
  it("takes percentiles from the merged distributions, not the max of the runners' (a slow runner and a fast one)", () => {
    const fast = samples(9000, 10, 3);
    const slow = samples(1000, 200, 4);
    const c = combine([summaryOf(fast, 9000, 0, true), summaryOf(slow, 1000, 0, false)]);
    const m = c.metrics["http_req_duration{scenario:ramp,kind:api}"];
    const exact = k6Percentile(
      [...fast, ...slow].sort((x, y) => x - y),
      0.95,
    );
    const got = m?.values["p(95)"] as number;
    const [lo, hi] = (m?.bracket?.["p(95)"] ?? [Number.NaN, Number.NaN]) as [number, number];
    assert.ok(lo <= exact && exact <= hi, `the exact p95 ${exact} lies in the bracket [${lo}, ${hi}]`);
    // the worst runner's p95 is several times the p95 of all requests
    assert.ok(hi > 2 * exact, `max of p95s ${hi} vs exact ${exact}`);
    assert.ok(Math.abs(got - exact) / exact < 0.1, `merged p95 ${got} within 10 % of the exact ${exact}`);
    for (const q of [0.5, 0.9, 0.99]) {
      const e = k6Percentile(
        [...fast, ...slow].sort((x, y) => x - y),
        q,
      );
      const g = mergedQuantile(
        [
          { count: 9000, values: trendValues(fast) },
          { count: 1000, values: trendValues(slow) },
        ],
        q,
      );
      assert.ok(Math.abs(g - e) / e < 0.1, `p${q * 100}: merged ${g} vs exact ${e}`);
    }
    const t = c.thresholds.find((x) => x.expression === "p(95)<300");
    assert.deepEqual(t?.failedOnRunners, [2]);
  });
  it("evaluates k6 threshold expressions", () => {
    assert.equal(evaluate("p(95)<300", { "p(95)": 299 }), true);
    assert.equal(evaluate("p(95)<300", { "p(95)": 300 }), false);
    assert.equal(evaluate("rate>=0.99", { rate: 0.99 }), true);
    assert.equal(evaluate("count<=0", { count: 1 }), false);
    assert.equal(evaluate("rate==1", { rate: 1 }), true);
    assert.equal(evaluate("p(99.9)<1", {}), null);
  });
});

describe("make load-cluster's settings", () => {
  it("refuses a bad SCENARIO, TARGET_RPS or PARALLELISM in one line", () => {
    assert.match(String(optionsFrom({ SCENARIO: "nope" }, "s")), /SCENARIO=nope/);
    assert.match(String(optionsFrom({ SCENARIO: "ramp", TARGET_RPS: "0" }, "s")), /TARGET_RPS=0/);
    assert.match(String(optionsFrom({ SCENARIO: "ramp", PARALLELISM: "2.5" }, "s")), /PARALLELISM=2.5/);
    assert.match(String(optionsFrom({ SCENARIO: "ramp", SHAPE_TIME_SCALE: "abc" }, "s")), /SHAPE_TIME_SCALE=abc/);
  });
  it("passes the caller's K6_* settings to the runners, but not K6_IMAGE", () => {
    const o = optionsFrom({ SCENARIO: "ramp", K6_OUT: "experimental-prometheus-rw", K6_IMAGE: "x/k6:1" }, "s");
    if (typeof o === "string") throw new Error(o);
    assert.equal(o.image, "x/k6:1");
    const env = (testRun(o).spec as { runner: { env: { name: string; value: string }[] } }).runner.env;
    assert.ok(env.some((e) => e.name === "K6_OUT" && e.value === "experimental-prometheus-rw"));
    assert.ok(!env.some((e) => e.name === "K6_IMAGE"));
    assert.ok(env.some((e) => e.name === "SUMMARY_TO_STDOUT" && e.value === "1"));
  });
});

describe("make load-cluster against stand-ins for k6 and kubectl", () => {
  it("archives, creates the ConfigMap and the TestRun, collects both runners' summaries, combines them and exits 99 on a runner's failed threshold", () => {
    const dir = mkdtempSync(join(tmpdir(), "load-cluster-"));
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const stub = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >>"${dir}/calls"\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    stub(
      "k6",
      `case "$1" in version) echo "k6 v2.3.0 (go1.26.8, linux/amd64)" ;; archive) while [ $# -gt 1 ]; do [ "$1" = -O ] && printf 'TAR' >"$2"; shift; done ;; esac`,
    );
    for (const [i, fails] of [
      [1, 10],
      [2, 90],
    ] as const) {
      const s = summaryOf(samples(1000, 20 * i, i), 1000, fails, i === 1);
      writeFileSync(join(dir, `log-${i}`), `k6 says hello\n${SUMMARY_BEGIN}\n${JSON.stringify(s)}\n${SUMMARY_END}\n`);
    }
    const pods = {
      items: [1, 2].map((i) => ({
        metadata: { name: `pod-${i}`, labels: { "job-name": `nodescale-ramp-x-${i}` } },
        status: {
          phase: i === 1 ? "Succeeded" : "Failed",
          containerStatuses: [{ name: "k6", state: { terminated: { exitCode: i === 1 ? 0 : 99 } } }],
        },
      })),
    };
    writeFileSync(join(dir, "pods.json"), JSON.stringify(pods));
    stub(
      "kubectl",
      `n=$(wc -l <"${dir}/calls")
case "$*" in
  *"get crd testruns.k6.io"*) echo customresourcedefinition.apiextensions.k8s.io/testruns.k6.io ;;
  *"get namespace"*) echo namespace/nodescale-load ;;
  *"create -f -"*) cat >"${dir}/created-$n.json" ;;
  *"get testrun"*) echo finished ;;
  *"get pods"*) cat "${dir}/pods.json" ;;
  *"logs pod-1"*) cat "${dir}/log-1" ;;
  *"logs pod-2"*) cat "${dir}/log-2" ;;
  *delete*) ;;
  *) exit 1 ;;
esac`,
    );
    const r = spawnSync(process.execPath, ["--no-warnings", join(import.meta.dirname, "run.ts")], {
      encoding: "utf8",
      env: {
        PATH: `${bin}:/usr/bin:/bin`,
        HOME: dir,
        SCENARIO: "ramp",
        TARGET_RPS: "2000",
        PARALLELISM: "2",
        RESULTS_DIR: join(dir, "results"),
      },
    });
    assert.equal(r.status, 99, `${r.stdout}\n${r.stderr}`);
    const calls = readFileSync(join(dir, "calls"), "utf8");
    assert.match(
      calls,
      /^k6 archive -e TARGET_RPS=2000 --summary-trend-stats=count,.*p\(99\.9\) -O \S+archive\.tar load\/scenarios\/ramp\.ts$/m,
    );
    const created = readdirSync(dir)
      .filter((f) => f.startsWith("created-"))
      .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")));
    const cm = created.find((o) => o.kind === "ConfigMap");
    const tr = created.find((o) => o.kind === "TestRun");
    assert.equal(
      Buffer.from(cm.binaryData["archive.tar"], "base64").toString(),
      "TAR",
      "the archive k6 wrote is in the ConfigMap",
    );
    assert.equal(tr.spec.parallelism, 2);
    assert.deepEqual(testRunProblems(tr).problems, []);
    assert.match(calls, /kubectl -n nodescale-load delete testrun nodescale-ramp-/);
    assert.match(r.stdout, /combined over 2 runners/);
    assert.match(r.stdout, /http_req_failed rate<=0\.01: FAILED on runners 2; FAILS combined/);
    const out = join(dir, "results", "cluster", tr.metadata.name);
    const combined = JSON.parse(readFileSync(join(out, "combined.json"), "utf8"));
    assert.equal(combined.metrics.http_reqs.values.count, 2000);
    for (const f of [
      "runner-1.log",
      "runner-2.log",
      "runner-1-summary.json",
      "runner-2-summary.json",
      "testrun.json",
      "configmap.json",
    ])
      assert.ok(existsSync(join(out, f)), f);
    rmSync(dir, { recursive: true, force: true });
  });
});
