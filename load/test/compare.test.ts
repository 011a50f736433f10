// Runs of the three topologies side by side (runner/compare.ts, report.ts --compare).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { COMPARE_BEGIN, COMPARE_END, compareBlock, compareRuns, replaceBlock } from "../report.ts";
import { basisOf, compareMarkdown, compareTable, costOf, mixCostOf } from "../runner/compare.ts";

const endpoint = (name: string, route: string, app: number, redis: number, pgbouncer?: number) => ({
  name,
  route,
  cpuMsPerRequest: app,
  redisCpuMsPerRequest: redis,
  ...(pgbouncer === undefined ? {} : { pgbouncerCpuMsPerRequest: pgbouncer }),
});

/** A run with Express at `express` ms/req and item-read / me at the costs given. */
function run(topology: string | undefined, express: number, read: number[], me: number[], withOp = false) {
  const eps = [
    endpoint("item-read", "GET /api/items/:id", read[0] as number, read[1] as number, read[2]),
    endpoint("me", "GET /api/me", me[0] as number, me[1] as number, me[2]),
  ];
  return {
    startedAt: "2026-01-01T00:00:00Z",
    quick: false,
    ...(topology
      ? { topology: { name: topology, title: topology, redisNodes: topology === "redis-cluster" ? 6 : 1 } }
      : {}),
    anchors: { express: { cpuMsPerRequest: express } },
    endpoints: eps,
    ...(withOp
      ? {
          operatingPoint: {
            anchors: [{ name: "Express 5 hello-world", cpuMsPerRequest: 2 * express }],
            endpoints: eps.map((e) => ({ ...e, cpuMsPerRequest: 2 * e.cpuMsPerRequest })),
          },
        }
      : {}),
  };
}

// Hand-worked: plain Express 0.02; item-read app 0.30 (×15), Redis 0.03; me 0.10 (×5), Redis 0.01.
// The cluster run's machine is slower (Express 0.025): item-read 0.40 (×16), Redis 0.06.
// PgBouncer: Express 0.02, item-read app 0.32 (×16) + PgBouncer 0.03; me 0.10, no PgBouncer work.
const plain = run(undefined, 0.02, [0.3, 0.03], [0.1, 0.01]);
const cluster = run("redis-cluster", 0.025, [0.4, 0.06], [0.15, 0.02]);
const bouncer = run("pgbouncer", 0.02, [0.32, 0.03, 0.03], [0.1, 0.01, 0]);
const mix = [
  { endpoint: "item-read" as const, weight: 3 },
  { endpoint: "me" as const, weight: 1 },
];

describe("compareTable", () => {
  const runs = [
    { name: "plain", r: plain },
    { name: "redis-cluster", r: cluster },
    { name: "pgbouncer", r: bouncer },
  ];
  const t = compareTable(runs);
  const read = t.rows[0] as string[];

  it("puts each run's app CPU with its own × Express, and the extra process where it ran", () => {
    assert.deepEqual(read.slice(0, 8), [
      "`GET /api/items/:id`",
      "0.300 (×15.0)",
      "0.030",
      "0.400 (×16.0)",
      "0.060",
      "0.320 (×16.0)",
      "0.030",
      "0.030",
    ]);
    assert.equal(t.header[4], "redis-cluster: Redis CPU ms/req (6 nodes)");
    assert.equal(t.header[7], "pgbouncer: PgBouncer CPU ms/req");
  });

  it("prices a cluster client and a PgBouncer hop against the plain run", () => {
    assert.equal(read[8], "app +0.100, Redis +0.030; app ×Express +1.00");
    assert.equal(read[9], "app +0.020 + PgBouncer 0.030 = +0.050; app ×Express +1.00");
    // me: no database, so no PgBouncer work; the hop costs nothing there
    assert.equal((t.rows[1] as string[])[9], "app +0.000 + PgBouncer 0.000 = +0.000; app ×Express +0.00");
  });

  it("ends with the API mix, weighted", () => {
    // the default API mix has endpoints these runs lack: its row says so
    assert.deepEqual((t.rows.at(-1) as string[]).slice(1, 3), ["-", "-"]);
    // item-read 3 : me 1 -> app 0.75 * 0.30 + 0.25 * 0.10 = 0.25; × Express 0.75 * 15 + 0.25 * 5 = 12.5
    const m = mixCostOf(plain, "saturation", mix);
    assert.ok(m);
    assert.equal(Math.round(m.app * 1000) / 1000, 0.25);
    assert.equal(Math.round(m.xExpress * 1000) / 1000, 12.5);
    assert.equal(mixCostOf(bouncer, "saturation", mix)?.pgbouncer, 0.75 * 0.03);
  });

  it("says when there is no plain run to price the switches against", () => {
    const alone = compareTable([{ name: "pgbouncer", r: bouncer }]);
    assert.ok(!alone.header.some((h) => h.startsWith("a hop")));
    assert.ok(alone.notes.includes("No plain run given: the cost of each switch needs one."));
  });
});

describe("the basis", () => {
  it("is the operating point only when every run has one", () => {
    const op = run(undefined, 0.02, [0.3, 0.03], [0.1, 0.01], true);
    assert.equal(basisOf([{ name: "a", r: op }]), "operating point");
    assert.equal(
      basisOf([
        { name: "a", r: op },
        { name: "b", r: plain },
      ]),
      "saturation",
    );
    // at the operating point: 0.6 ms over the operating point's Express 0.04 ms
    assert.equal(costOf(op, "item-read", "operating point")?.xExpress, 15);
    assert.equal(costOf(op, "item-read", "operating point")?.app, 0.6);
  });
});

describe("report.ts --compare", () => {
  it("names runs by topology, and rewrites only the compare block of a README", () => {
    const dir = mkdtempSync(join(tmpdir(), "compare-"));
    try {
      const files = ["a", "b", "c"].map((n) => join(dir, `${n}.json`));
      writeFileSync(files[0] as string, JSON.stringify(plain));
      writeFileSync(files[1] as string, JSON.stringify(cluster));
      writeFileSync(files[2] as string, JSON.stringify(plain));
      assert.deepEqual(
        compareRuns(files).map((x) => x.name),
        ["plain a", "redis-cluster", "plain c"],
      );
      const block = compareBlock(files.slice(0, 2));
      assert.match(block, /^Written by `node load\/report.ts --compare a.json b.json --readme`/);
      assert.ok(block.includes(compareMarkdown(compareRuns(files.slice(0, 2)))));
      const text = `x\n<!-- bench-tables:begin -->\nkeep\n<!-- bench-tables:end -->\n${COMPARE_BEGIN}\nold\n${COMPARE_END}\n`;
      const out = replaceBlock(text, block, COMPARE_BEGIN, COMPARE_END);
      assert.ok(out.includes("<!-- bench-tables:begin -->\nkeep\n"));
      assert.ok(!out.includes("\nold\n"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
