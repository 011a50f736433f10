// The images the bundled services pull are the pinned Bitnami charts' own defaults (issue
// 13, item 6): a chart release and the image tags it was released with run together, and
// the kind cluster runs the same tags. Bitnami moved those versioned tags to
// docker.io/bitnamilegacy, so the chart's values point the repositories there.
//
//   node charts/tests/image-pins.ts <Chart.yaml> <values.yaml> <values-kind.yaml>
//
// DEFAULTS records, per pinned release, the images of that release's values.yaml, read in
// the bitnami/charts history (bitnami/postgresql at 16.7.27, commit 36f859828f; bitnami/redis
// at 22.0.7, commit 07a0857a60; bitnami/redis-cluster at 13.0.4, commit 2060aa94b8). A new pin
// without an entry here fails: derive its tags the same way. `path` is where the chart's
// values.yaml sets the image (an aliased dependency's values sit under its alias).
//
// PgBouncer has no Bitnami chart: its image is the chart's own (pgbouncer.image), checked
// against PGBOUNCER below.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const YAML = require("yaml") as { parse(text: string): any };

const DEFAULTS: Record<string, Record<string, { path: string[]; tag: string }>> = {
  "postgresql@16.7.27": {
    postgresql: { path: ["postgresql", "image"], tag: "17.6.0-debian-12-r4" },
  },
  "redis@22.0.7": {
    redis: { path: ["redis", "image"], tag: "8.2.1-debian-12-r0" },
    "redis-sentinel": { path: ["redis", "sentinel", "image"], tag: "8.2.1-debian-12-r0" },
  },
  "redis-cluster@13.0.4": {
    "redis-cluster": { path: ["redisCluster", "image"], tag: "8.2.1-debian-12-r0" },
  },
};

// PgBouncer 1.24.1 (>= 1.21, though the app keeps named prepared statements off for older
// poolers): bitnami/containers' bitnami/pgbouncer/1/debian-12/Dockerfile records APP_VERSION
// 1.24.1 through the move to bitnamilegacy (its revision 14 is dated 2025-10-07, after the
// freeze); the frozen revision, debian-12-r10, is the one public projects pin from
// docker.io/bitnamilegacy. The revision at the freeze could not be read from that history here
// (the repository is too large to fetch): re-check it against the registry before relying on it.
const PGBOUNCER = { path: ["pgbouncer", "image"], repository: "bitnamilegacy/pgbouncer", tag: "1.24.1-debian-12-r10" };

const [chartFile, valuesFile, kindFile] = process.argv.slice(2);
if (!chartFile || !valuesFile || !kindFile) {
  console.error("usage: node charts/tests/image-pins.ts <Chart.yaml> <values.yaml> <values-kind.yaml>");
  process.exit(2);
}
const chart = YAML.parse(readFileSync(chartFile, "utf8"));
const values = YAML.parse(readFileSync(valuesFile, "utf8"));
const kind = YAML.parse(readFileSync(kindFile, "utf8"));
const at = (root: any, path: string[]) => path.reduce((o, k) => o?.[k], root);

let failures = 0;
const check = (ok: boolean, message: string) => {
  console.log(`    ${ok ? "ok" : "NOT OK"} - ${message}`);
  if (!ok) failures++;
};

for (const dep of chart.dependencies ?? []) {
  const pin = `${dep.name}@${dep.version}`;
  const images = DEFAULTS[pin];
  check(images !== undefined, `${pin}: its default images are recorded`);
  for (const [image, { path, tag }] of Object.entries(images ?? {})) {
    const ours = at(values, path);
    check(
      ours?.repository === `bitnamilegacy/${image}` && ours?.tag === tag,
      `${pin}: values.yaml pulls bitnamilegacy/${image}:${tag} (got ${ours?.repository}:${ours?.tag})`,
    );
    const kindImage = at(kind, path);
    if (kindImage?.tag !== undefined)
      check(
        kindImage.tag === tag,
        `${pin}: k8s-tests/kind/values-kind.yaml runs ${image}:${tag} (got ${kindImage.repository}:${kindImage.tag})`,
      );
  }
}
const pgbouncer = at(values, PGBOUNCER.path);
check(
  pgbouncer?.repository === PGBOUNCER.repository && pgbouncer?.tag === PGBOUNCER.tag,
  `pgbouncer: values.yaml pulls ${PGBOUNCER.repository}:${PGBOUNCER.tag} (got ${pgbouncer?.repository}:${pgbouncer?.tag})`,
);
console.log(failures === 0 ? "  all assertions hold" : `  ${failures} assertion(s) failed`);
process.exit(failures === 0 ? 0 : 1);
