// /proc/<pid>/stat parsing and process-tree sums on fixed inputs (fields from proc(5)).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { childrenMatching, parseStat, type Stat, treeTicks } from "../runner/procstat.ts";

describe("parseStat", () => {
  it("takes ppid and utime + stime + cutime + cstime (fields 4, 14-17 of proc(5))", () => {
    const line = "1234 (node) S 1000 1234 1000 0 -1 4194304 5000 0 0 0 150 30 7 3 20 0 11 0 12345 1000000 5000\n";
    // 150 + 30 + 7 + 3
    assert.deepEqual(parseStat(1234, line), { pid: 1234, ppid: 1000, ticks: 190 });
  });

  it("counts from the last ')' when the command holds spaces and parentheses", () => {
    const line = "42 (postgres: app (x) idle) R 7 42 42 0 -1 0 0 0 0 0 11 2 0 0 20 0 1 0 99 0 0";
    assert.deepEqual(parseStat(42, line), { pid: 42, ppid: 7, ticks: 13 });
  });

  it("reads this process's own line: its parent is process.ppid", () => {
    const s = parseStat(process.pid, readFileSync("/proc/self/stat", "utf8"));
    assert.equal(s.ppid, process.ppid);
    assert.ok(Number.isInteger(s.ticks) && s.ticks >= 0);
  });
});

describe("treeTicks", () => {
  // 10 -> 11 -> 13, 10 -> 12; 20 alone; 1 is init
  const stats: Stat[] = [
    { pid: 1, ppid: 0, ticks: 1000 },
    { pid: 10, ppid: 1, ticks: 5 },
    { pid: 11, ppid: 10, ticks: 7 },
    { pid: 12, ppid: 10, ticks: 11 },
    { pid: 13, ppid: 11, ticks: 13 },
    { pid: 20, ppid: 1, ticks: 17 },
  ];

  it("sums a root with all its descendants, and nothing else", () => {
    assert.deepEqual(treeTicks(stats, [10, 11, 12, 20]), [5 + 7 + 11 + 13, 7 + 13, 11, 17]);
  });

  it("gives 0 for pid 0, init and a pid that is gone, never the whole machine", () => {
    assert.deepEqual(treeTicks(stats, [0, 1, 99]), [0, 0, 0]);
  });
});

describe("childrenMatching", () => {
  it("finds a child by its command line, as the bench finds a replica's startup process", async () => {
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)", "replay-marker"], { stdio: "ignore" });
    try {
      // until the child has exec'd (its command line is node's until then), at most 10 s
      let found: number[] = [];
      for (let i = 0; i < 200 && found.length === 0; i++) {
        found = childrenMatching(process.pid, /replay-marker/);
        if (found.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(found, [child.pid]);
      assert.deepEqual(childrenMatching(process.pid, /no-such-marker/), []);
      assert.deepEqual(childrenMatching(child.pid as number, /replay-marker/), [], "not its own child");
    } finally {
      child.kill();
    }
  });
});
