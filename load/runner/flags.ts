// What a phase's CPU says about its own numbers. A saturation measurement (closed loop,
// breakpoint) is the server's limit only if the server was busy (at least 0.9 of a core:
// one event loop) and the load generator was not (a single-threaded client at 0.9 of a core
// is the limit itself). An open-loop phase is to be believed only while the client kept its
// schedule (send lag).

/** Below this much of a core, a server under test was not the limit; at it, the client was. */
export const BUSY_CORE = 0.9;
/** Send lag p99 above which the client did not keep the schedule it was asked to. */
export const MAX_SEND_LAG_MS = 10;

export type PhaseCpu = {
  /** Cores the busiest server under test used (CPU seconds over wall seconds). */
  serverCores: number;
  /** Cores the load generator (this process) used. */
  clientCores: number;
  /** The phase tries to saturate the server (closed loop, breakpoint). */
  saturating: boolean;
  /** Open loop: p99 of the send lag, in ms. */
  sendLagP99Ms?: number;
  /** Open loop: arrivals dropped (the rate asked for was not held). */
  dropped?: number;
};

export function phaseFlags(p: PhaseCpu): string[] {
  const flags: string[] = [];
  if (p.clientCores >= BUSY_CORE)
    flags.push(`client-limited: the load generator used ${p.clientCores.toFixed(2)} of a core`);
  if (p.saturating && p.serverCores < BUSY_CORE)
    flags.push(`server not saturated: ${p.serverCores.toFixed(2)} of a core (< ${BUSY_CORE})`);
  if (p.sendLagP99Ms !== undefined && p.sendLagP99Ms > MAX_SEND_LAG_MS)
    flags.push(`client behind schedule: send lag p99 ${p.sendLagP99Ms.toFixed(0)} ms (> ${MAX_SEND_LAG_MS} ms)`);
  if (p.dropped) flags.push(`${p.dropped} arrivals dropped: the offered rate was not held`);
  return flags;
}

/** CPU seconds over wall seconds, 2 decimals. */
export const coresOf = (cpuS: number, wallS: number) => (wallS > 0 ? Math.round((cpuS / wallS) * 100) / 100 : 0);
