// The bench report: one self-contained HTML file (inline SVG charts, no scripts, no CDN) made
// from a bench JSON. `make bench` writes it next to the JSON; to redo it from a JSON:
//   node load/report.ts bench/results/<timestamp>.json   (writes <timestamp>.html beside it)
//   node load/report.ts --readme bench/results/<timestamp>.json load/README.md
//     rewrites the block between BEGIN and END below in that file with the run's tables
//     (endpoints, knee, every phase, the capacity walk), so no number is copied by hand
//   node load/report.ts --compare a.json b.json c.json [--readme load/README.md] [--html out.html]
//     runs of different topologies (BENCH_TOPOLOGY) side by side (runner/compare.ts): prints the
//     Markdown table, writes the HTML (default: compare-<newest run>.html beside the newest),
//     and with --readme rewrites the block between COMPARE_BEGIN and COMPARE_END in that file

import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { assumptions, walk } from "./capacity.ts";
import { compareHtml, compareMarkdown, type Run } from "./runner/compare.ts";
import { flameGraph } from "./runner/profile.ts";

// biome-ignore lint/suspicious/noExplicitAny: the report reads whatever bench.ts wrote
type Json = any;

const COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563"];

const esc = (s: unknown) =>
  String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/** A latency from the JSON: a number, or "Infinity" where a percentile fell on a dropped arrival. */
const ms = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? `${v} ms` : "∞ (drops)");
const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

const fmt = (v: number) =>
  v >= 10_000
    ? `${(v / 1000).toFixed(0)}k`
    : v >= 1000
      ? `${(v / 1000).toFixed(1)}k`
      : v >= 10
        ? v.toFixed(0)
        : v >= 1
          ? v.toFixed(1)
          : v.toFixed(2);

type Series = { name: string; points: [number, number][]; color?: string; dash?: boolean; area?: boolean };

/** A line chart with axes, grid, legend; y from 0 (linear) or log10 when `log`. */
export function lineChart(o: {
  title: string;
  series: Series[];
  yLabel: string;
  xLabel?: string;
  width?: number;
  height?: number;
  log?: boolean;
  yMax?: number;
  markers?: { x: number; label: string }[];
  /** Series are cumulative (each includes those before it): filled bands, drawn top first. */
  stacked?: boolean;
}): string {
  const W = o.width ?? 460;
  const H = o.height ?? 230;
  const m = { l: 52, r: 12, t: 34, b: 38 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const all = o.series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const yRaw = Math.max(0, ...all.map((p) => p[1]));
  let y: (v: number) => number;
  let ticks: number[];
  if (o.log) {
    const lo = 0.1;
    const hi = 10 ** Math.ceil(Math.log10(Math.max(1, yRaw)));
    const span = Math.log10(hi) - Math.log10(lo);
    y = (v) => m.t + ih - ((Math.log10(Math.max(lo, v)) - Math.log10(lo)) / span) * ih;
    ticks = [];
    for (let t = lo; t <= hi * 1.001; t *= 10) ticks.push(t);
  } else {
    const hi = o.yMax ?? niceMax(yRaw * 1.05);
    y = (v) => m.t + ih - (v / hi) * ih;
    ticks = [0, 1, 2, 3, 4].map((i) => (hi * i) / 4);
  }
  const x = (v: number) => m.l + (v / xMax) * iw;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${m.l}" y="16" font-size="13" font-weight="600" fill="#111">${esc(o.title)}</text>`);
  for (const t of ticks) {
    const yy = y(t).toFixed(1);
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}" stroke="#e5e7eb"/>`);
    parts.push(
      `<text x="${m.l - 6}" y="${yy}" font-size="10" fill="#555" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`,
    );
  }
  const xStep = niceMax(xMax / 6);
  for (let t = 0; t <= xMax; t += xStep) {
    const xx = x(t).toFixed(1);
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${m.t + ih}" y2="${m.t + ih + 4}" stroke="#888"/>`);
    parts.push(`<text x="${xx}" y="${m.t + ih + 15}" font-size="10" fill="#555" text-anchor="middle">${fmt(t)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${m.t + ih}" y2="${m.t + ih}" stroke="#888"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ih}" stroke="#888"/>`);
  parts.push(
    `<text x="${m.l + iw / 2}" y="${H - 4}" font-size="10" fill="#555" text-anchor="middle">${esc(o.xLabel ?? "seconds")}</text>`,
  );
  parts.push(
    `<text transform="translate(12 ${m.t + ih / 2}) rotate(-90)" font-size="10" fill="#555" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  for (const mk of o.markers ?? []) {
    const xx = x(mk.x).toFixed(1);
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${m.t}" y2="${m.t + ih}" stroke="#dc2626" stroke-dasharray="3 3"/>`);
    parts.push(
      `<text x="${Number(xx) - 3}" y="${m.t + 10}" font-size="10" fill="#dc2626" text-anchor="end">${esc(mk.label)}</text>`,
    );
  }
  if (o.stacked) {
    for (let i = o.series.length - 1; i >= 0; i--) {
      const s = o.series[i] as Series;
      if (s.points.length === 0) continue;
      const color = s.color ?? (COLORS[i % COLORS.length] as string);
      const first = s.points[0] as [number, number];
      const last = s.points[s.points.length - 1] as [number, number];
      const d = s.points.map((p, k) => `${k === 0 ? "M" : "L"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      parts.push(
        `<path d="${d}L${x(last[0]).toFixed(1)},${y(0).toFixed(1)}L${x(first[0]).toFixed(1)},${y(0).toFixed(1)}Z" fill="${color}" fill-opacity="0.55" stroke="#fff" stroke-width="1"/>`,
      );
    }
  }
  o.series.forEach((s, i) => {
    const color = s.color ?? (COLORS[i % COLORS.length] as string);
    if (s.points.length === 0 || o.stacked) return;
    const d = s.points.map((p, k) => `${k === 0 ? "M" : "L"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    if (s.area) {
      const first = s.points[0] as [number, number];
      const last = s.points[s.points.length - 1] as [number, number];
      parts.push(
        `<path d="${d}L${x(last[0]).toFixed(1)},${y(0).toFixed(1)}L${x(first[0]).toFixed(1)},${y(0).toFixed(1)}Z" fill="${color}" fill-opacity="0.15" stroke="none"/>`,
      );
    }
    parts.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="${s.dash ? 1.5 : 2}"${s.dash ? ' stroke-dasharray="5 4"' : ""}/>`,
    );
  });
  // legend, right-aligned in the title row
  let lx = W - m.r;
  const legend: string[] = [];
  for (let i = o.series.length - 1; i >= 0; i--) {
    const s = o.series[i] as Series;
    const color = s.color ?? (COLORS[i % COLORS.length] as string);
    const w = 18 + s.name.length * 6;
    lx -= w;
    legend.push(
      `<line x1="${lx}" x2="${lx + 12}" y1="${m.t - 8}" y2="${m.t - 8}" stroke="${color}" stroke-width="2.5"${s.dash ? ' stroke-dasharray="4 3"' : ""}/>`,
    );
    legend.push(
      `<text x="${lx + 15}" y="${m.t - 8}" font-size="10" fill="#333" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  }
  parts.push(...legend);
  parts.push("</svg>");
  return parts.join("");
}

/** Horizontal bars, one per row, with the value printed; `ref` draws reference lines. */
export function barChart(o: {
  title: string;
  rows: { label: string; value: number; color?: string }[];
  unit: string;
  width?: number;
  log?: boolean;
}): string {
  const W = o.width ?? 620;
  const rowH = 20;
  const m = { l: 150, r: 70, t: 30, b: 10 };
  const H = m.t + m.b + rowH * o.rows.length;
  const iw = W - m.l - m.r;
  const max = Math.max(...o.rows.map((r) => r.value), 1e-9);
  const lo = Math.min(...o.rows.map((r) => r.value).filter((v) => v > 0), 1) / 2;
  const scaleX = (v: number) =>
    o.log ? ((Math.log10(Math.max(lo, v)) - Math.log10(lo)) / (Math.log10(max) - Math.log10(lo))) * iw : (v / max) * iw;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="8" y="16" font-size="13" font-weight="600" fill="#111">${esc(o.title)}</text>`,
  ];
  o.rows.forEach((r, i) => {
    const yy = m.t + i * rowH;
    const w = Math.max(1, scaleX(r.value));
    parts.push(
      `<text x="${m.l - 6}" y="${yy + rowH / 2}" font-size="11" fill="#333" text-anchor="end" dominant-baseline="middle">${esc(r.label)}</text>`,
    );
    parts.push(
      `<rect x="${m.l}" y="${yy + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${r.color ?? "#2563eb"}" rx="2"/>`,
    );
    parts.push(
      `<text x="${m.l + w + 4}" y="${yy + rowH / 2}" font-size="10" fill="#333" dominant-baseline="middle">${fmt(r.value)} ${esc(o.unit)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

function shapeSection(s: Json): string {
  // the last second is partial (requests still draining after the shape ended): left out of the charts
  const secs: Json[] = s.seconds.filter((x: Json) => x.t < Math.floor(s.durationS));
  const t = (k: number) => k + 0.5;
  const isVu = s.executor === "ramping-vus";
  const served: [number, number][] = secs.map((x, k) => [t(k), x.requests]);
  const target: [number, number][] = secs.map((x, k) => [t(k), x.target]);
  const markers = s.aborted ? [{ x: s.aborted.atS, label: `stopped: ${s.aborted.reason}` }] : [];
  const throughput = lineChart({
    title: "Throughput",
    yLabel: "requests / s",
    series: isVu
      ? [{ name: "served req/s", points: served, area: true }]
      : [
          { name: "served", points: served, area: true },
          { name: "target", points: target, dash: true, color: "#111" },
        ],
    markers,
  });
  const lat = (k: "p50" | "p95" | "p99") =>
    secs
      .filter((x) => x.requests > 0)
      .map((x) => [t(x.t), finite(x.latency[k]) ? x.latency[k] : 1e5] as [number, number]);
  const latency = lineChart({
    title: "Latency from the scheduled time (log; drops at the top)",
    yLabel: "ms",
    log: true,
    series: [
      { name: "p50", points: lat("p50"), color: "#059669" },
      { name: "p95", points: lat("p95"), color: "#d97706" },
      { name: "p99", points: lat("p99"), color: "#dc2626" },
      {
        name: `p95 limit ${s.thresholds.p95Ms}`,
        points: [
          [0, s.thresholds.p95Ms],
          [secs.length, s.thresholds.p95Ms],
        ],
        dash: true,
        color: "#9ca3af",
      },
    ],
    markers,
  });
  const errors = lineChart({
    title: "Errors and dropped arrivals",
    yLabel: "per second",
    series: [
      { name: "errors", points: secs.map((x, k) => [t(k), x.errors]), color: "#dc2626", area: true },
      { name: "dropped", points: secs.map((x, k) => [t(k), x.dropped]), color: "#7c3aed" },
    ],
    yMax: Math.max(...secs.map((x) => Math.max(x.errors, x.dropped))) === 0 ? 1 : undefined,
    markers,
  });
  const names = Object.keys(s.instances).sort();
  // stacked: each band is one instance's share of the second's requests (even bands = balanced)
  const served1 = secs.filter((x) => x.requests > 0);
  const share = lineChart({
    title: "Each instance's share (x-instance, stacked)",
    yLabel: "% of requests",
    yMax: 100,
    stacked: true,
    series: names.map((n, i) => ({
      name: n,
      color: COLORS[i % COLORS.length],
      points: served1.map((x) => {
        let below = 0;
        for (const m of names.slice(0, i + 1)) below += x.instances[m] ?? 0;
        return [t(x.t), (100 * below) / x.requests] as [number, number];
      }),
    })),
  });
  const kneeText = s.knee
    ? s.knee.reached
      ? `knee ${s.knee.rps} req/s`
      : `knee not reached (&gt; ${s.knee.rps} req/s)`
    : "";
  const verdict = s.aborted
    ? `<span class="badge warn">${kneeText}</span>`
    : s.passed
      ? '<span class="badge ok">thresholds passed</span>'
      : '<span class="badge bad">thresholds failed</span>';
  const thresholds = s.thresholdResults
    .map(
      (r: Json) =>
        `<li class="${r.ok ? "ok" : "bad"}">${r.ok ? "✓" : "✗"} ${esc(r.rule)} (${r.rule.includes("rate") ? `${(r.value * 100).toFixed(2)} %` : r.rule.includes("count") ? r.value : ms(r.value)})</li>`,
    )
    .join("");
  const totalShare = names
    .map((n) => `${esc(n)} ${((100 * s.instances[n]) / Math.max(1, s.requests)).toFixed(1)} %`)
    .join(", ");
  const cpu = Object.entries(s.cpuMsPerRequest ?? {})
    .map(([k, v]) => `${esc(k)} ${(v as number).toFixed(3)}`)
    .join(" · ");
  const ryw = s.readYourWrites
    ? `<li>read-your-writes: ${s.readYourWrites.held}/${s.readYourWrites.checked} held (${s.readYourWrites.fromReplica} of them served by the replica)</li>`
    : "";
  const unit = isVu ? "VUs" : "req/s";
  const here = s.plannedS
    ? `Here: ${s.plannedS} s planned (${s.durationS} s run), peak ${s.peakTarget} ${unit}.`
    : `Here: ${s.durationS} s.`;
  const flags = (s.flags ?? []).map((f: string) => `<li class="bad">⚑ ${esc(f)}</li>`).join("");
  const cores = s.cores
    ? `<li>CPU (cores over the phase): busiest app instance ${s.cores.server}, both instances ${s.cores.apps}, load generator ${s.cores.client}</li>`
    : "";
  const lag = s.sendLag
    ? `<li>send lag (sent after the scheduled time): p50 ${s.sendLag.p50} ms, p99 ${s.sendLag.p99} ms, max ${s.sendLag.max} ms${s.knee ? `; ${kneeText} (best ${s.knee.windowS} s window${s.knee.held ? ` ${s.knee.held.fromS}-${s.knee.held.toS} s` : ""}${s.knee.failed ? `; first failing window above it ${s.knee.failed.fromS}-${s.knee.failed.toS} s: ${esc(s.knee.failed.why)}` : ""})` : ""}</li>`
    : "";
  return `<section class="shape">
<h2>${esc(s.shape)} ${verdict}</h2>
<p class="desc">${esc(here)} Cluster form of the shape: ${esc(s.description)}</p>
<ul class="facts">${flags}
<li>${s.offered ?? s.requests} offered, ${s.requests} sent in ${s.durationS} s (${s.rps} req/s), ${s.errors} errors, ${s.dropped} dropped; API latency from the scheduled time, drops counted as infinite: p50 ${ms(s.latency.p50)}, p95 ${ms(s.latency.p95)}, p99 ${ms(s.latency.p99)}${s.authLatency && s.authLatency.max > 0 ? `; register/login p95 ${ms(s.authLatency.p95)}` : ""}</li>
${cores}${lag}
<li>instances: ${totalShare}</li>
<li>CPU ms per request: ${cpu}</li>
<li>Redis commands / request ${s.redisCommandsPerRequest} · PostgreSQL statements / request: primary ${s.pgPrimaryStatementsPerRequest}, replica ${s.pgReplicaStatementsPerRequest}</li>
${ryw}
</ul>
<ul class="thresholds">${thresholds}</ul>
<div class="grid">${throughput}${latency}${errors}${share}</div>
${s.errorSamples.length ? `<details><summary>error samples</summary><pre>${esc(s.errorSamples.join("\n"))}</pre></details>` : ""}
</section>`;
}

/** A phase BENCH_PHASES left out of this run (older runs ran everything and list nothing). */
const notRun = (r: Json, phase: string) => (r.phasesNotRun ?? []).includes(phase);
const NOT_RUN = "not run in this bench (BENCH_PHASES)";

const flagCell = (x: Json) => esc((x.flags ?? []).join("; "));
const coreCells = (x: Json) =>
  x.serverCores === undefined ? "<td></td><td></td>" : `<td>${x.serverCores}</td><td>${x.clientCores}</td>`;

/** Anchors and endpoints again, open loop at the HPA's target utilization, beside their saturated cost. */
function operatingPointSection(r: Json): string {
  const op = r.operatingPoint;
  if (!op)
    return notRun(r, "operating-point") ? `<h3>At the operating point</h3>\n<p class="desc">${NOT_RUN}.</p>` : "";
  const saturated = (name: string) =>
    [...r.endpoints, ...r.anchors.runs].find((x: Json) => x.name === name)?.cpuMsPerRequest as number | undefined;
  const rows = [...op.anchors, ...op.endpoints]
    .map((x: Json) => {
      const sat = saturated(x.name);
      return `<tr><td>${esc(x.name)}</td><td>${x.offeredRps}</td><td>${x.rps.toFixed(0)}</td><td>${x.dropped ?? 0}</td><td>${x.cpuMsPerRequest.toFixed(3)}</td><td>${sat === undefined ? "" : sat.toFixed(3)}</td><td>${sat ? `${(x.cpuMsPerRequest / sat).toFixed(2)}×` : ""}</td><td>${x.pgPrimaryCpuMsPerRequest ?? ""}</td><td>${x.pgReplicaCpuMsPerRequest ?? ""}</td><td>${ms(x.latency.p99)}</td><td>${x.sendLagP99Ms ?? ""}</td><td>${x.serverCores}</td><td>${x.clientCores}</td><td>${esc((x.flags ?? []).join("; "))}</td></tr>`;
    })
    .join("\n");
  return `<h3>At the operating point (${op.utilization} of a core)</h3>
<p class="desc">${esc(op.method)}. The API mix costs ${op.mixCpuMs} CPU ms per request here against ${op.saturatedMixCpuMs} at saturation; <code>make capacity</code> sizes pods from this one.</p>
<table><tr><th>name</th><th>offered req/s</th><th>served req/s</th><th>dropped</th><th>CPU ms/req</th><th>at saturation</th><th>× saturation</th><th>PG primary CPU ms/req</th><th>PG replica CPU ms/req</th><th>p99 from schedule</th><th>send lag p99 ms</th><th>server cores</th><th>client cores</th><th>flags</th></tr>
${rows}</table>`;
}

/** Anchors and endpoints at one offered rate: CPU per request where the load is the same for all. */
function fixedRateSection(r: Json): string {
  const f = r.fixedRate;
  if (!f && notRun(r, "fixed-rate")) return `<h3>At one fixed rate</h3>\n<p class="desc">${NOT_RUN}.</p>`;
  if (!f?.rps) return "";
  const express = f.anchors.find((x: Json) => x.name.startsWith("Express"))?.cpuMsPerRequest as number | undefined;
  const rows = [...f.anchors, ...f.endpoints]
    .map(
      (x: Json) =>
        `<tr><td>${esc(x.name)}</td><td>${x.rps.toFixed(0)}</td><td>${x.dropped ?? 0}</td><td>${x.cpuMsPerRequest.toFixed(3)}</td><td>${express ? `${(x.cpuMsPerRequest / express).toFixed(1)}×` : ""}</td><td>${ms(x.latency.p99)}</td><td>${x.serverCores}</td><td>${x.clientCores}</td><td>${esc((x.flags ?? []).join("; "))}</td></tr>`,
    )
    .join("\n");
  return `<h3>At one fixed rate (${f.rps} req/s offered to each)</h3>
<table><tr><th>name</th><th>served req/s</th><th>dropped</th><th>CPU ms/req</th><th>× Express</th><th>p99 from schedule</th><th>server cores</th><th>client cores</th><th>flags</th></tr>
${rows}</table>`;
}

/** PROFILE=1: per endpoint, the top self-time functions and a flame graph of app-1's main thread. */
export function profileSection(r: Json): string {
  if (!r.profiles) return "";
  const one = (p: Json) => {
    const rows = p.top
      .map(
        (t: Json) =>
          `<tr><td>${esc(t.name)}</td><td>${esc(t.file ? `${t.file}:${t.line}` : "")}</td><td>${t.selfMs.toFixed(1)}</td><td>${(100 * t.share).toFixed(1)} %</td></tr>`,
      )
      .join("");
    return `<h3 id="profile-${esc(p.name)}">${esc(p.route)} <span class="meta">(${esc(p.name)})</span></h3>
<p class="desc">${p.requests} requests at ${p.rps} req/s with the profiler on; ${p.totalMs} ms sampled, ${p.idleMs} ms of it idle; ${p.busyMsPerRequest} busy ms per request on the main thread. File: ${esc(p.file)}.</p>
<table><tr><th>function (self time)</th><th>file:line</th><th>self ms</th><th>share of busy</th></tr>${rows}</table>
<div style="overflow-x:auto">${flameGraph(p.folded, { title: `${p.route}: where app-1's main thread spent its time` })}</div>`;
  };
  return `<section><h2>Profiles: where each endpoint's CPU goes</h2>
<p class="desc">${esc(r.profiles.method)} A frame's width is its time with everything it called; the top row of a column is the self time. Colours: blue the app, orange a dependency, grey Node's own JavaScript and V8 (program, garbage collector), red native code. Hover a frame for its time.</p>
<p class="desc">${r.profiles.endpoints.map((p: Json) => `<a href="#profile-${esc(p.name)}">${esc(p.name)}</a>`).join(" · ")}</p>
${r.profiles.endpoints.map(one).join("\n")}
</section>`;
}

function kneeSummary(r: Json): string {
  const k = r.knee;
  if (!k) return "";
  const climbs = k.climbs.map((c: Json) => (c.reached ? `${c.rps}` : `not reached (&gt; ${c.rps})`)).join(", ");
  if (k.belowRps !== undefined)
    return `Knee: <b>below ${k.belowRps} req/s</b>: no climb held a window even from its start (${k.runs} climb${k.runs === 1 ? "" : "s"}). Defined as ${esc(k.definition)}.`;
  return `Knee: <b>${k.median} req/s</b> (median of ${k.runs} climb${k.runs === 1 ? "" : "s"} to ${2 * k.estimateRps} req/s: ${climbs}; range ${k.low}-${k.high}, spread ${(100 * k.spread).toFixed(0)} %; ${k.reached} of ${k.runs} reached a failing window). Defined as ${esc(k.definition)}.`;
}

/** The run's topology (BENCH_TOPOLOGY) as a title; runs from before it existed were plain. */
export const topologyOf = (r: Json): { name: string; title: string } =>
  r.topology ?? { name: "plain", title: "plain (one Redis, PostgreSQL directly)" };

export function renderReport(r: Json): string {
  const a = r.anchors;
  const topo = topologyOf(r);
  const bouncer = r.endpoints.some((e: Json) => e.pgbouncerCpuMsPerRequest !== undefined);
  const endpointRows = r.endpoints
    .map((e: Json) => {
      const ratio = r.ratios.find((x: Json) => x.name === e.name);
      return `<tr><td>${esc(e.name)}</td><td>${esc(e.route)}${identityTwin(e) ? " (identity)" : ""}</td><td>${e.rps.toFixed(0)}</td><td>${ratio.rpsVsNodeHttp.toFixed(3)}</td><td>${ratio.rpsVsExpress.toFixed(3)}</td><td>${e.cpuMsPerRequest.toFixed(3)}</td><td>${ratio.cpuVsNodeHttp.toFixed(1)}×</td><td>${ratio.cpuVsExpress.toFixed(1)}×</td><td>${e.redisCommandsPerRequest}</td><td>${e.redisCpuMsPerRequest ?? ""}</td><td>${e.pgPrimaryStatementsPerRequest}</td><td>${e.pgReplicaStatementsPerRequest}</td>${bouncer ? `<td>${e.pgbouncerCpuMsPerRequest ?? ""}</td>` : ""}<td>${e.latency.p50} / ${e.latency.p99}</td><td>${e.errors}</td>${coreCells(e)}<td>${flagCell(e)}</td></tr>`;
    })
    .join("\n");
  const anchorRows = a.runs
    .map(
      (x: Json) =>
        `<tr><td>${esc(x.name)}</td><td>${esc(x.target)}</td><td>${x.rps.toFixed(0)}</td><td>${x.cpuMsPerRequest.toFixed(4)}</td><td>${x.latency.p50} / ${x.latency.p99}</td><td>${x.errors}</td>${coreCells(x)}<td>${flagCell(x)}</td></tr>`,
    )
    .join("\n");
  const rpsBars = barChart({
    title: "Requests per second, one process, same client (log scale)",
    unit: "req/s",
    log: true,
    rows: [
      { label: "node:http hello", value: a.nodeHttp.rps, color: "#111" },
      { label: "Express 5 hello", value: a.express.rps, color: "#4b5563" },
      ...r.endpoints.map((e: Json) => ({ label: e.route, value: e.rps })),
    ],
  });
  const cpuBars = barChart({
    title: "CPU time per request, × Express 5 hello-world (log scale)",
    unit: "×",
    log: true,
    rows: [
      { label: "node:http hello", value: a.nodeHttp.cpuMsPerRequest / a.express.cpuMsPerRequest, color: "#111" },
      { label: "Express 5 hello", value: 1, color: "#4b5563" },
      ...r.ratios.map((x: Json) => ({ label: x.route, value: x.cpuVsExpress, color: "#d97706" })),
    ],
  });
  const pm2Section = r.pm2
    ? `<section><h2>One machine: PM2 cluster mode</h2>
<p class="desc">GET /api/items/:id through PM2's cluster master (app/ecosystem.config.cjs), same client as above: one worker, then one per core. Speed-up ×${r.pm2.speedup} on ${r.machine.cores} cores. The load generator, Redis and PostgreSQL run on the same cores, so the speed-up measured here is bounded by the CPU they leave free.</p>
<div class="grid two">${barChart({
        title: "PM2 cluster mode: requests per second by worker count",
        unit: "req/s",
        rows: r.pm2.runs.map((x: Json) => ({
          label: `${x.workers} worker${x.workers === 1 ? "" : "s"}`,
          value: x.rps,
        })),
      })}</div>
<table><tr><th>workers</th><th>req/s</th><th>requests</th><th>p50 / p99 ms</th><th>errors</th></tr>${r.pm2.runs
        .map(
          (x: Json) =>
            `<tr><td>${x.workers}</td><td>${x.rps.toFixed(0)}</td><td>${x.requests}</td><td>${x.latency.p50} / ${x.latency.p99}</td><td>${x.errors}</td></tr>`,
        )
        .join("")}</table></section>`
    : notRun(r, "pm2")
      ? `<section><h2>One machine: PM2 cluster mode</h2><p class="desc">${NOT_RUN}.</p></section>`
      : "";
  const overview = r.shapes
    .map(
      (s: Json, i: number) =>
        `<tr><td><a href="#shape-${i}">${esc(s.shape)}</a></td><td>${s.aborted ? (s.knee ? (s.knee.reached ? `knee ${s.knee.rps} req/s` : `knee &gt; ${s.knee.rps} req/s`) : "stopped") : s.passed ? "passed" : "FAILED"}</td><td>${s.plannedS ?? s.durationS} s</td><td>${s.peakTarget ?? Math.max(...s.stages.map((x: Json) => x.target))}${s.executor === "ramping-vus" ? " VUs" : " req/s"}</td><td>${s.requests}</td><td>${s.rps}</td><td>${s.errors}</td><td>${s.dropped}</td><td>${ms(s.latency.p95)}</td><td>${ms(s.latency.p99)}</td><td>${s.sendLag ? `${s.sendLag.p99} ms` : ""}</td><td>${s.cores ? `${s.cores.server} / ${s.cores.client}` : ""}</td><td>${esc((s.flags ?? []).join("; "))}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nodescale bench ${esc(r.startedAt)}: ${esc(topo.title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111;margin:24px auto;max-width:1900px;padding:0 16px;background:#f9fafb}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:0 0 4px}
table{border-collapse:collapse;background:#fff;margin:8px 0 16px}td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}
td:first-child,th:first-child,td:nth-child(2){text-align:left}th{background:#f3f4f6;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:10px}.grid svg{border:1px solid #e5e7eb;border-radius:4px;width:100%;height:auto}
.grid.two{display:flex;flex-wrap:wrap}.grid.two svg{width:620px;max-width:100%}
@media (max-width:1300px){.grid{grid-template-columns:repeat(2,minmax(0,1fr))}}
section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:12px 16px;margin:16px 0}
.badge{font-size:12px;padding:2px 8px;border-radius:10px;vertical-align:middle;margin-left:6px}.ok{color:#065f46}.bad{color:#991b1b}
.badge.ok{background:#d1fae5}.badge.bad{background:#fee2e2;color:#991b1b}.badge.warn{background:#fef3c7;color:#92400e}
.desc{color:#444;margin:0 0 6px}.facts,.thresholds{margin:4px 0 8px;padding-left:18px}.thresholds{display:flex;gap:18px;list-style:none;padding:0}
.meta{color:#555}
</style></head><body>
<h1>nodescale bench: ${esc(topo.title)}</h1>
<p class="meta">${esc(r.startedAt)} · ${r.durationS} s · ${r.machine.cores} cores (${esc(r.machine.cpuModel)}) · Node ${esc(r.machine.node)} · load average at end ${r.machine.loadAverageAtEnd.join(" ")}${r.quick ? " · QUICK run" : ""}${r.phasesNotRun?.length ? ` · phases run: ${esc(r.phases.join(", "))}; not run: ${esc(r.phasesNotRun.join(", "))}` : ""}<br>
${esc(r.machine.note)}. Method: ${esc(r.method.client)}; CPU: ${esc(r.method.cpu)}; Redis: ${esc(r.method.redis)}; PostgreSQL: ${esc(r.method.postgres)}; app: ${esc(r.method.app)}.</p>

<section><h2>Anchors and endpoints</h2>
<p class="desc">Every endpoint straight to one app process, measured like the anchors: same client, same connections, ${r.method.measureSeconds} s after a ${r.method.warmupSeconds} s warm-up. The ratios use anchor pass 1, measured right before the endpoints; pass 2 ran after everything else and only shows the drift (node:http ×${a.nodeHttp.drift}, Express ×${a.express.drift}). A flag marks a run whose numbers are not the server's limit: the server below 0.9 of a core, or the load generator at 0.9 of a core or behind its schedule.</p>
<div class="grid two">${rpsBars}${cpuBars}</div>
<table><tr><th>anchor</th><th>pass</th><th>req/s</th><th>CPU ms/req</th><th>p50 / p99 ms</th><th>errors</th><th>server cores</th><th>client cores</th><th>flags</th></tr>${anchorRows}</table>
<table><tr><th>endpoint</th><th>route</th><th>req/s</th><th>÷ node:http</th><th>÷ Express</th><th>CPU ms/req</th><th>CPU × node:http</th><th>CPU × Express</th><th>Redis cmds/req</th><th>Redis CPU ms/req</th><th>PG statements/req primary</th><th>PG statements/req replica</th>${bouncer ? "<th>PgBouncer CPU ms/req</th>" : ""}<th>p50 / p99 ms</th><th>errors</th><th>server cores</th><th>client cores</th><th>flags</th></tr>
${endpointRows}</table>
${compressionSection(r)}
${operatingPointSection(r)}
${fixedRateSection(r)}
<p class="desc">The API mix (${r.mix.map((m: Json) => `${esc(m.endpoint)} ${m.weight}`).join(", ")}) would sustain about ${r.mixCapacityRps} req/s on one instance from these costs. ${
    notRun(r, "shapes")
      ? "The shapes through nginx (the knee) were not run in this bench (BENCH_PHASES)."
      : `Through nginx and both instances, the breakpoint climbs put the knee at <b>${r.kneeRps} req/s</b> (median; see the shapes); ramp, spike and soak then ran the cluster shapes (TARGET_RPS=${r.clusterTargetRps}) scaled to a ramp target of ${r.localTargetRps} req/s (80 % of the knee), so that they test behaviour below saturation.`
  }</p>
</section>

${profileSection(r)}

${pm2Section}

<section><h2>Shapes through nginx</h2>
<p class="desc">${notRun(r, "shapes") ? `${NOT_RUN}.` : kneeSummary(r)}</p>
<table><tr><th>shape</th><th>result</th><th>length here</th><th>peak asked</th><th>requests</th><th>req/s</th><th>errors</th><th>dropped</th><th>p95 (drops ∞)</th><th>p99 (drops ∞)</th><th>send lag p99</th><th>cores: busiest app / client</th><th>flags</th></tr>${overview}</table>
</section>
${r.shapes.map((s: Json, i: number) => `<a id="shape-${i}"></a>${shapeSection(s)}`).join("\n")}
</body></html>
`;
}

export const BEGIN = "<!-- bench-tables:begin -->";
export const END = "<!-- bench-tables:end -->";
export const COMPARE_BEGIN = "<!-- bench-compare:begin -->";
export const COMPARE_END = "<!-- bench-compare:end -->";

function compressionSection(r: Json): string {
  if (!r.compression?.length) return "";
  const rows = r.compression
    .map(
      (c: Json) =>
        `<tr><td>${esc(c.route)}</td><td>${esc(c.encoding)}</td><td>${c.bytes} (${c.identityBytes})</td><td>${c.cpuMsPerRequest} (${c.identityCpuMsPerRequest})</td><td>${c.extraCpuMs}</td><td>${c.extraCpuMsPerKiBSaved ?? "-"}</td></tr>`,
    )
    .join("\n");
  return `<p class="desc">What compression costs: each compressing route measured with a browser's Accept-Encoding and with identity (the rows marked so above); one response of each sampled for its size on the wire.</p>
<table><tr><th>route</th><th>encoding</th><th>bytes (identity)</th><th>app CPU ms/req (identity)</th><th>added CPU ms/req</th><th>CPU ms per KiB saved</th></tr>${rows}</table>`;
}

/** A twin measured with `Accept-Encoding: identity`, only to price compression. */
const identityTwin = (e: Json) => String(e.name).endsWith("-identity");

const cell = (v: unknown) => (typeof v === "number" ? String(v) : v === "Infinity" ? "∞ (drops)" : String(v ?? ""));

/** The run's tables in Markdown, for a README: everything from this one JSON. */
export function markdownTables(r: Json, name: string): string {
  const out: string[] = [];
  const a = r.anchors;
  out.push(
    `From one run, \`${name}\` (${r.startedAt}, ${r.machine.cores} cores, Node ${r.machine.node}${r.quick ? ", QUICK" : ""}), written by \`node load/report.ts --readme\`: edit the run, not these lines.`,
  );
  if (r.phasesNotRun?.length) {
    out.push("");
    out.push(`Phases not run in this bench (BENCH_PHASES): ${r.phasesNotRun.join(", ")}.`);
  }
  out.push("");
  out.push(
    `Anchors (pass 1, next to the endpoints): \`node:http\` ${a.nodeHttp.rps} req/s, ${a.nodeHttp.cpuMsPerRequest} CPU ms/req; Express 5 ${a.express.rps} req/s, ${a.express.cpuMsPerRequest} CPU ms/req (drift to pass 2: ×${a.nodeHttp.drift}, ×${a.express.drift}).`,
  );
  out.push("");
  out.push(
    `| Endpoint | req/s | ÷ node:http | ÷ Express | CPU ms/req at saturation | CPU ms/req at the operating point | CPU ms/req at ${r.fixedRate?.rps ?? "-"} req/s | × Express | Redis cmds/req | PG statements/req (primary + replica) | flags |`,
  );
  out.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  const fixed = (name: string) =>
    [...(r.fixedRate?.anchors ?? []), ...(r.fixedRate?.endpoints ?? [])].find((x: Json) => x.name === name)
      ?.cpuMsPerRequest ?? "-";
  out.push(
    `| anchors: \`node:http\` / Express 5 | ${a.nodeHttp.rps} / ${a.express.rps} | | | ${a.nodeHttp.cpuMsPerRequest} / ${a.express.cpuMsPerRequest} | | ${fixed("node:http hello-world")} / ${fixed("Express 5 hello-world")} | | | | ${[...(a.nodeHttp.flags ?? []), ...(a.express.flags ?? [])].join("; ")} |`,
  );
  for (const e of r.endpoints) {
    const ratio = r.ratios.find((x: Json) => x.name === e.name);
    const op = r.operatingPoint?.endpoints.find((x: Json) => x.name === e.name);
    out.push(
      `| \`${e.route}\`${identityTwin(e) ? " (identity)" : ""} | ${e.rps} | ${ratio.rpsVsNodeHttp} | ${ratio.rpsVsExpress} | ${e.cpuMsPerRequest} | ${op ? op.cpuMsPerRequest : "-"} | ${fixed(e.name)} | ${ratio.cpuVsExpress} | ${e.redisCommandsPerRequest} | ${e.pgPrimaryStatementsPerRequest} + ${e.pgReplicaStatementsPerRequest} | ${(e.flags ?? []).join("; ")} |`,
    );
  }
  out.push("");
  if (r.compression?.length) {
    out.push(
      "What compression costs, from the rows above: each route with a browser's `Accept-Encoding` against `identity` (one response sampled for its size):",
    );
    out.push("");
    out.push(
      "| Route | encoding | bytes on the wire (identity) | app CPU ms/req (identity) | added CPU ms/req | CPU ms per KiB saved |",
    );
    out.push("| --- | --- | ---: | ---: | ---: | ---: |");
    for (const c of r.compression)
      out.push(
        `| \`${c.route}\` | ${c.encoding} | ${c.bytes} (${c.identityBytes}) | ${c.cpuMsPerRequest} (${c.identityCpuMsPerRequest}) | ${c.extraCpuMs} | ${c.extraCpuMsPerKiBSaved ?? "-"} |`,
      );
    out.push("");
  }
  if (r.knee?.belowRps !== undefined) {
    out.push(
      `Knee through nginx: **below ${r.knee.belowRps} req/s**: no climb held a window even from its start. Defined as ${r.knee.definition}.`,
    );
    out.push("");
  } else if (r.knee) {
    const climbs = r.knee.climbs.map((c: Json) => (c.reached ? `${c.rps}` : `not reached (> ${c.rps})`)).join(", ");
    out.push(
      `Knee through nginx: **${r.knee.median} req/s**, median of ${r.knee.runs} climb(s) to ${2 * r.knee.estimateRps} req/s (${climbs}; range ${r.knee.low}-${r.knee.high}). Defined as ${r.knee.definition}.`,
    );
    out.push("");
  }
  if (r.shapes.length === 0) {
    out.push("No shapes through nginx in this run.");
    return out.join("\n");
  }
  out.push(
    "| Phase | length (planned) | peak | offered | dropped | p95 | p99 | send lag p99 | cores: busiest app / generator | result | flags |",
  );
  out.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
  for (const s of r.shapes) {
    const result =
      s.knee && s.aborted
        ? s.knee.reached
          ? `knee ${s.knee.rps}`
          : `knee > ${s.knee.rps}`
        : s.passed
          ? "passed"
          : "FAILED";
    out.push(
      `| ${s.shape} | ${s.durationS} s (${s.plannedS ?? "?"} s) | ${s.peakTarget ?? ""} ${s.executor === "ramping-vus" ? "VUs" : "req/s"} | ${s.offered ?? s.requests} | ${s.dropped} | ${cell(s.latency.p95)} | ${cell(s.latency.p99)} | ${s.sendLag ? s.sendLag.p99 : "-"} | ${s.cores ? `${s.cores.server} / ${s.cores.client}` : "-"} | ${result} | ${(s.flags ?? []).join("; ")} |`,
    );
  }
  out.push("");
  out.push("`make capacity` with the default assumptions, from this run:");
  out.push("");
  walk(r, assumptions({}), (line) => out.push(line));
  return out.join("\n");
}

/** `text` with the block between `begin` and `end` replaced by `tables`; throws when the markers are missing. */
export function replaceBlock(text: string, tables: string, begin = BEGIN, end = END): string {
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`no ${begin} ... ${end} block to rewrite`);
  return `${text.slice(0, from + begin.length)}\n${tables}\n${text.slice(to)}`;
}

/** Runs named by topology (with the file's name when a topology comes twice), in the order given. */
export function compareRuns(files: string[]): Run[] {
  const runs = files.map((file) => ({ file, r: JSON.parse(readFileSync(file, "utf8")) }));
  const topo = (r: Json) => topologyOf(r).name;
  return runs.map(({ file, r }) => ({
    name: runs.filter((x) => topo(x.r) === topo(r)).length > 1 ? `${topo(r)} ${basename(file, ".json")}` : topo(r),
    r,
  }));
}

/** The --compare block for a README: the table, and the command that made it. */
export function compareBlock(files: string[]): string {
  return [
    `Written by \`node load/report.ts --compare ${files.map((f) => basename(f)).join(" ")} --readme\` from those runs: edit the runs, not these lines.`,
    "",
    compareMarkdown(compareRuns(files)),
  ].join("\n");
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args[0] === "--compare") {
    const files: string[] = [];
    const opts: Record<string, string> = {};
    for (let i = 1; i < args.length; i++) {
      const a = args[i] as string;
      if (a === "--readme" || a === "--html") opts[a] = args[++i] ?? "";
      else files.push(a);
    }
    if (files.length < 2 || opts["--readme"] === "" || opts["--html"] === "") {
      process.stderr.write(
        "usage: node load/report.ts --compare a.json b.json [c.json ...] [--readme <file.md>] [--html <out.html>]\n",
      );
      process.exit(2);
    }
    const runs = compareRuns(files);
    process.stdout.write(`${compareMarkdown(runs)}\n`);
    const newest = [...files].sort((a, b) => basename(a).localeCompare(basename(b))).at(-1) as string;
    const html = opts["--html"] ?? join(dirname(newest), `compare-${basename(newest, ".json")}.html`);
    writeFileSync(html, compareHtml(runs));
    process.stdout.write(`${html}\n`);
    const md = opts["--readme"];
    if (md) {
      writeFileSync(md, replaceBlock(readFileSync(md, "utf8"), compareBlock(files), COMPARE_BEGIN, COMPARE_END));
      process.stdout.write(`${md}\n`);
    }
    process.exit(0);
  }
  if (args[0] === "--readme") {
    const [, json, md] = args;
    if (!json || !md) {
      process.stderr.write("usage: node load/report.ts --readme bench/results/<timestamp>.json <file.md>\n");
      process.exit(2);
    }
    const tables = markdownTables(JSON.parse(readFileSync(json, "utf8")), basename(json));
    writeFileSync(md, replaceBlock(readFileSync(md, "utf8"), tables));
    process.stdout.write(`${md}\n`);
    process.exit(0);
  }
  const file = args[0];
  if (!file) {
    process.stderr.write("usage: node load/report.ts bench/results/<timestamp>.json\n");
    process.exit(2);
  }
  const out = file.replace(/\.json$/, ".html");
  writeFileSync(out, renderReport(JSON.parse(readFileSync(file, "utf8"))));
  process.stdout.write(`${out}\n`);
}
