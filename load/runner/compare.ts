// Bench runs of different topologies side by side (`node load/report.ts --compare a.json b.json
// c.json`): per endpoint, the app's CPU per request, the extra process of each topology
// (PgBouncer; Redis summed over a cluster's nodes) and the ratio to the Express anchor of the
// same run, then what a hop through PgBouncer and a cluster client cost against the plain run.
//
// Each run is on a shared machine at another time, so absolute CPU drifts between runs; the
// ratio to the run's own Express anchor is the drift-free form, and the cost columns give both.

import { API_MIX, type MixEntry } from "../shapes.ts";

// biome-ignore lint/suspicious/noExplicitAny: reads whatever bench.ts wrote
type Json = any;

export type Run = { name: string; r: Json };

/** Which measurement the costs come from: the operating point when every run has one. */
export type Basis = "operating point" | "saturation";

type Cost = { app: number; redis: number; pgbouncer: number | null; xExpress: number };

const topologyName = (r: Json): string => r.topology?.name ?? "plain";
const topologyTitle = (r: Json): string => r.topology?.title ?? "plain (one Redis, PostgreSQL directly)";

export function basisOf(runs: Run[]): Basis {
  return runs.every((x) => (x.r.operatingPoint?.endpoints ?? []).length > 0) ? "operating point" : "saturation";
}

/** The Express anchor's CPU per request in a run, on the same basis as its endpoints. */
function expressMs(r: Json, basis: Basis): number {
  const op = (r.operatingPoint?.anchors ?? []).find((a: Json) => String(a.name).startsWith("Express"));
  return basis === "operating point" && op ? op.cpuMsPerRequest : r.anchors.express.cpuMsPerRequest;
}

/** One endpoint's costs in one run; login and register only ever ran at saturation. */
export function costOf(r: Json, endpoint: string, basis: Basis): Cost | null {
  const op = basis === "operating point" ? r.operatingPoint?.endpoints?.find((e: Json) => e.name === endpoint) : null;
  const e = op ?? r.endpoints.find((x: Json) => x.name === endpoint);
  if (!e) return null;
  const express = op ? expressMs(r, basis) : r.anchors.express.cpuMsPerRequest;
  return {
    app: e.cpuMsPerRequest,
    redis: e.redisCpuMsPerRequest ?? 0,
    pgbouncer: e.pgbouncerCpuMsPerRequest ?? null,
    xExpress: e.cpuMsPerRequest / express,
  };
}

/** The API mix's cost per request in a run: each endpoint's weighted (login and register apart). */
export function mixCostOf(r: Json, basis: Basis, mix: MixEntry[] = API_MIX): Cost | null {
  const total = mix.reduce((s, m) => s + m.weight, 0);
  const out: Cost = { app: 0, redis: 0, pgbouncer: null, xExpress: 0 };
  for (const m of mix) {
    const c = costOf(r, m.endpoint, basis);
    if (!c) return null;
    const w = m.weight / total;
    out.app += w * c.app;
    out.redis += w * c.redis;
    out.xExpress += w * c.xExpress;
    if (c.pgbouncer !== null) out.pgbouncer = (out.pgbouncer ?? 0) + w * c.pgbouncer;
  }
  return out;
}

const f = (x: number, digits = 3) => (Math.round(x * 10 ** digits) / 10 ** digits).toFixed(digits);
const signed = (x: number, digits = 3) => `${x >= 0 ? "+" : "−"}${f(Math.abs(x), digits)}`;

/**
 * The table, as rows of cells: per endpoint (and the API mix), each run's app CPU (× Express),
 * its Redis CPU, PgBouncer's CPU where it ran one; then the cost of each switch against the
 * first plain run.
 */
export function compareTable(runs: Run[]): { basis: Basis; header: string[]; rows: string[][]; notes: string[] } {
  const basis = basisOf(runs);
  const plain = runs.find((x) => topologyName(x.r) === "plain");
  const cluster = runs.find((x) => topologyName(x.r) === "redis-cluster");
  const bouncer = runs.find((x) => topologyName(x.r) === "pgbouncer");
  const header = ["Endpoint"];
  for (const x of runs) {
    header.push(`${x.name}: app CPU ms/req (× Express)`);
    header.push(
      topologyName(x.r) === "redis-cluster"
        ? `${x.name}: Redis CPU ms/req (${x.r.topology?.redisNodes ?? "all"} nodes)`
        : `${x.name}: Redis CPU ms/req`,
    );
    if (topologyName(x.r) === "pgbouncer") header.push(`${x.name}: PgBouncer CPU ms/req`);
  }
  if (plain && cluster) header.push("a cluster client costs: app, Redis (Δ ms/req; Δ × Express)");
  if (plain && bouncer) header.push("a hop through PgBouncer costs: app + PgBouncer (Δ ms/req; Δ × Express)");
  const names: string[] = runs[0]?.r.endpoints.map((e: Json) => e.name) ?? [];
  const routeOf = (name: string) =>
    `${runs[0]?.r.endpoints.find((e: Json) => e.name === name)?.route ?? name}${name.endsWith("-identity") ? " (identity)" : ""}`;
  const row = (label: string, cost: (r: Json) => Cost | null): string[] => {
    const cells = [label];
    const costs = runs.map((x) => cost(x.r));
    runs.forEach((x, i) => {
      const c = costs[i];
      cells.push(c ? `${f(c.app)} (×${f(c.xExpress, 1)})` : "-");
      cells.push(c ? f(c.redis) : "-");
      if (topologyName(x.r) === "pgbouncer") cells.push(c?.pgbouncer === null || !c ? "-" : f(c.pgbouncer));
    });
    const base = plain ? cost(plain.r) : null;
    // Δ × Express in the plain run's Express ms: the drift-free form of the same difference
    const xDelta = (c: Cost, b: Cost) => signed(c.xExpress - b.xExpress, 2);
    if (plain && cluster) {
      const c = cost(cluster.r);
      cells.push(
        c && base
          ? `app ${signed(c.app - base.app)}, Redis ${signed(c.redis - base.redis)}; app ×Express ${xDelta(c, base)}`
          : "-",
      );
    }
    if (plain && bouncer) {
      const c = cost(bouncer.r);
      cells.push(
        c && base
          ? `app ${signed(c.app - base.app)} + PgBouncer ${f(c.pgbouncer ?? 0)} = ${signed(c.app - base.app + (c.pgbouncer ?? 0))}; app ×Express ${xDelta(c, base)}`
          : "-",
      );
    }
    return cells;
  };
  const rows = names.map((name) => row(`\`${routeOf(name)}\``, (r) => costOf(r, name, basis)));
  rows.push(row("**API mix** (weighted)", (r) => mixCostOf(r, basis)));
  const notes = [
    `Costs from the ${basis === "operating point" ? "operating point (open loop at the HPA target; login, register, the exports and the identity twins, measured only at saturation, from there)" : "endpoints at saturation (closed loop; not every run has an operating point)"}; × Express is the app's CPU over the Express 5 hello-world anchor of the same run and basis, which takes the machine's drift between runs out.`,
    ...runs.map(
      (x) =>
        `${x.name}: ${topologyTitle(x.r)}, run ${x.r.startedAt}${x.r.quick ? " (QUICK)" : ""}${x.r.phasesNotRun?.length ? ` (phases not run: ${x.r.phasesNotRun.join(", ")})` : ""}.`,
    ),
  ];
  if (!plain) notes.push("No plain run given: the cost of each switch needs one.");
  return { basis, header, rows, notes };
}

export function compareMarkdown(runs: Run[]): string {
  const t = compareTable(runs);
  const out = [
    `| ${t.header.join(" | ")} |`,
    `| --- |${" ---: |".repeat(t.header.length - 1)}`,
    ...t.rows.map((r) => `| ${r.join(" | ")} |`),
    "",
    ...t.notes.map((n) => `- ${n}`),
  ];
  return out.join("\n");
}

export function compareHtml(runs: Run[]): string {
  const esc = (s: string) =>
    s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);
  const cell = (s: string) =>
    esc(s)
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>");
  const t = compareTable(runs);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nodescale bench: ${esc(runs.map((x) => x.name).join(" vs "))}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;color:#111;margin:24px auto;max-width:1600px;padding:0 16px}
table{border-collapse:collapse}td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}
td:first-child,th:first-child{text-align:left}th{background:#f3f4f6}
</style></head><body>
<h1>nodescale bench: ${esc(runs.map((x) => x.name).join(" · "))}, side by side</h1>
<table><tr>${t.header.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>
${t.rows.map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join("")}</tr>`).join("\n")}</table>
<ul>${t.notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>
</body></html>
`;
}
