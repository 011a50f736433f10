// Ports for servers that take a port number and cannot report one they chose (Redis,
// PostgreSQL, nginx, PM2, an app instance that nginx must know in advance).
//
// Asking the OS (listen on 0, read the port, close) and handing the number to a child later
// is a race: until the child binds, the port is free for anyone, and the kernel itself hands
// ports of that range to outgoing connections and to every other listen(0). So the ports come
// from below the kernel's ephemeral range, where the kernel never picks one by itself, and
// each is leased to this process with a lock file: no other process using this module (a test
// file beside `make bench`, two test files at once) gets it while this process lives. The
// lease is held until this process exits or releases it, so a port stays ours across an
// instance restart too. A lease whose owner has died is taken over.

import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processStartTime } from "./process.ts";

const HOST = "127.0.0.1";
const LEASE_DIR = join(tmpdir(), "nodescale-port-leases");
/** Ports tried from; the top is lowered to stay below the ephemeral range where it starts lower. */
const RANGE = { low: 20_000, high: 29_999 };

const leased = new Set<number>();
let exitHookInstalled = false;

/** The kernel's ephemeral range (Linux); elsewhere the IANA one. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low as number, high as number];
  } catch {
    // not Linux
  }
  return [49_152, 65_535];
}

/** Ports this module may hand out: RANGE less the ephemeral range. */
export function leaseRange(): { low: number; high: number } {
  const [ephemeralLow, ephemeralHigh] = ephemeralRange();
  let { low, high } = RANGE;
  if (ephemeralLow <= high && ephemeralHigh >= low) {
    if (ephemeralLow > low) high = ephemeralLow - 1;
    else low = ephemeralHigh + 1;
  }
  if (high - low < 100) throw new Error(`no port range outside the ephemeral range ${ephemeralLow}-${ephemeralHigh}`);
  return { low, high };
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function ownerAlive(file: string): boolean {
  try {
    const [pid, startTime] = readFileSync(file, "utf8").trim().split(" ");
    const current = processStartTime(Number(pid));
    return current !== null && current === startTime;
  } catch {
    // Being written right now, or just removed: treat as taken this round.
    return true;
  }
}

/** Takes the lease file of one port; false when another live process holds it. */
function takeLease(port: number): boolean {
  const file = join(LEASE_DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o644);
      writeSync(fd, `${process.pid} ${processStartTime(process.pid) ?? ""}\n`);
      closeSync(fd);
      leased.add(port);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (ownerAlive(file)) return false;
      try {
        unlinkSync(file);
      } catch {
        // another process took it over first
      }
    }
  }
  return false;
}

function dropLease(port: number): void {
  if (!leased.delete(port)) return;
  try {
    unlinkSync(join(LEASE_DIR, String(port)));
  } catch {
    // already gone
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const port of [...leased]) dropLease(port);
  });
}

/** Leases this one port if no live process holds it and it can be bound now. */
export async function leasePort(port: number): Promise<boolean> {
  mkdirSync(LEASE_DIR, { recursive: true });
  installExitHook();
  if (leased.has(port) || !takeLease(port)) return false;
  if (await canBind(port)) return true;
  dropLease(port);
  return false;
}

/**
 * `count` consecutive ports (a PM2 cluster's per-worker metrics ports), each bindable now and
 * leased to this process until it exits or calls releasePorts.
 */
export async function freePortBlock(count: number): Promise<number[]> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`freePortBlock(${count}): expected a count >= 1`);
  const { low, high } = leaseRange();
  const span = high - low + 1 - (count - 1);
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const first = low + ((start + i) % span);
    const block: number[] = [];
    // A lease alone is not enough: a program that does not lease may listen there.
    while (block.length < count && (await leasePort(first + block.length))) block.push(first + block.length);
    if (block.length === count) return block;
    for (const port of block) dropLease(port);
  }
  throw new Error(`no ${count} free consecutive ports in ${low}-${high} on ${HOST}`);
}

/** `count` distinct free ports, leased to this process (not necessarily consecutive). */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(...(await freePortBlock(1)));
  return ports;
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}

/** Gives the leases back (the ports may then go to another process). */
export function releasePorts(ports: number[]): void {
  for (const port of ports) dropLease(port);
}
