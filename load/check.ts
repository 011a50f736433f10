// `make load-check`: what k6 will run must be plain k6. Type-checks the scenarios and the
// shapes against @types/k6 with no Node types (load/tsconfig.json), then follows every import
// from each scenario and fails on a Node builtin (node:*, fs, http, ...), a remote URL
// (k6 could fetch it, but the machine running it may be offline and the code unreviewed), or
// any other bare package name (k6 does not read node_modules). Also: one script per shape,
// and the Node side of load/ type-checks (load/tsconfig.node.json).
//
//   node load/check.ts            exit 0 when clean, 1 with one line per problem

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { SHAPE_NAMES } from "./shapes.ts";

const LOAD = import.meta.dirname;
const ROOT = resolve(LOAD, "..");
const SCENARIOS = join(LOAD, "scenarios");

/** Every module specifier in a source file: static and dynamic imports, re-exports, require(). */
export function specifiers(source: string): string[] {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
  const found: string[] = [];
  const patterns = [
    /\bimport\s+(?:type\s+)?[\w*{}\s,$]*?\s*from\s*["']([^"']+)["']/g,
    /\bexport\s+(?:type\s+)?[\w*{}\s,$]*?\s*from\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["'`]([^"'`]+)["'`]\s*\)/g,
    /\brequire\s*\(\s*["'`]([^"'`]+)["'`]\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1] as string);
  return found;
}

const builtins = new Set(builtinModules.flatMap((m) => [m, m.split("/")[0] as string]));

/** Why a specifier is not allowed in k6 code, or null when it is. */
export function problemWith(spec: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) return "remote import (must run offline)";
  if (spec.startsWith("node:") || builtins.has(spec) || builtins.has(spec.split("/")[0] as string))
    return spec === "k6" || spec.startsWith("k6/") ? null : "Node builtin (k6 has no Node APIs)";
  if (spec === "k6" || spec.startsWith("k6/")) return null;
  if (spec.startsWith("./") || spec.startsWith("../")) return null;
  return "bare package import (k6 does not resolve node_modules)";
}

export function checkImports(entries: string[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const where = relative(ROOT, file);
    if (!existsSync(file)) {
      problems.push(`${where}: imported but missing`);
      continue;
    }
    for (const spec of specifiers(readFileSync(file, "utf8"))) {
      const why = problemWith(spec);
      if (why) problems.push(`${where}: imports "${spec}": ${why}`);
      else if (spec.startsWith(".")) {
        if (!spec.endsWith(".ts") && !spec.endsWith(".js"))
          problems.push(`${where}: imports "${spec}": relative imports need their extension`);
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(`${LOAD}/`)) problems.push(`${where}: imports "${spec}" from outside load/`);
        else if (target.startsWith(join(LOAD, "runner")) || target.startsWith(join(LOAD, "test")))
          problems.push(`${where}: imports "${spec}": Node-side code`);
        else queue.push(target);
      }
    }
  }
  return problems;
}

/** tsc on a project; one problem per line of output. */
function typecheck(project: string): string[] {
  const tsc = join(ROOT, "node_modules", ".bin", "tsc");
  try {
    execFileSync(tsc, ["-p", join(LOAD, project)], { cwd: ROOT, encoding: "utf8", stdio: "pipe" });
    return [];
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const out = `${e.stdout ?? ""}${e.stderr ?? ""}`.trim() || e.message;
    return out.split("\n").map((line) => `tsc -p load/${project}: ${line}`);
  }
}

if (import.meta.main) {
  const scripts = readdirSync(SCENARIOS)
    .filter((f) => f.endsWith(".ts") && f !== "common.ts")
    .map((f) => join(SCENARIOS, f));
  const problems = [
    ...SHAPE_NAMES.filter((n) => !existsSync(join(SCENARIOS, `${n}.ts`))).map(
      (n) => `load/scenarios/${n}.ts: missing (every shape has a k6 script)`,
    ),
    ...checkImports(scripts),
    // the k6 side (k6 types, no Node), then the Node side (runner, bench, capacity, tests)
    ...typecheck("tsconfig.json"),
    ...typecheck("tsconfig.node.json"),
  ];
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`load-check: ${p}\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(
      `load-check: ${scripts.length} k6 scripts type-check and import only k6 and load/ files; the Node side type-checks\n`,
    );
  }
}
