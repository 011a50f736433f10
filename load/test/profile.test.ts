// The bench's profile reading (runner/profile.ts) on a hand-made .cpuprofile, and the inspector
// session (runner/profile-inspector.ts) on a real child process.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { freePort } from "../../local/net.ts";
import { profileSection } from "../report.ts";
import { type CpuProfile, flameGraph, fold, pruneFolded, summarize, topSelf, totals } from "../runner/profile.ts";
import { openInspector, profileWhile } from "../runner/profile-inspector.ts";

const frame = (functionName: string, url = "", lineNumber = -1) => ({ functionName, url, lineNumber, columnNumber: 0 });

/**
 * (root) -> main -> parse (a dependency), render -> parse again (same function, other caller);
 * (root) -> (garbage collector), (idle). Eight samples of 1 ms each: main 1, parse 3 + 1,
 * render 1, GC 1, idle 1.
 */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 5, 6] },
    { id: 2, callFrame: frame("main", "file:///app/src/main.js", 9), children: [3, 4] },
    { id: 3, callFrame: frame("parse", "file:///app/node_modules/lib/index.js", 19) },
    { id: 4, callFrame: frame("render", "file:///app/src/render.js", 4), children: [7] },
    { id: 5, callFrame: frame("(garbage collector)") },
    { id: 6, callFrame: frame("(idle)") },
    { id: 7, callFrame: frame("parse", "file:///app/node_modules/lib/index.js", 19) },
  ],
  startTime: 100_000,
  endTime: 108_000,
  samples: [2, 3, 3, 4, 7, 5, 6, 3],
  timeDeltas: [0, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
};

describe("a CPU profile, read", () => {
  it("gives each function its self time, callers summed, idle left out of the shares", () => {
    assert.deepEqual(totals(profile), { totalMs: 8, idleMs: 1 });
    const top = topSelf(profile, { root: "/app" });
    assert.deepEqual(top[0], { name: "parse", file: "lib/index.js", line: 20, selfMs: 4, share: 0.5714 });
    assert.deepEqual(
      top.slice(1).map((t) => [t.name, t.file, t.line, t.selfMs]),
      [
        ["main", "src/main.js", 10, 1],
        ["render", "src/render.js", 5, 1],
        ["(garbage collector)", "", 0, 1],
      ],
    );
    assert.equal(
      top.find((t) => t.name === "(idle)"),
      undefined,
    );
  });

  it("times a sample from it to the next one, and the last to the end", () => {
    const uneven: CpuProfile = {
      ...profile,
      timeDeltas: [0, 3000, 1000, 1000, 1000, 1000, 1000, 500],
      endTime: 109_000,
    };
    // main: until the next sample 3 ms later; the idle one 0.5 ms; the last (parse) 0.5 ms to endTime
    const top = topSelf(uneven, { root: "/app" });
    assert.equal(top.find((t) => t.name === "main")?.selfMs, 3);
    assert.equal(top.find((t) => t.name === "parse")?.selfMs, 1 + 1 + 1 + 0.5);
  });

  it("folds the nodes into stacks, root first, with their self time", () => {
    const folded = fold(profile, { root: "/app" });
    const byKey = Object.fromEntries(folded.map((s) => [s.frames.join(";"), s.ms]));
    assert.deepEqual(byKey, {
      "main src/main.js:10": 1,
      "main src/main.js:10;parse lib/index.js:20": 2 + 1,
      "main src/main.js:10;render src/render.js:5": 1,
      "main src/main.js:10;render src/render.js:5;parse lib/index.js:20": 1,
      "(garbage collector)": 1,
    });
  });

  it("keeps the total when narrow stacks are merged", () => {
    const folded = fold(profile, { root: "/app" });
    const pruned = pruneFolded(folded, 0.2);
    assert.equal(
      pruned.reduce((s, x) => s + x.ms, 0),
      7,
    );
    assert.deepEqual(pruned[0]?.frames, ["main src/main.js:10", "parse lib/index.js:20"]);
    assert.equal(pruned.length, 2);
  });
});

describe("the flame graph", () => {
  const svg = flameGraph(fold(profile, { root: "/app" }), { title: "item-read", width: 700, minPx: 0 });
  const frames = [
    ...svg.matchAll(/<title>([^<]*)<\/title><rect class="frame" x="([\d.]+)" y="(\d+)" width="([\d.]+)"/g),
  ].map((m) => ({ label: (m[1] as string).replace(/: .*$/, ""), x: Number(m[2]), y: Number(m[3]), w: Number(m[4]) }));

  it("draws one rect per frame, as wide as its time (7 ms over 700 px)", () => {
    assert.equal((svg.match(/<rect /g) ?? []).length, 5);
    assert.deepEqual(
      frames.map((f) => [f.label, f.w]).sort(),
      [
        ["(garbage collector)", 100],
        ["main src/main.js:10", 600],
        ["parse lib/index.js:20", 100],
        ["parse lib/index.js:20", 300],
        ["render src/render.js:5", 200],
      ].sort(),
    );
  });

  it("stacks callees on their caller, inside its span", () => {
    const main = frames.find((f) => f.label.startsWith("main")) as (typeof frames)[number];
    const render = frames.find((f) => f.label.startsWith("render")) as (typeof frames)[number];
    const deep = frames.find((f) => f.label.startsWith("parse") && f.w === 100) as (typeof frames)[number];
    assert.ok(render.y < main.y && deep.y < render.y, "each callee drawn above its caller");
    assert.ok(render.x >= main.x && render.x + render.w <= main.x + main.w + 1e-9);
    assert.ok(deep.x >= render.x && deep.x + deep.w <= render.x + render.w + 1e-9);
  });

  it("has no script and no event handler", () => {
    assert.doesNotMatch(svg, /<script/i);
    assert.doesNotMatch(svg, /\son[a-z]+=/i);
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  });

  it("leaves out frames narrower than minPx, their time in the parent's width", () => {
    const narrow = flameGraph(fold(profile, { root: "/app" }), { title: "x", width: 700, minPx: 150 });
    assert.equal((narrow.match(/<rect /g) ?? []).length, 3); // main, parse (300), render (200)
  });
});

describe("the report's profile section", () => {
  it("has each endpoint's table and flame graph, and nothing without profiles", () => {
    const p = summarize(profile, {
      name: "item-read",
      route: "GET /api/items/:id",
      file: "bench/results/x-profiles/item-read.cpuprofile",
      requests: 7,
      rps: 3.5,
      root: "/app",
    });
    assert.equal(p.busyMsPerRequest, 1);
    const html = profileSection({ profiles: { method: "m.", samplingIntervalUs: 500, dir: "d", endpoints: [p] } });
    assert.match(html, /<td>parse<\/td><td>lib\/index.js:20<\/td><td>4.0<\/td><td>57.1 %<\/td>/);
    assert.equal((html.match(/<svg /g) ?? []).length, 1);
    assert.equal((html.match(/<rect class="frame"/g) ?? []).length, 5);
    assert.doesNotMatch(html, /<script/i);
    assert.equal(profileSection({}), "");
  });
});

describe("an inspector session on a running process", () => {
  it("profiles only while asked, and sees the function that burns the CPU", async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        "-e",
        "function burnTheCpu(){let x=0;for(let i=0;i<2e5;i++)x+=Math.sqrt(i);return x}setInterval(()=>{const t=Date.now();while(Date.now()-t<20)burnTheCpu()},25);process.stdout.write('up\\n')",
      ],
      {
        env: { ...process.env, NODE_OPTIONS: `--inspect-port=127.0.0.1:${port}` },
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    try {
      await new Promise((ok) => child.stdout.once("data", ok));
      const inspector = await openInspector(child.pid as number, port);
      try {
        const { profile: p, result } = await profileWhile(inspector, async () => {
          await new Promise((ok) => setTimeout(ok, 600));
          return "ran";
        });
        assert.equal(result, "ran");
        const top = topSelf(p, { limit: 5 });
        assert.ok(
          top.some((t) => t.name === "burnTheCpu"),
          `burnTheCpu among ${JSON.stringify(top)}`,
        );
        assert.ok(fold(p).some((s) => s.frames.some((f) => f.startsWith("burnTheCpu"))));
      } finally {
        inspector.close();
      }
    } finally {
      child.kill("SIGKILL");
    }
  });
});
