// A small line chart as standalone SVG (no dependencies): step lines on a left and a right
// axis, vertical markers and shaded bands. Used to draw replicas over time in the HPA test.

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  axis: "left" | "right";
  dash?: boolean;
}
export interface Chart {
  title: string;
  xLabel: string;
  leftLabel: string;
  rightLabel: string;
  series: Series[];
  markers: { x: number; label: string }[];
  bands: { x0: number; x1: number; label: string }[];
}

const W = 900;
const H = 460;
const M = { top: 50, right: 70, bottom: 80, left: 60 };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function lineChart(c: Chart): string {
  const all = c.series.flatMap((s) => s.points);
  const xMax = niceMax(Math.max(1, ...all.map((p) => p[0]), ...c.bands.map((b) => b.x1)));
  const maxOf = (axis: "left" | "right") =>
    niceMax(Math.max(1, ...c.series.filter((s) => s.axis === axis).flatMap((s) => s.points.map((p) => p[1]))) * 1.1);
  const yL = maxOf("left");
  const yR = maxOf("right");
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number) => M.left + (v / xMax) * pw;
  const y = (v: number, axis: "left" | "right") => M.top + ph - (v / (axis === "left" ? yL : yR)) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`,
  );
  for (const b of c.bands) {
    out.push(
      `<rect x="${x(b.x0)}" y="${M.top}" width="${Math.max(0, x(Math.min(b.x1, xMax)) - x(b.x0))}" height="${ph}" fill="#f2e6c9" opacity="0.6"/>`,
      `<text x="${x(b.x0) + 4}" y="${M.top + 14}" fill="#7a5c00">${esc(b.label)}</text>`,
    );
  }
  // grid and axes
  for (let i = 0; i <= 5; i++) {
    const gy = M.top + (ph * i) / 5;
    out.push(`<line x1="${M.left}" y1="${gy}" x2="${M.left + pw}" y2="${gy}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${gy + 4}" text-anchor="end">${+(yL * (1 - i / 5)).toFixed(2)}</text>`);
    out.push(`<text x="${M.left + pw + 6}" y="${gy + 4}">${+(yR * (1 - i / 5)).toFixed(2)}</text>`);
  }
  for (let i = 0; i <= 10; i++) {
    const gx = M.left + (pw * i) / 10;
    out.push(`<line x1="${gx}" y1="${M.top + ph}" x2="${gx}" y2="${M.top + ph + 4}" stroke="#333"/>`);
    out.push(`<text x="${gx}" y="${M.top + ph + 18}" text-anchor="middle">${Math.round((xMax * i) / 10)}</text>`);
  }
  out.push(
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${M.left + pw / 2}" y="${M.top + ph + 36}" text-anchor="middle">${esc(c.xLabel)}</text>`,
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.leftLabel)}</text>`,
    `<text transform="translate(${W - 14} ${M.top + ph / 2}) rotate(90)" text-anchor="middle">${esc(c.rightLabel)}</text>`,
  );
  // labels stacked upwards from the bottom, so markers close together stay readable
  c.markers.forEach((m, i) => {
    out.push(
      `<line x1="${x(m.x)}" y1="${M.top}" x2="${x(m.x)}" y2="${M.top + ph}" stroke="#888" stroke-dasharray="4 3"/>`,
      `<text x="${x(m.x) + 4}" y="${M.top + ph - 6 - 16 * i}" fill="#555">${esc(m.label)}</text>`,
    );
  });
  // step lines: a value holds until the next sample
  for (const s of c.series) {
    if (s.points.length === 0) continue;
    let d = "";
    s.points.forEach(([px, py], i) => {
      const X = x(px).toFixed(1);
      const Y = y(py, s.axis).toFixed(1);
      if (i === 0) d += `M${X} ${Y}`;
      else d += ` H${X} V${Y}`;
    });
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ""}/>`,
    );
  }
  // legend
  c.series.forEach((s, i) => {
    const lx = M.left + 10 + i * 210;
    const ly = H - 18;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="6 4"' : ""}/>`,
      `<text x="${lx + 30}" y="${ly}">${esc(s.name)} (${s.axis})</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
