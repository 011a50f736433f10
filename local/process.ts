// Process bookkeeping for the local topology: start long-lived daemons detached (their own
// session, output to a log file), identify them by pid + start time, and stop exactly them.
//
// A pid alone is not an identity (pids are reused), so every record keeps the kernel's start
// time of the process; a process is "ours" only when both match. Zombies count as exited.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";

export interface ProcessRecord {
  pid: number;
  /** Kernel start time (Linux: /proc/<pid>/stat field 22; elsewhere `ps -o lstart=`). */
  startTime: string;
  /** What was started, for humans: the executable and its arguments. */
  command: string;
}

export interface ExitInfo {
  /** Exit code when this process observed the exit of its own child; otherwise null. */
  code: number | null;
  signal: string | null;
  /** Milliseconds from the signal to the exit. */
  ms: number;
  /** True when the process had to be SIGKILLed after the timeout. */
  killed: boolean;
}

export interface SpawnDaemonOptions {
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user (needs root); PostgreSQL refuses to run as root. */
  uid?: number;
  gid?: number;
}

const hasProc = existsSync("/proc/self/stat");

/** Exit of children started by this process, so callers can learn their exit code. */
const childExits = new Map<number, Promise<{ code: number | null; signal: string | null }>>();

function procStat(pid: number): { state: string; startTime: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "?", startTime: fields[19] ?? "" };
  } catch {
    return null;
  }
}

function psInfo(pid: number): { state: string; startTime: string } | null {
  try {
    const out = execFileSync("ps", ["-o", "stat=", "-o", "lstart=", "-p", String(pid)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    if (out === "") return null;
    const [state = "?", ...rest] = out.split(/\s+/);
    return { state: state.charAt(0), startTime: rest.join(" ") };
  } catch {
    return null;
  }
}

function info(pid: number): { state: string; startTime: string } | null {
  return hasProc ? procStat(pid) : psInfo(pid);
}

/** The start time of a live process, or null when there is no such (non-zombie) process. */
export function processStartTime(pid: number): string | null {
  const i = info(pid);
  if (i === null || i.state === "Z" || i.state === "X") return null;
  return i.startTime;
}

/** True when the process in the record is still running (same pid and same start time). */
export function isRunning(record: ProcessRecord | null | undefined): boolean {
  if (!record) return false;
  const startTime = processStartTime(record.pid);
  return startTime !== null && startTime === record.startTime;
}

/** True when any process of the process group led by pid is alive (zombies excepted). */
export function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (!hasProc) return true;
  // kill(0) succeeds for zombies too: look for a live member.
  try {
    for (const entry of execFileSync("ps", ["-e", "-o", "pgid=,stat="], { encoding: "utf8" }).split("\n")) {
      const [g, s] = entry.trim().split(/\s+/);
      if (Number(g) === pgid && s && !s.startsWith("Z")) return true;
    }
  } catch {
    return true;
  }
  return false;
}

/** Start a daemon detached from this process (own session), stdout+stderr appended to logFile. */
export function spawnDaemon(options: SpawnDaemonOptions): { record: ProcessRecord; child: ChildProcess } {
  const fd = openSync(options.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ["ignore", fd, fd],
      uid: options.uid,
      gid: options.gid,
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${options.command}`);
  childExits.set(
    pid,
    new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.once("error", () => resolve({ code: null, signal: null }));
    }),
  );
  child.unref();
  // The start time is read right away: the pid cannot be reused before we reap it.
  const startTime = processStartTime(pid) ?? info(pid)?.startTime ?? "";
  return {
    record: { pid, startTime, command: [options.command, ...options.args].join(" ") },
    child,
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wait until the process has exited; false on timeout. */
export async function waitForExit(record: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const own = childExits.get(record.pid);
  if (own) {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      own.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return result;
  }
  while (isRunning(record)) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

/** The exit code of a child this process started, once it has exited. */
export async function childExit(pid: number): Promise<{ code: number | null; signal: string | null } | null> {
  const own = childExits.get(pid);
  return own ? await own : null;
}

/**
 * Send `signal` to the recorded process if it still is that process, wait up to timeoutMs for
 * it to exit, then SIGKILL its whole process group. Returns null if it was not running.
 */
export async function stopProcess(
  record: ProcessRecord | null | undefined,
  signal: NodeJS.Signals,
  timeoutMs: number,
): Promise<ExitInfo | null> {
  if (!record || !isRunning(record)) return null;
  const started = Date.now();
  try {
    process.kill(record.pid, signal);
  } catch {
    return null;
  }
  let killed = false;
  if (!(await waitForExit(record, timeoutMs))) {
    killed = true;
    try {
      process.kill(-record.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await waitForExit(record, 5000);
  }
  const own = childExits.has(record.pid) ? await childExit(record.pid) : null;
  childExits.delete(record.pid);
  return { code: own?.code ?? null, signal: own?.signal ?? null, ms: Date.now() - started, killed };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (bounded by timeoutMs), capturing its output. */
export function run(
  command: string,
  args: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    uid?: number;
    gid?: number;
    timeoutMs?: number;
    input?: string;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      stderr += `\n(killed after ${options.timeoutMs} ms)`;
    }, options.timeoutMs ?? 60_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 20): string {
  try {
    const text = readFileSync(file, "utf8").trimEnd().split("\n");
    return text.slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
