// BENCH_PHASES: which parts of `make bench` run. The setup, the anchors (both passes) and the
// saturated endpoint phase always run: every other phase is priced from them (the operating
// point's rates, the knee's estimate). A shorter bench is for iterating on the app's hot path;
// capacity.ts sizes only from runs that ran everything.

/** The optional phases, in the order the bench runs them. */
export const OPTIONAL_PHASES = ["operating-point", "fixed-rate", "pm2", "shapes"] as const;
export type OptionalPhase = (typeof OPTIONAL_PHASES)[number];
export type Phase = "endpoints" | OptionalPhase;
export const ALL_PHASES: readonly Phase[] = ["endpoints", ...OPTIONAL_PHASES];

/**
 * The phases a BENCH_PHASES value asks for, in run order: unset, empty or `all` is every phase;
 * else a comma-separated list of ALL_PHASES, to which `endpoints` is always added, and
 * `operating-point` when `fixed-rate` is asked for without BENCH_FIXED_RPS (its rate is the
 * costliest endpoint's operating point). Throws on an unknown name.
 */
export function parsePhases(raw: string | undefined, fixedRpsSet = false): Phase[] {
  const text = (raw ?? "").trim();
  if (text === "" || text === "all") return [...ALL_PHASES];
  const asked = new Set<string>(
    text
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  );
  const unknown = [...asked].filter((s) => !(ALL_PHASES as readonly string[]).includes(s));
  if (unknown.length > 0)
    throw new Error(
      `BENCH_PHASES=${raw}: unknown phase ${unknown.join(", ")}; expected all or a list of ${ALL_PHASES.join(", ")}`,
    );
  asked.add("endpoints");
  if (asked.has("fixed-rate") && !fixedRpsSet) asked.add("operating-point");
  return ALL_PHASES.filter((p) => asked.has(p));
}

/** The phases of ALL_PHASES a run did not run (for the JSON and the report). */
export const phasesNotRun = (ran: readonly Phase[]): Phase[] => ALL_PHASES.filter((p) => !ran.includes(p));
