// /metrics parses as Prometheus text exposition format (checked by a strict parser here, not
// by the library that wrote it), and http_request_duration_seconds is labelled by route
// template (`/api/items/:id`), never by a raw path such as `/api/items/123`.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, jsonOf, registerAndLogin, startStack, stopStack, type Topology } from "./support.ts";

type Sample = { name: string; labels: Record<string, string>; value: number };
type Family = { name: string; type: string; help: string; samples: Sample[] };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Record<string, string[]> = {
  counter: ["", "_total", "_created"],
  gauge: [""],
  histogram: ["_bucket", "_sum", "_count", "_created"],
  summary: ["", "_sum", "_count", "_created"],
  untyped: [""],
};

function parseValue(text: string, where: string): number {
  if (text === "NaN") return Number.NaN;
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text))
    throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** Reads `{a="x",b="y"}` from position i; returns the labels and the position after `}`. */
function parseLabels(line: string, i: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++; // {
  for (;;) {
    if (line[i] === "}") return [labels, i + 1];
    const nameMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (!nameMatch) throw new Error(`${where}: bad label name at ${i}`);
    const name = nameMatch[0];
    i += name.length;
    if (line[i] !== "=" || line[i + 1] !== '"') throw new Error(`${where}: expected =" after ${name}`);
    i += 2;
    let value = "";
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === "\\") {
        const next = line[i + 1];
        if (next === "\\" || next === '"') value += next;
        else if (next === "n") value += "\n";
        else throw new Error(`${where}: bad escape \\${next}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    i++; // closing quote
    if (name in labels) throw new Error(`${where}: duplicate label ${name}`);
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`${where}: reserved label ${name}`);
    labels[name] = value;
    if (line[i] === ",") i++;
    else if (line[i] !== "}") throw new Error(`${where}: expected , or } at ${i}`);
  }
}

/** A strict reader of the Prometheus text format (version 0.0.4). Throws on the first problem. */
export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, Family>();
  const seenSeries = new Set<string>();
  let current: Family | undefined;
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name = "", rest = ""] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      let family = families.get(name);
      if (family && family !== current) throw new Error(`${where}: ${name} is not contiguous`);
      if (!family) {
        family = { name, type: "untyped", help: "", samples: [] };
        families.set(name, family);
      }
      current = family;
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
        if (family.samples.length > 0) throw new Error(`${where}: TYPE after samples of ${name}`);
        family.type = rest;
      } else {
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) throw new Error(`${where}: bad escape in HELP`);
        family.help = rest;
      }
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nameMatch) throw new Error(`${where}: not a sample: ${line.slice(0, 80)}`);
    const name = nameMatch[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === "{") [labels, i] = parseLabels(line, i, where);
    if (line[i] !== " ") throw new Error(`${where}: expected a space before the value`);
    const [valueText = "", timestamp, extra] = line.slice(i + 1).split(" ");
    if (extra !== undefined) throw new Error(`${where}: trailing text`);
    if (timestamp !== undefined && !/^-?\d+$/.test(timestamp)) throw new Error(`${where}: bad timestamp`);
    const value = parseValue(valueText, where);
    const family = current;
    if (!family) throw new Error(`${where}: sample ${name} before any TYPE/HELP`);
    const suffix = name.slice(family.name.length);
    if (!name.startsWith(family.name) || !(SUFFIXES[family.type] ?? [""]).includes(suffix))
      throw new Error(`${where}: sample ${name} does not belong to ${family.type} ${family.name}`);
    if (family.type === "histogram" && suffix === "_bucket" && labels.le === undefined)
      throw new Error(`${where}: bucket without le`);
    const key = `${name}{${Object.entries(labels)
      .sort()
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(",")}}`;
    if (seenSeries.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    seenSeries.add(key);
    family.samples.push({ name, labels, value });
  });
  return families;
}

let stack: Topology | undefined;

before(async () => {
  stack = await startStack("metrics", { instances: 1 });
});

after(async () => {
  await stopStack(stack);
});

test("/metrics is valid Prometheus text; request durations are labelled by route template", {
  timeout: 60_000,
}, async () => {
  assert.ok(stack);
  const instance = stack.instances[0];
  assert.ok(instance);
  // One instance directly, so every request below lands in the registry we read.
  const client = new Client(instance.url);
  await registerAndLogin(client, "metrics");
  const created = await client.post("/api/items", { title: "measured" });
  const id = (jsonOf(created) as { id: number }).id;
  const raw = [
    `/api/items/${id}`,
    "/api/items/123",
    "/api/items/456",
    "/api/items/abc",
    "/api/items/99999999999999999999",
    "/api/items?limit=5",
    "/api/items/export?mine=true",
    "/api/me",
    "/no/such/route/789",
    "/api/items/%FF",
  ];
  const statuses: string[] = [];
  for (const path of raw) statuses.push(`${path} ${(await client.get(path)).status}`);

  const reply = await client.get("/metrics");
  client.close();
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusText(reply.text);
  const samples = [...families.values()].reduce((n, f) => n + f.samples.length, 0);

  const duration = families.get("http_request_duration_seconds");
  assert.ok(duration, "http_request_duration_seconds is exported");
  assert.equal(duration.type, "histogram");
  const routes = [...new Set(duration.samples.map((s) => s.labels.route ?? "(none)"))].sort();
  console.log(
    `requests: ${statuses.join(", ")}\n/metrics: ${reply.body.length} bytes, ${families.size} families, ${samples} samples; ` +
      `http_request_duration_seconds routes: ${routes.join(" ")}`,
  );

  for (const s of duration.samples) {
    assert.deepEqual(
      Object.keys(s.labels)
        .filter((k) => k !== "le")
        .sort(),
      ["method", "route", "status_code"],
      `labels of ${s.name}`,
    );
  }
  assert.ok(routes.includes("/api/items/:id"), "item reads are labelled /api/items/:id");
  const rawLabels = routes.filter((r) => /\d/.test(r) || r.includes("%") || r.includes("?") || r.includes("abc"));
  assert.deepEqual(rawLabels, [], "no route label is a raw path");
  const allowed = new Set([
    "/livez",
    "/readyz",
    "/metrics",
    "/api/auth/register",
    "/api/auth/login",
    "/api/auth/logout",
    "/api/me",
    "/api/items",
    "/api/items/:id",
    "/api/items/export",
    "/api/items/import",
    "/api/work",
    "unmatched",
  ]);
  assert.deepEqual(
    routes.filter((r) => !allowed.has(r)),
    [],
    "every route label is a route template or 'unmatched'",
  );

  // The histogram is consistent: buckets cumulative, +Inf equals _count, per series.
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of duration.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (s.name.endsWith("_bucket")) entry.buckets.push([parseValue(le ?? "", "le"), s.value]);
    if (s.name.endsWith("_count")) entry.count = s.value;
  }
  for (const [key, { buckets, count }] of series) {
    buckets.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < buckets.length; i++)
      assert.ok((buckets[i]?.[1] ?? 0) >= (buckets[i - 1]?.[1] ?? 0), `${key}: buckets are cumulative`);
    assert.equal(buckets.at(-1)?.[0], Number.POSITIVE_INFINITY, `${key}: has a +Inf bucket`);
    assert.equal(buckets.at(-1)?.[1], count, `${key}: +Inf bucket equals _count`);
  }
  const itemReads = duration.samples
    .filter((s) => s.name.endsWith("_count") && s.labels.route === "/api/items/:id" && s.labels.method === "GET")
    .reduce((n, s) => n + s.value, 0);
  assert.ok(itemReads >= 5, `GET /api/items/:id counted under its template (${itemReads})`);
});
