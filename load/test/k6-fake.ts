// A stand-in for k6's own modules so that Node can load the k6 scripts: their `options`, their
// setup and iterations, their handleSummary. k6 cannot run on this machine (see
// /work/shared/FACTS.md); this is the nearest thing to `k6 inspect` and to a k6 iteration it
// has. Only what the scripts use is here, and it behaves as k6 documents it: fail() throws,
// check() returns whether every condition held, r.json() throws on a body that is not JSON.
//
// Import this module first: it installs module hooks (node:module registerHooks) that answer
// `k6` and `k6/*` imports, and sets the global __ENV. The test controls what `http` answers
// (`fake.respond`) and reads what the script did (`fake.calls`, `fake.sleeps`, `fake.checks`).

import { registerHooks } from "node:module";
import { pathToFileURL } from "node:url";

export type FakeResponse = {
  status: number;
  body: string;
  headers: Record<string, string>;
  cookies: Record<string, { value: string }[]>;
  timings: { duration: number };
  json(): unknown;
};

export type Call = { method: string; url: string; body: unknown };

export type Fake = {
  respond: (call: Call) => { status: number; body?: string; contentType?: string; sid?: string };
  calls: Call[];
  sleeps: number[];
  checks: { name: string; ok: boolean }[];
  metrics: { name: string; value: unknown }[];
  vu: { idInTest: number };
  scenario: { iterationInTest: number };
  reset(): void;
};

export const fake: Fake = {
  respond: () => ({ status: 200, body: "{}", contentType: "application/json" }),
  calls: [],
  sleeps: [],
  checks: [],
  metrics: [],
  vu: { idInTest: 1 },
  scenario: { iterationInTest: 0 },
  reset() {
    this.calls = [];
    this.sleeps = [];
    this.checks = [];
    this.metrics = [];
  },
};

function request(method: string, url: string, body: unknown): FakeResponse {
  const call = { method, url, body };
  fake.calls.push(call);
  const r = fake.respond(call);
  const text = r.body ?? "";
  return {
    status: r.status,
    body: text,
    headers: r.contentType ? { "Content-Type": r.contentType } : {},
    cookies: r.sid ? { sid: [{ value: r.sid }] } : {},
    timings: { duration: 1 },
    json: () => JSON.parse(text),
  };
}

const g = globalThis as Record<string, unknown>;
g.__ENV = {} as Record<string, string>;
g.__k6fake = {
  fail: (message: string) => {
    throw new Error(message);
  },
  check: (value: unknown, sets: Record<string, (v: unknown) => boolean>) => {
    let all = true;
    for (const [name, fn] of Object.entries(sets)) {
      const ok = Boolean(fn(value)); // an exception here escapes, as in k6
      fake.checks.push({ name, ok });
      all &&= ok;
    }
    return all;
  },
  sleep: (s: number) => fake.sleeps.push(s),
  request,
  metric: (name: string, value: unknown) => fake.metrics.push({ name, value }),
  exec: {
    get vu() {
      return fake.vu;
    },
    get scenario() {
      return fake.scenario;
    },
  },
};

/** The environment the scripts read as __ENV (replaced by `setEnv`). */
export function setEnv(env: Record<string, string>): void {
  g.__ENV = { ...env };
}

const F = "globalThis.__k6fake";
const SOURCES: Record<string, string> = {
  k6: `export const fail = (m) => ${F}.fail(m); export const check = (v, s) => ${F}.check(v, s);
       export const sleep = (s) => ${F}.sleep(s); export default { fail, check, sleep };`,
  "k6/execution": `export default ${F}.exec;`,
  "k6/http": `const http = {
         get: (url, params) => ${F}.request("GET", url, null, params),
         post: (url, body, params) => ${F}.request("POST", url, body, params),
         expectedStatuses: (...statuses) => ({ statuses }),
       }; export default http;`,
  "k6/metrics": `class M { constructor(name) { this.name = name; } add(v) { ${F}.metric(this.name, v); } }
       export class Rate extends M {} export class Trend extends M {} export class Counter extends M {}
       export class Gauge extends M {}`,
};

registerHooks({
  resolve(specifier, context, next) {
    if (specifier === "k6" || specifier.startsWith("k6/")) return { url: `k6-fake:${specifier}`, shortCircuit: true };
    return next(specifier, context);
  },
  load(url, context, next) {
    if (url.startsWith("k6-fake:")) {
      const source = SOURCES[url.slice("k6-fake:".length)];
      if (source === undefined) throw new Error(`k6-fake: no stand-in for ${url}`);
      return { format: "module", source, shortCircuit: true };
    }
    return next(url, context);
  },
});

const SCENARIOS = pathToFileURL(`${import.meta.dirname}/../scenarios/`);

/**
 * A fresh copy of a k6 script (a query string makes Node evaluate it again), loaded with
 * `env` as __ENV: its top level, where `options` is computed, runs now.
 */
export async function loadScript(file: string, env: Record<string, string>, fresh: string): Promise<K6Script> {
  setEnv(env);
  const url = new URL(`${file}?fresh=${encodeURIComponent(fresh)}`, SCENARIOS);
  return (await import(url.href)) as K6Script;
}

export type K6Script = {
  options: Record<string, unknown>;
  setup?: () => unknown;
  default: (data: unknown) => void;
  handleSummary?: (data: unknown) => unknown;
  [name: string]: unknown;
};
