// What a V8 .cpuprofile says, for the bench report: self time per function, the stacks folded
// to widths, and a flame graph drawn as plain SVG (no scripts; a <title> per frame is the
// tooltip). Written here rather than taken from a flame-graph package: the folding is a few
// lines, and the report must stay one self-contained file.

/** The parts of a V8 CPU profile (Profiler.stop's `profile`, or a --cpu-prof file) used here. */
export type CpuProfile = {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number; scriptId?: string };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  /** Node id on the stack's top at each sample. */
  samples: number[];
  /** Microseconds since the previous sample (the first: since startTime). */
  timeDeltas: number[];
};

export type SelfTime = { name: string; file: string; line: number; selfMs: number; share: number };

/** A stack, root first (the "(root)" node left out), and the time spent with it on top. */
export type FoldedStack = { frames: string[]; ms: number };

/** V8's pseudo-frames: not code, but what the thread did outside JavaScript. */
const IDLE = "(idle)";

/** Where a script lives, shortened: the part after the last node_modules/, or after `root`. */
export function shortFile(url: string, root = ""): string {
  let f = url.replace(/^file:\/\//, "");
  const nm = f.lastIndexOf("node_modules/");
  if (nm >= 0) f = f.slice(nm + "node_modules/".length);
  else if (root && f.startsWith(root)) f = f.slice(root.length).replace(/^\//, "");
  return f;
}

const frameName = (fn: string) => fn || "(anonymous)";

/** One frame's label: the function and where it is (line 1-based), or the pseudo-frame alone. */
export function frameLabel(frame: CpuProfile["nodes"][number]["callFrame"], root = ""): string {
  if (!frame.url) return frameName(frame.functionName);
  return `${frameName(frame.functionName)} ${shortFile(frame.url, root)}:${frame.lineNumber + 1}`;
}

/**
 * Time of each sample, in µs: as DevTools counts it, from this sample to the next (the last
 * to endTime). Negative deltas (clock adjustments) count as zero.
 */
export function sampleDurations(p: CpuProfile): number[] {
  const at: number[] = [];
  let t = p.startTime;
  for (const d of p.timeDeltas) {
    t += d;
    at.push(t);
  }
  return at.map((x, i) => Math.max(0, (i + 1 < at.length ? (at[i + 1] as number) : p.endTime) - x));
}

/** Self time per profile node, in µs. */
export function selfByNode(p: CpuProfile): Map<number, number> {
  const durations = sampleDurations(p);
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (durations[i] ?? 0));
  });
  return self;
}

/** Total sampled time and the part of it the thread was idle, in ms. */
export function totals(p: CpuProfile): { totalMs: number; idleMs: number } {
  const self = selfByNode(p);
  let total = 0;
  let idle = 0;
  for (const n of p.nodes) {
    const us = self.get(n.id) ?? 0;
    total += us;
    if (n.callFrame.functionName === IDLE) idle += us;
  }
  return { totalMs: total / 1000, idleMs: idle / 1000 };
}

/**
 * Self time per function (the same function under different callers summed), costliest first;
 * `share` is of the busy time (idle left out: it is no function's cost).
 */
export function topSelf(p: CpuProfile, o: { root?: string; limit?: number } = {}): SelfTime[] {
  const self = selfByNode(p);
  const byFn = new Map<string, SelfTime>();
  let busy = 0;
  for (const n of p.nodes) {
    const us = self.get(n.id) ?? 0;
    const f = n.callFrame;
    if (us === 0 || f.functionName === IDLE) continue;
    busy += us;
    const key = `${f.functionName}\0${f.url}\0${f.lineNumber}\0${f.columnNumber ?? 0}`;
    const e = byFn.get(key) ?? {
      name: frameName(f.functionName),
      file: f.url ? shortFile(f.url, o.root) : "",
      line: f.url ? f.lineNumber + 1 : 0,
      selfMs: 0,
      share: 0,
    };
    e.selfMs += us / 1000;
    byFn.set(key, e);
  }
  const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
  return [...byFn.values()]
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, o.limit ?? 20)
    .map((e) => ({ ...e, selfMs: round(e.selfMs, 2), share: busy > 0 ? round((e.selfMs * 1000) / busy, 4) : 0 }));
}

/**
 * The profile's stacks, folded: each node's path from the root (the "(root)" node left out),
 * labelled by frame, with the node's self time; equal paths summed. Idle is left out.
 */
export function fold(p: CpuProfile, o: { root?: string } = {}): FoldedStack[] {
  const self = selfByNode(p);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, FoldedStack>();
  for (const n of p.nodes) {
    const us = self.get(n.id) ?? 0;
    if (us === 0 || n.callFrame.functionName === IDLE) continue;
    const frames: string[] = [];
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id);
      if (!node || (node.callFrame.functionName === "(root)" && !parent.has(id))) break;
      frames.push(frameLabel(node.callFrame, o.root));
    }
    frames.reverse();
    const key = frames.join("\n");
    const e = out.get(key) ?? { frames, ms: 0 };
    e.ms += us / 1000;
    out.set(key, e);
  }
  return [...out.values()].sort((a, b) => b.ms - a.ms);
}

/**
 * Stacks narrower than `minShare` of the total merged into one, so that a bench JSON keeps a
 * flame graph's worth of stacks rather than every one; the widths still add up to the total.
 */
export function pruneFolded(stacks: FoldedStack[], minShare = 0.0005): FoldedStack[] {
  const total = stacks.reduce((s, x) => s + x.ms, 0);
  const kept = stacks.filter((x) => x.ms >= minShare * total);
  const rest = total - kept.reduce((s, x) => s + x.ms, 0);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const out = kept.map((x) => ({ frames: x.frames, ms: round(x.ms) }));
  if (rest > 0) out.push({ frames: [`(stacks under ${minShare * 100} % each)`], ms: round(rest) });
  return out;
}

type Frame = { label: string; ms: number; children: Map<string, Frame> };

/** The folded stacks as a tree of frames, each as wide as the time spent in it and below it. */
export function frameTree(stacks: FoldedStack[]): Frame {
  const root: Frame = { label: "all", ms: 0, children: new Map() };
  for (const s of stacks) {
    root.ms += s.ms;
    let at = root;
    for (const label of s.frames) {
      let next = at.children.get(label);
      if (!next) {
        next = { label, ms: 0, children: new Map() };
        at.children.set(label, next);
      }
      next.ms += s.ms;
      at = next;
    }
  }
  return root;
}

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);

/** Frame colour by where the code lives: the app, a dependency, Node itself, or V8/native. */
function colorOf(label: string): string {
  if (label.startsWith("(")) return "#9ca3af"; // (program), (garbage collector)
  if (label.includes(" node:")) return "#d4d4d8";
  if (/ src\/|app\//.test(label)) return "#60a5fa";
  if (/ [^ ]+\.(c|m)?js:\d+$/.test(label)) return "#fb923c";
  return "#fca5a5";
}

/**
 * A flame graph: the root at the bottom, each frame a rect as wide as its share of the total,
 * its callees on top of it. Frames narrower than `minPx` are not drawn (their time stays in
 * their parent's width). Labels where they fit; the full label and time in each frame's <title>.
 */
export function flameGraph(
  stacks: FoldedStack[],
  o: { title: string; width?: number; rowH?: number; minPx?: number },
): string {
  const W = o.width ?? 1200;
  const rowH = o.rowH ?? 16;
  const minPx = o.minPx ?? 0.5;
  const top = 24;
  const root = frameTree(stacks);
  const scale = root.ms > 0 ? W / root.ms : 0;
  const rects: { x: number; depth: number; w: number; f: Frame }[] = [];
  let depthMax = 0;
  const place = (f: Frame, x: number, depth: number) => {
    const w = f.ms * scale;
    if (w < minPx) return;
    rects.push({ x, depth, w, f });
    depthMax = Math.max(depthMax, depth);
    let cx = x;
    for (const c of [...f.children.values()].sort((a, b) => (a.label < b.label ? -1 : 1))) {
      place(c, cx, depth + 1);
      cx += c.ms * scale;
    }
  };
  let x0 = 0;
  for (const c of [...root.children.values()].sort((a, b) => (a.label < b.label ? -1 : 1))) {
    place(c, x0, 0);
    x0 += c.ms * scale;
  }
  const H = top + (depthMax + 1) * rowH + 4;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}" font-family="ui-monospace,monospace">`,
    `<text x="4" y="16" font-size="13" font-weight="600" fill="#111">${esc(o.title)} (${root.ms.toFixed(0)} ms sampled)</text>`,
  ];
  for (const r of rects) {
    const y = H - 4 - (r.depth + 1) * rowH;
    const share = root.ms > 0 ? (100 * r.f.ms) / root.ms : 0;
    const tip = `${r.f.label}: ${r.f.ms.toFixed(1)} ms, ${share.toFixed(1)} %`;
    parts.push(
      `<g><title>${esc(tip)}</title><rect class="frame" x="${r.x.toFixed(2)}" y="${y}" width="${r.w.toFixed(2)}" height="${rowH - 1}" fill="${colorOf(r.f.label)}" stroke="#fff" stroke-width="0.5"/>`,
    );
    const chars = Math.floor((r.w - 6) / 6.2);
    if (chars >= 4) {
      const text = r.f.label.length > chars ? `${r.f.label.slice(0, chars - 1)}…` : r.f.label;
      parts.push(
        `<text x="${(r.x + 3).toFixed(2)}" y="${y + rowH - 4}" font-size="10" fill="#111">${esc(text)}</text>`,
      );
    }
    parts.push("</g>");
  }
  parts.push("</svg>");
  return parts.join("");
}

/** What the bench keeps of one endpoint's profile: the table, the stacks for the flame graph. */
export type EndpointProfile = {
  name: string;
  route: string;
  /** The .cpuprofile written (open it in Chrome DevTools or speedscope for the full detail). */
  file: string;
  requests: number;
  rps: number;
  /** Sampled time, the part of it idle, and the busy part per request (main thread only). */
  totalMs: number;
  idleMs: number;
  busyMsPerRequest: number;
  top: SelfTime[];
  folded: FoldedStack[];
};

export function summarize(
  p: CpuProfile,
  o: { name: string; route: string; file: string; requests: number; rps: number; root?: string; limit?: number },
): EndpointProfile {
  const { totalMs, idleMs } = totals(p);
  const r = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    name: o.name,
    route: o.route,
    file: o.file,
    requests: o.requests,
    rps: r(o.rps, 1),
    totalMs: r(totalMs, 1),
    idleMs: r(idleMs, 1),
    busyMsPerRequest: r((totalMs - idleMs) / Math.max(1, o.requests), 4),
    top: topSelf(p, { root: o.root, limit: o.limit ?? 15 }),
    folded: pruneFolded(fold(p, { root: o.root })),
  };
}
