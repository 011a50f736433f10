// `make test-the-tests`: plants each bug of bugs.ts, one at a time, in a scratch copy of the
// committed tree (git archive HEAD into a temporary folder; the working tree is never
// touched), runs the tests named for it, and prints bug -> test -> caught/missed. Every test
// first runs once on the unplanted copy: a test that fails there catches nothing, and says so.
//
//   node tools/test-the-tests/run.ts                 every bug
//   BUGS=no-drain,lsn-compared-as-text node ...      only these
//   KEEP_SCRATCH=1 node ...                           keep the scratch copy (path printed)
//
// Exit code: 0 when every planted bug was caught, 1 otherwise.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { type Bug, bugs } from "./bugs.ts";

const REPO = resolve(import.meta.dirname, "..", "..");

function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "nodescale-planted-"));
  const archive = spawnSync("bash", ["-c", `git -C "${REPO}" archive --format=tar HEAD | tar -x -C "${dir}"`], {
    stdio: "inherit",
  });
  if (archive.status !== 0) throw new Error("git archive HEAD into the scratch folder failed");
  // Installed dependencies and built tools are shared, read-only, with the working tree.
  for (const path of ["node_modules", "app/node_modules", "tools/bin"]) {
    if (existsSync(join(REPO, path))) symlinkSync(join(REPO, path), join(dir, path));
  }
  return dir;
}

type Outcome = { passed: boolean; tail: string; seconds: number };

function runTest(dir: string, command: string): Promise<Outcome> {
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn("bash", ["-c", command], {
      cwd: dir,
      env: {
        ...process.env,
        PATH: `${join(dir, "node_modules", ".bin")}:${join(dir, "tools", "bin")}:${process.env.PATH}`,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d;
    });
    child.on("close", (code) =>
      done({
        passed: code === 0,
        tail: output.trimEnd().split("\n").slice(-15).join("\n"),
        seconds: Math.round((Date.now() - started) / 1000),
      }),
    );
  });
}

function plant(dir: string, bug: Bug): () => void {
  const file = join(dir, bug.file);
  const original = readFileSync(file, "utf8");
  const count = original.split(bug.find).length - 1;
  if (count !== 1) throw new Error(`${bug.id}: expected the text to replace once in ${bug.file}, found ${count}`);
  writeFileSync(file, original.replace(bug.find, bug.replace));
  return () => writeFileSync(file, original);
}

const short = (command: string) => command.replace(/^node --test .*?(\S+\.test\.ts)$/, "$1").replace(/^bash /, "");

async function main(): Promise<number> {
  const wanted = process.env.BUGS?.split(",").map((s) => s.trim());
  const selected = wanted ? bugs.filter((b) => wanted.includes(b.id)) : bugs;
  const unknown = (wanted ?? []).filter((id) => !bugs.some((b) => b.id === id));
  if (unknown.length > 0) {
    console.error(`unknown bug id(s): ${unknown.join(", ")}; known: ${bugs.map((b) => b.id).join(", ")}`);
    return 2;
  }
  const dir = scratchCopy();
  console.log(
    `scratch copy of HEAD (${spawnSync("git", ["-C", REPO, "rev-parse", "--short", "HEAD"]).stdout.toString().trim()}) in ${dir}`,
  );
  try {
    const baseline = new Map<string, Outcome>();
    for (const command of new Set(selected.flatMap((b) => b.tests))) {
      process.stdout.write(`baseline  ${short(command)} ... `);
      const outcome = await runTest(dir, command);
      baseline.set(command, outcome);
      console.log(`${outcome.passed ? "passes" : "FAILS"} (${outcome.seconds} s)`);
      if (!outcome.passed) console.log(outcome.tail.replace(/^/gm, "    "));
    }

    const rows: [string, string, string][] = [];
    for (const bug of selected) {
      let restore: () => void;
      try {
        restore = plant(dir, bug);
      } catch (error) {
        rows.push([bug.id, "-", `NOT PLANTED: ${(error as Error).message}`]);
        continue;
      }
      try {
        for (const command of bug.tests) {
          if (!baseline.get(command)?.passed) {
            rows.push([bug.id, short(command), "missed (the test fails without the bug too)"]);
            continue;
          }
          process.stdout.write(`${bug.id}  ${short(command)} ... `);
          const outcome = await runTest(dir, command);
          const verdict = outcome.passed ? "missed" : "caught";
          console.log(`${verdict} (${outcome.seconds} s)`);
          rows.push([bug.id, short(command), verdict]);
        }
      } finally {
        restore();
      }
    }

    const width = (i: 0 | 1) => Math.max(...rows.map((r) => r[i].length), 10);
    console.log(`\n${"bug".padEnd(width(0))}  ${"test".padEnd(width(1))}  result`);
    for (const [id, test, result] of rows) console.log(`${id.padEnd(width(0))}  ${test.padEnd(width(1))}  ${result}`);
    const byBug = new Map<string, boolean>();
    for (const [id, , result] of rows) byBug.set(id, (byBug.get(id) ?? false) || result === "caught");
    const missed = [...byBug].filter(([, caught]) => !caught).map(([id]) => id);
    console.log(
      `\n${byBug.size - missed.length} of ${byBug.size} planted bugs caught by at least one test` +
        (missed.length > 0 ? `; missed: ${missed.join(", ")}` : ""),
    );
    return missed.length === 0 ? 0 : 1;
  } finally {
    if (process.env.KEEP_SCRATCH === "1") console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (dirname(process.argv[1] ?? "") === import.meta.dirname) process.exitCode = await main();
