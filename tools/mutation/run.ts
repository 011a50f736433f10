// `make mutation`: StrykerJS over the modules where a silent bug costs the most (see
// stryker.config.json), with one local stack started for the whole run so that the tests
// needing Redis or PostgreSQL take them from TEST_REDIS_URL / TEST_DATABASE_URL instead of
// starting their own for every mutant. Prints the score per module and every surviving
// mutant; the HTML report is .local/mutation/index.html.
//
//   node tools/mutation/run.ts             the whole run
//   node tools/mutation/run.ts --report    only the per-module table from the last run's JSON

import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startTestStack, teardown } from "../../local/test/helpers.ts";
import { reasonFor } from "./reasons.ts";

const REPO = resolve(import.meta.dirname, "..", "..");
const REPORT = join(REPO, ".local", "mutation", "mutation.json");
const SURVIVORS = join(REPO, ".local", "mutation", "survivors.txt");

/** The modules the issue names, as path prefixes of the mutated files. */
const MODULES: [name: string, match: (file: string) => boolean][] = [
  ["auth/ (passwords, users)", (f) => f.startsWith("app/src/auth/") && !f.endsWith("rate-limit.ts")],
  ["auth/rate-limit.ts (the rate limit)", (f) => f === "app/src/auth/rate-limit.ts"],
  ["sessions/", (f) => f.startsWith("app/src/sessions/")],
  ["db/lsn.ts", (f) => f === "app/src/db/lsn.ts"],
  ["db/replicas.ts", (f) => f === "app/src/db/replicas.ts"],
  ["lifecycle.ts", (f) => f === "app/src/lifecycle.ts"],
  ["load/capacity.ts", (f) => f === "load/capacity.ts"],
];

type Mutant = {
  id: string;
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
};
type Report = { files: Record<string, { source: string; mutants: Mutant[] }> };

const DETECTED = new Set(["Killed", "Timeout"]);
const COUNTED = new Set(["Killed", "Timeout", "Survived", "NoCoverage"]);

function report(): number {
  if (!existsSync(REPORT)) {
    console.error(`no mutation report at ${REPORT}: run make mutation first`);
    return 1;
  }
  const { files } = JSON.parse(readFileSync(REPORT, "utf8")) as Report;
  const rows: string[] = [];
  const survivors: string[] = [];
  let unexplained = 0;
  let allDetected = 0;
  let allCounted = 0;
  for (const [name, match] of MODULES) {
    let detected = 0;
    let counted = 0;
    for (const [file, { source, mutants }] of Object.entries(files)) {
      if (!match(file.replaceAll("\\", "/"))) continue;
      const lines = source.split("\n");
      for (const m of mutants) {
        if (!COUNTED.has(m.status)) continue;
        counted++;
        if (DETECTED.has(m.status)) detected++;
        else {
          const line = m.location.start.line;
          const code = (lines[line - 1] ?? "").trim();
          const replacement = (m.replacement ?? "").replace(/\s+/g, " ");
          const why = reasonFor({ file, mutator: m.mutatorName, replacement, code, status: m.status });
          if (why === undefined) unexplained++;
          survivors.push(
            `${file}:${line} ${m.status} ${m.mutatorName}${replacement ? ` -> ${replacement.slice(0, 80)}` : ""}\n` +
              `    ${code.slice(0, 100)}\n    why: ${why ?? "NO REASON RECORDED (a missing test, or a reason for tools/mutation/reasons.ts)"}`,
          );
        }
      }
    }
    allDetected += detected;
    allCounted += counted;
    const score = counted === 0 ? "n/a" : `${((100 * detected) / counted).toFixed(1)} %`;
    rows.push(`  ${name.padEnd(38)} ${score.padStart(8)}   ${detected}/${counted} mutants detected`);
  }
  writeFileSync(SURVIVORS, `${survivors.join("\n")}\n`);
  console.log("\nmutation score per module (killed or timed out, over all mutants that ran or had no test):");
  for (const row of rows) console.log(row);
  console.log(
    `  ${"all".padEnd(38)} ${`${((100 * allDetected) / Math.max(1, allCounted)).toFixed(1)} %`.padStart(8)}   ${allDetected}/${allCounted}`,
  );
  console.log(
    `\n${survivors.length} surviving or uncovered mutants, ${unexplained} with no recorded reason; listed in ${SURVIVORS}`,
  );
  console.log(`HTML report: ${join(REPO, ".local", "mutation", "index.html")}`);
  return 0;
}

async function run(): Promise<number> {
  const stack = await startTestStack("mutation", { instances: 1, appEnv: { LOG_LEVEL: "warn" } });
  try {
    const stryker = join(REPO, "node_modules", "@stryker-mutator", "core", "bin", "stryker.js");
    const code = await new Promise<number | null>((done) => {
      const child = spawn(process.execPath, [stryker, "run", "stryker.config.json"], {
        cwd: REPO,
        stdio: "inherit",
        env: {
          ...process.env,
          // The TAP runner starts `node` from PATH: the repo's Node 24 first.
          PATH: `${join(REPO, "node_modules", ".bin")}:${process.env.PATH}`,
          TEST_REDIS_URL: stack.redisUrl,
          TEST_DATABASE_URL: stack.databaseUrl,
        },
      });
      child.on("close", done);
    });
    if (code !== 0) {
      console.error(`stryker exited ${code}`);
      return 1;
    }
  } finally {
    await teardown(stack);
  }
  return report();
}

process.exitCode = process.argv.includes("--report") ? report() : await run();
