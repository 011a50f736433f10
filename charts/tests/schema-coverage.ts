// values.yaml and values.schema.json describe the same keys: every value has a schema
// entry (helm lint enforces that direction through additionalProperties: false), and every
// schema property of ours exists in values.yaml, so the schema cannot drift into
// documenting values the chart no longer has. Subchart values (postgresql, redis, redisCluster, global)
// belong to the Bitnami charts and are left open.
//
//   node charts/tests/schema-coverage.ts <values.json> <values.schema.json>
import { readFileSync } from "node:fs";

const [valuesFile, schemaFile] = process.argv.slice(2);
if (valuesFile === undefined || schemaFile === undefined) {
  console.error("usage: node charts/tests/schema-coverage.ts <values.json> <values.schema.json>");
  process.exit(2);
}
const values = JSON.parse(readFileSync(valuesFile, "utf8"));
const schema = JSON.parse(readFileSync(schemaFile, "utf8"));
const problems: string[] = [];
const open = new Set(["global", "postgresql", "redis", "redisCluster"]);

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
};

function walk(s: Schema, v: unknown, path: string): void {
  if (!s.properties) return;
  if (s.additionalProperties !== false && !open.has(path))
    problems.push(`${path || "(root)"}: additionalProperties is not false`);
  for (const [key, sub] of Object.entries(s.properties)) {
    const p = path ? `${path}.${key}` : key;
    if (open.has(path.split(".")[0] ?? "")) continue;
    if (v === null || typeof v !== "object" || !(key in (v as object))) {
      if (key !== "global") problems.push(`${p}: in values.schema.json but not in values.yaml`);
      continue;
    }
    const child = (v as Record<string, unknown>)[key];
    if (child && typeof child === "object" && !Array.isArray(child)) walk(sub, child, p);
  }
}
walk(schema, values, "");
for (const p of problems) console.log(`NOT OK - ${p}`);
console.log(
  problems.length === 0
    ? "ok - values.yaml and values.schema.json describe the same keys"
    : `${problems.length} problem(s)`,
);
process.exit(problems.length === 0 ? 0 : 1);
