// The README tables come from one bench JSON, through a marked block: no hand-copied numbers.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BEGIN, END, markdownTables, renderReport, replaceBlock } from "../report.ts";

const run = {
  startedAt: "2026-01-01T00:00:00Z",
  quick: false,
  machine: { cores: 2, node: "v24.0.0" },
  anchors: {
    nodeHttp: { rps: 20000, cpuMsPerRequest: 0.02, drift: 0.9 },
    express: { rps: 10000, cpuMsPerRequest: 0.04, drift: 1.1 },
  },
  endpoints: [
    {
      name: "item-read",
      route: "GET /api/items/:id",
      rps: 1000,
      cpuMsPerRequest: 0.3,
      redisCommandsPerRequest: 2,
      pgPrimaryStatementsPerRequest: 0,
      pgReplicaStatementsPerRequest: 1,
      flags: ["server not saturated: 0.50 of a core (< 0.9)"],
    },
  ],
  ratios: [{ name: "item-read", rpsVsNodeHttp: 0.05, rpsVsExpress: 0.1, cpuVsExpress: 7.5 }],
  operatingPoint: { utilization: 0.6, endpoints: [{ name: "item-read", cpuMsPerRequest: 0.45 }] },
  fixedRate: {
    rps: 500,
    anchors: [
      { name: "node:http hello-world", cpuMsPerRequest: 0.09 },
      { name: "Express 5 hello-world", cpuMsPerRequest: 0.14 },
    ],
    endpoints: [{ name: "item-read", cpuMsPerRequest: 0.5 }],
  },
  mix: [{ endpoint: "item-read", weight: 1 }],
  knee: {
    median: 900,
    low: 800,
    high: 1000,
    runs: 3,
    estimateRps: 700,
    definition: "the definition",
    climbs: [
      { rps: 900, reached: true },
      { rps: 800, reached: true },
      { rps: 1000, reached: false },
    ],
  },
  shapes: [
    {
      shape: "breakpoint",
      executor: "ramping-arrival-rate",
      durationS: 31.2,
      plannedS: 60,
      peakTarget: 1400,
      offered: 20000,
      requests: 19000,
      dropped: 1000,
      latency: { p95: 120, p99: "Infinity" },
      sendLag: { p99: 3 },
      cores: { server: 0.95, client: 0.4 },
      knee: { rps: 900, reached: true },
      aborted: { atS: 31 },
      passed: false,
      flags: [],
      cpuMsPerRequest: { nginx: 0.1 },
    },
  ],
};

describe("markdownTables", () => {
  const md = markdownTables(run, "2026-01-01T00-00-00Z.json");
  const lines = md.split("\n");

  it("names the run and takes every number from it", () => {
    assert.match(
      lines[0] ?? "",
      /^From one run, `2026-01-01T00-00-00Z\.json` \(2026-01-01T00:00:00Z, 2 cores, Node v24\.0\.0\)/,
    );
    assert.ok(
      lines.includes(
        "| `GET /api/items/:id` | 1000 | 0.05 | 0.1 | 0.3 | 0.45 | 0.5 | 7.5 | 2 | 0 + 1 | server not saturated: 0.50 of a core (< 0.9) |",
      ),
    );
    assert.ok(
      lines.includes(
        "Knee through nginx: **900 req/s**, median of 3 climb(s) to 1400 req/s (900, 800, not reached (> 1000); range 800-1000). Defined as the definition.",
      ),
    );
    assert.ok(
      lines.includes(
        "| breakpoint | 31.2 s (60 s) | 1400 req/s | 20000 | 1000 | 120 | ∞ (drops) | 3 | 0.95 / 0.4 | knee 900 |  |",
      ),
    );
  });

  it("puts the anchors first, at saturation and at the fixed rate", () => {
    assert.ok(
      lines.includes("| anchors: `node:http` / Express 5 | 20000 / 10000 | | | 0.02 / 0.04 | | 0.09 / 0.14 | | | |  |"),
    );
    assert.ok(md.includes("| CPU ms/req at 500 req/s |"));
  });

  it("ends with the capacity walk of the same run", () => {
    // 100 req/s of item-read at 0.45 ms + 0.1 logins of 200 ms (no login measured): 0.065 cores
    assert.match(md, /^\| 100 \| 1 \(2\.\.2\) \| 0\.1 \| 2 \|/m);
    assert.equal(lines.filter((l) => /^\| [\d,]+ \|/.test(l)).length, 5);
  });
});

describe("replaceBlock", () => {
  it("rewrites only what is between the markers", () => {
    const text = `# Title\n${BEGIN}\nold numbers\n${END}\nafter\n`;
    assert.equal(replaceBlock(text, "new"), `# Title\n${BEGIN}\nnew\n${END}\nafter\n`);
    assert.equal(replaceBlock(replaceBlock(text, "new"), "newer"), `# Title\n${BEGIN}\nnewer\n${END}\nafter\n`);
  });

  it("refuses a file without the block", () => {
    assert.throws(() => replaceBlock("# Title\n", "new"), { message: `no ${BEGIN} ... ${END} block to rewrite` });
    assert.throws(() => replaceBlock(`${END}\n${BEGIN}\n`, "new"));
  });
});

describe("a run of BENCH_PHASES=endpoints", () => {
  const latency = { p50: 1, p99: 2 };
  const partial = {
    ...run,
    durationS: 60,
    machine: { ...run.machine, cpuModel: "cpu", loadAverageAtEnd: [1, 1, 1], note: "shared" },
    method: { client: "c", cpu: "c", redis: "r", postgres: "p", app: "a", measureSeconds: 5, warmupSeconds: 1 },
    anchors: {
      ...run.anchors,
      runs: [
        {
          name: "node:http hello-world",
          target: "anchor pass 1",
          rps: 20000,
          cpuMsPerRequest: 0.02,
          latency,
          errors: 0,
        },
      ],
    },
    endpoints: run.endpoints.map((e) => ({ ...e, latency, errors: 0 })),
    ratios: [{ ...run.ratios[0], route: "GET /api/items/:id", cpuVsNodeHttp: 15 }],
    mixCapacityRps: 1000,
    phases: ["endpoints"],
    phasesNotRun: ["operating-point", "fixed-rate", "pm2", "shapes"],
    operatingPoint: undefined,
    fixedRate: undefined,
    knee: undefined,
    shapes: [],
  };

  it("renders the endpoints and says which phases were not run", () => {
    const html = renderReport(partial);
    assert.match(html, /phases run: endpoints; not run: operating-point, fixed-rate, pm2, shapes/);
    assert.match(html, /<h3>At the operating point<\/h3>\n<p class="desc">not run in this bench \(BENCH_PHASES\)/);
    assert.match(html, /<h3>At one fixed rate<\/h3>\n<p class="desc">not run in this bench/);
    assert.match(html, /PM2 cluster mode<\/h2><p class="desc">not run in this bench/);
    assert.match(html, /Shapes through nginx<\/h2>\n<p class="desc">not run in this bench/);
    assert.match(html, /<td>item-read<\/td><td>GET \/api\/items\/:id<\/td><td>1000<\/td>/);
  });

  it("writes Markdown without the shapes and without a capacity walk from a partial run", () => {
    const md = markdownTables(partial, "partial.json");
    assert.ok(md.includes("Phases not run in this bench (BENCH_PHASES): operating-point, fixed-rate, pm2, shapes."));
    assert.ok(md.includes("No shapes through nginx in this run."));
    assert.doesNotMatch(md, /make capacity/);
  });
});
