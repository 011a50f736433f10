// How much event-loop time one POST /api/work of the largest accepted body costs the app.
// The app runs in this process (Redis and PostgreSQL are not needed for /api/work); the
// requests come one at a time from a child process, so only the server's work counts here.
// Reports busy event-loop ms per request (event-loop utilization x wall time / requests) and,
// for scale, what one JSON.parse of the same body costs on this machine.
//
//   node app/scripts/work-event-loop.ts [requests=40]

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startApp } from "../test/support.ts";

const requests = Number(process.argv[2] ?? 40);
// The largest body accepted: 512 Ki chars of text, escaped as JSON, close to the 3 MB bound.
const text = "wo\u0001rd ".repeat(Math.ceil((512 * 1024) / 6)).slice(0, 512 * 1024);
const body = JSON.stringify({ text, iterations: 1 });
const dir = mkdtempSync(join(tmpdir(), "work-el-"));
const bodyFile = join(dir, "body.json");
writeFileSync(bodyFile, body);

const parseStart = performance.now();
for (let i = 0; i < 10; i++) JSON.parse(body);
const parseMs = (performance.now() - parseStart) / 10;

const app = await startApp({ WORK_RATE_LIMIT_PER_MINUTE: "1000000", WORKER_QUEUE_MAX: "1000" });
const client = `
import { readFileSync } from "node:fs";
const body = readFileSync(process.env.BODY_FILE);
for (let i = 0; i < ${requests}; i++) {
  const r = await fetch(process.env.URL, { method: "POST", headers: { "content-type": "application/json" }, body });
  if (r.status !== 200) throw new Error(String(r.status) + " " + (await r.text()));
  await r.arrayBuffer();
}`;
const before = performance.eventLoopUtilization();
const exit = await new Promise<number | null>((resolve) => {
  const child = spawn(process.execPath, ["--input-type=module", "-e", client], {
    env: { ...process.env, URL: `${app.url}/api/work`, BODY_FILE: bodyFile },
    stdio: "inherit",
  });
  child.on("exit", resolve);
});
const elu = performance.eventLoopUtilization(before);
await app.close();
rmSync(dir, { recursive: true, force: true });
if (exit !== 0) throw new Error(`client exited ${exit}`);
console.log(
  `body ${(body.length / 1024 / 1024).toFixed(2)} MB, ${requests} requests: event loop busy ` +
    `${(elu.active / requests).toFixed(2)} ms per request (utilization ${(elu.utilization * 100).toFixed(1)}% ` +
    `over ${(elu.idle + elu.active).toFixed(0)} ms); one JSON.parse of the body: ${parseMs.toFixed(2)} ms`,
);
