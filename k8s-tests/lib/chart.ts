// A self-contained SVG line chart of the HPA's replicas over time (no library, opens in any
// browser): current and desired replicas as steps, the burst shaded, min/max as dashed lines.

export interface Sample {
  t: number; // seconds since the start
  current: number;
  desired: number;
  cpu: number | undefined; // average utilization, % of the request
}

export function replicasSvg(options: {
  title: string;
  samples: Sample[];
  burst: { from: number; to: number };
  minReplicas: number;
  maxReplicas: number;
}): string {
  const { samples, burst, minReplicas, maxReplicas } = options;
  const W = 900;
  const H = 420;
  const m = { left: 60, right: 150, top: 50, bottom: 50 };
  const tMax = Math.max(10, ...samples.map((s) => s.t));
  const yMax = Math.max(maxReplicas, ...samples.map((s) => Math.max(s.current, s.desired))) + 1;
  const x = (t: number) => m.left + (t / tMax) * (W - m.left - m.right);
  const y = (v: number) => H - m.bottom - (v / yMax) * (H - m.top - m.bottom);
  const steps = (key: "current" | "desired") =>
    samples
      .map((s, i) => {
        const prev = samples[i - 1];
        return i === 0
          ? `M${x(s.t)},${y(s[key])}`
          : `L${x(s.t)},${y(prev ? prev[key] : s[key])} L${x(s.t)},${y(s[key])}`;
      })
      .join(" ");
  const yTicks = Array.from({ length: yMax + 1 }, (_, v) => v);
  const tStep = tMax > 300 ? 60 : 30;
  const tTicks = Array.from({ length: Math.floor(tMax / tStep) + 1 }, (_, i) => i * tStep);
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
  <rect width="${W}" height="${H}" fill="#fff"/>
  <text x="${m.left}" y="28" font-size="16" font-weight="bold">${esc(options.title)}</text>
  <rect x="${x(burst.from)}" y="${m.top}" width="${Math.max(1, x(burst.to) - x(burst.from))}" height="${H - m.top - m.bottom}" fill="#fde2c8"/>
  <text x="${x(burst.from) + 4}" y="${m.top + 14}" fill="#a0522d">burst</text>
  ${yTicks.map((v) => `<line x1="${m.left}" x2="${W - m.right}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${m.left - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`).join("\n  ")}
  ${tTicks.map((t) => `<text x="${x(t)}" y="${H - m.bottom + 18}" text-anchor="middle">${t}s</text>`).join("\n  ")}
  <line x1="${m.left}" x2="${W - m.right}" y1="${y(minReplicas)}" y2="${y(minReplicas)}" stroke="#888" stroke-dasharray="4 4"/>
  <line x1="${m.left}" x2="${W - m.right}" y1="${y(maxReplicas)}" y2="${y(maxReplicas)}" stroke="#888" stroke-dasharray="4 4"/>
  <line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${H - m.bottom}" stroke="#333"/>
  <line x1="${m.left}" x2="${W - m.right}" y1="${H - m.bottom}" y2="${H - m.bottom}" stroke="#333"/>
  <text x="16" y="${(H - m.bottom + m.top) / 2}" transform="rotate(-90 16 ${(H - m.bottom + m.top) / 2})" text-anchor="middle">replicas</text>
  <text x="${(W - m.right + m.left) / 2}" y="${H - 12}" text-anchor="middle">time since the start of the test</text>
  <path d="${steps("desired")}" fill="none" stroke="#e07b00" stroke-width="2" stroke-dasharray="6 3"/>
  <path d="${steps("current")}" fill="none" stroke="#1f5fbf" stroke-width="3"/>
  <g transform="translate(${W - m.right + 16},${m.top + 10})">
    <line x1="0" x2="24" y1="0" y2="0" stroke="#1f5fbf" stroke-width="3"/><text x="30" y="4">current</text>
    <line x1="0" x2="24" y1="20" y2="20" stroke="#e07b00" stroke-width="2" stroke-dasharray="6 3"/><text x="30" y="24">desired</text>
    <line x1="0" x2="24" y1="40" y2="40" stroke="#888" stroke-dasharray="4 4"/><text x="30" y="44">min / max</text>
  </g>
</svg>
`;
}
