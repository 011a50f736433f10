// CPU time of process trees from /proc (Linux): a server's own threads (worker threads,
// libuv's pool), plus its children (nginx workers, PostgreSQL backends), plus children that
// already exited and were reaped (their time lands in the parent's cutime/cstime).

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export type Stat = { pid: number; ppid: number; ticks: number };

/**
 * One /proc/<pid>/stat line: its pid, parent and CPU ticks (utime + stime + cutime + cstime).
 * The command sits in parentheses and may itself hold spaces and ")", so fields are counted
 * from the last ")".
 */
export function parseStat(pid: number, text: string): Stat {
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
  const n = (i: number) => Number(f[i] ?? 0);
  return { pid, ppid: n(1), ticks: n(11) + n(12) + n(13) + n(14) };
}

function readStat(pid: number): Stat | null {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

/** CPU seconds used so far by each root pid's process tree. */
export function treeCpuSeconds(roots: readonly number[]): number[] {
  const stats: Stat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) stats.push(s);
  }
  return treeTicks(stats, roots).map((t) => t / ticksPerSecond());
}

/** Ticks of each root's tree (itself and every descendant) among `stats`; 0 for pid 0 or 1. */
export function treeTicks(stats: readonly Stat[], roots: readonly number[]): number[] {
  const children = new Map<number, Stat[]>();
  for (const s of stats) {
    const list = children.get(s.ppid) ?? [];
    list.push(s);
    children.set(s.ppid, list);
  }
  const byPid = new Map(stats.map((s) => [s.pid, s]));
  return roots.map((root) => {
    if (root <= 1) return 0; // unknown pid: never the whole machine
    let ticks = 0;
    const queue = [root];
    const seen = new Set<number>();
    while (queue.length > 0) {
      const pid = queue.pop() as number;
      if (seen.has(pid)) continue;
      seen.add(pid);
      const s = byPid.get(pid);
      if (s) ticks += s.ticks;
      for (const c of children.get(pid) ?? []) queue.push(c.pid);
    }
    return ticks;
  });
}

/**
 * The children of `ppid` whose command line matches `pattern`: a PostgreSQL replica's
 * startup process ("postgres: startup recovering ..."), the one process that replays WAL.
 */
export function childrenMatching(ppid: number, pattern: RegExp): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s?.ppid !== ppid) continue;
    try {
      if (pattern.test(readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " "))) out.push(s.pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** A named set of process trees whose CPU can be sampled as deltas. */
export class CpuMeter {
  readonly #names: string[];
  readonly #pids: number[];
  #last: number[];

  constructor(components: Record<string, number>) {
    this.#names = Object.keys(components);
    this.#pids = Object.values(components);
    this.#last = treeCpuSeconds(this.#pids);
  }

  /** CPU seconds per component since the previous call (or construction); `runner` is this process. */
  delta(): Record<string, number> {
    const now = treeCpuSeconds(this.#pids);
    const out: Record<string, number> = {};
    this.#names.forEach((name, i) => {
      out[name] = Math.round(((now[i] as number) - (this.#last[i] as number)) * 1000) / 1000;
    });
    this.#last = now;
    return out;
  }
}
