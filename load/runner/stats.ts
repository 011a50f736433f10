// Per-second and per-route bookkeeping for the local runner: throughput, latency
// percentiles, errors, dropped arrivals and each instance's share (x-instance).
//
// Open-loop runs record each request by the second it was scheduled in (`scheduledS`) and
// time it from that schedule, not from the send: a request that waited behind a stalled
// client or server carries the wait (no coordinated omission). A dropped arrival was offered
// and never served: it counts as a failure, with an infinite latency in every percentile.

export type Outcome = {
  route: string;
  ok: boolean;
  status: number;
  latencyMs: number;
  instance?: string;
  dbRoute?: string;
  error?: string;
  /** Open loop: seconds after the recorder's start at which this arrival was due. */
  scheduledS?: number;
  /** Open loop: how late the request left the client (send time minus scheduled time). */
  sendLagMs?: number;
};

/** Latency of a dropped arrival: never served. */
export const DROPPED_LATENCY = Number.POSITIVE_INFINITY;

export type Percentiles = { p50: number; p95: number; p99: number; max: number };

export type SecondStats = {
  /** Seconds since the start of the run: the second the requests were scheduled in (open loop) or completed in. */
  t: number;
  /** Requests per second the shape asked for at this second (arrival shapes) or VUs (VU shapes). */
  target: number;
  /** Open loop: arrivals due in this second (sent or dropped). */
  offered: number;
  requests: number;
  errors: number;
  /** Arrivals not sent because `maxVUs` requests were already in flight (k6: dropped_iterations). */
  dropped: number;
  /** API latency; each dropped arrival counts as an infinite latency. */
  latency: Percentiles;
  sendLagMaxMs: number;
  instances: Record<string, number>;
};

/** A second's raw numbers, for window checks (the knee, aborts): latencies include the drops. */
export type RawSecond = {
  t: number;
  offered: number;
  ok: number;
  errors: number;
  dropped: number;
  latencies: number[];
};

export type RouteStats = {
  route: string;
  requests: number;
  errors: number;
  latency: Percentiles;
  dbRoutes: Record<string, number>;
  statuses: Record<string, number>;
};

/** Nearest-rank percentile of a sorted array (0 when empty). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function percentiles(values: number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    p50: round(percentile(arr, 50)),
    p95: round(percentile(arr, 95)),
    p99: round(percentile(arr, 99)),
    max: round(arr.at(-1) ?? 0),
  };
}

type Bucket = {
  latencies: number[];
  offered: number;
  ok: number;
  sendLagMaxMs: number;
  count: number;
  errors: number;
  dropped: number;
  target: number;
  instances: Map<string, number>;
};
type RouteBucket = {
  latencies: number[];
  errors: number;
  dbRoutes: Map<string, number>;
  statuses: Map<string, number>;
};

const inc = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

export class Recorder {
  readonly startedAt = performance.now();
  readonly #seconds: Bucket[] = [];
  readonly #routes = new Map<string, RouteBucket>();
  readonly #all: number[] = [];
  readonly #auth: number[] = [];
  readonly #sendLags: number[] = [];
  /** Routes whose latency is kept apart (login, register: slow by design). */
  readonly authRoutes: ReadonlySet<string>;

  constructor(authRoutes: readonly string[] = []) {
    this.authRoutes = new Set(authRoutes);
  }
  readonly errorSamples: string[] = [];
  requests = 0;
  errors = 0;
  dropped = 0;

  elapsedS(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  /** The bucket of second `atS` (now when not given). */
  #bucket(atS = this.elapsedS()): Bucket {
    const i = Math.max(0, Math.floor(atS));
    while (this.#seconds.length <= i)
      this.#seconds.push({
        latencies: [],
        offered: 0,
        ok: 0,
        sendLagMaxMs: 0,
        count: 0,
        errors: 0,
        dropped: 0,
        target: 0,
        instances: new Map(),
      });
    return this.#seconds[i] as Bucket;
  }

  /** The shape's target for the current second (call from the scheduler). */
  setTarget(target: number): void {
    this.#bucket().target = target;
  }

  /** An open-loop arrival falls due at `scheduledS` (sent or not). */
  offer(scheduledS: number): void {
    this.#bucket(scheduledS).offered++;
  }

  /** An arrival due at `scheduledS` (now when not given) was not sent: a failure that never ends. */
  drop(scheduledS?: number): void {
    const b = this.#bucket(scheduledS);
    this.dropped++;
    b.dropped++;
    b.latencies.push(DROPPED_LATENCY);
    this.#all.push(DROPPED_LATENCY);
  }

  record(o: Outcome): void {
    const b = this.#bucket(o.scheduledS);
    this.requests++;
    b.count++;
    if (o.ok) b.ok++;
    if (o.sendLagMs !== undefined) {
      this.#sendLags.push(o.sendLagMs);
      b.sendLagMaxMs = Math.max(b.sendLagMaxMs, o.sendLagMs);
    }
    if (this.authRoutes.has(o.route)) this.#auth.push(o.latencyMs);
    else {
      b.latencies.push(o.latencyMs);
      this.#all.push(o.latencyMs);
    }
    if (o.instance) inc(b.instances, o.instance);
    let r = this.#routes.get(o.route);
    if (!r) {
      r = { latencies: [], errors: 0, dbRoutes: new Map(), statuses: new Map() };
      this.#routes.set(o.route, r);
    }
    r.latencies.push(o.latencyMs);
    inc(r.statuses, String(o.status));
    if (o.dbRoute) inc(r.dbRoutes, o.dbRoute);
    if (!o.ok) {
      this.errors++;
      b.errors++;
      r.errors++;
      if (this.errorSamples.length < 20)
        this.errorSamples.push(`${o.route} -> ${o.status}${o.error ? ` ${o.error}` : ""}`);
    }
  }

  /** Stats of the seconds in [fromS, toS) (for rolling threshold checks). */
  window(fromS: number, toS: number): { requests: number; errors: number; dropped: number; latency: Percentiles } {
    const lat: number[] = [];
    let errors = 0;
    let dropped = 0;
    let requests = 0;
    for (let i = Math.max(0, Math.floor(fromS)); i < Math.min(this.#seconds.length, Math.floor(toS)); i++) {
      const b = this.#seconds[i] as Bucket;
      requests += b.count;
      for (const x of b.latencies) lat.push(x);
      errors += b.errors;
      dropped += b.dropped;
    }
    return { requests, errors, dropped, latency: percentiles(lat) };
  }

  seconds(): SecondStats[] {
    return this.#seconds.map((b, t) => ({
      t,
      target: Math.round(b.target * 10) / 10,
      offered: b.offered,
      requests: b.count,
      errors: b.errors,
      dropped: b.dropped,
      latency: percentiles(b.latencies),
      sendLagMaxMs: Math.round(b.sendLagMaxMs * 100) / 100,
      instances: Object.fromEntries(b.instances),
    }));
  }

  /** The seconds before `toS` with their raw latencies (drops included), for window checks. */
  rawSeconds(toS = Number.POSITIVE_INFINITY): RawSecond[] {
    const out: RawSecond[] = [];
    for (let t = 0; t < Math.min(this.#seconds.length, toS); t++) {
      const b = this.#seconds[t] as Bucket;
      out.push({ t, offered: b.offered, ok: b.ok, errors: b.errors, dropped: b.dropped, latencies: b.latencies });
    }
    return out;
  }

  /** How late requests left the client after their scheduled time (open loop). */
  sendLag(): Percentiles {
    return percentiles(this.#sendLags);
  }

  routes(): RouteStats[] {
    return [...this.#routes].map(([route, r]) => ({
      route,
      requests: r.latencies.length,
      errors: r.errors,
      latency: percentiles(r.latencies),
      dbRoutes: Object.fromEntries(r.dbRoutes),
      statuses: Object.fromEntries(r.statuses),
    }));
  }

  /** The raw latencies behind overall() (drops as Infinity), to merge runs of several threads. */
  allLatencies(): number[] {
    return [...this.#all];
  }

  /** Latency of every request but the auth routes. */
  overall(): Percentiles {
    return percentiles(this.#all);
  }

  auth(): Percentiles {
    return percentiles(this.#auth);
  }
}
