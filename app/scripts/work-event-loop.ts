// How much event-loop time one POST /api/work of the largest accepted body costs the app.
// The app runs in this process (Redis and PostgreSQL are not needed for /api/work); the
// requests come one at a time from a child process, so only the server's work counts here.
// Reports busy event-loop ms per request (event-loop utilization x wall time / requests), the
// main thread's CPU time per request, the event-loop delay (the longest the loop was held at
// once, which is what the 1 ms rule is about) and, for scale, one JSON.parse of the same body.
// On a busy machine the delay also counts time the loop was descheduled: compare runs made
// side by side.
//
//   node app/scripts/work-event-loop.ts [requests=40]

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
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
// The main thread's own CPU time: event-loop utilization counts wall time, so on a busy
// machine a descheduled loop looks busy; CPU time does not.
const cpuBefore = process.threadCpuUsage();
// The 1 ms rule is about the longest time the loop is held at once, which this samples.
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const exit = await new Promise<number | null>((resolve) => {
  const child = spawn(process.execPath, ["--input-type=module", "-e", client], {
    env: { ...process.env, URL: `${app.url}/api/work`, BODY_FILE: bodyFile },
    stdio: "inherit",
  });
  child.on("exit", resolve);
});
const elu = performance.eventLoopUtilization(before);
const cpu = process.threadCpuUsage(cpuBefore);
delay.disable();
const cpuMsPerRequest = (cpu.user + cpu.system) / 1000 / requests;
await app.close();
rmSync(dir, { recursive: true, force: true });
if (exit !== 0) throw new Error(`client exited ${exit}`);
console.log(
  `body ${(body.length / 1024 / 1024).toFixed(2)} MB, ${requests} requests: event loop busy ` +
    `${(elu.active / requests).toFixed(2)} ms per request, main-thread CPU ${cpuMsPerRequest.toFixed(2)} ms per request (utilization ${(elu.utilization * 100).toFixed(1)}% ` +
    `over ${(elu.idle + elu.active).toFixed(0)} ms); event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(2)} ms, ` +
    `max ${(delay.max / 1e6).toFixed(2)} ms; one JSON.parse of the body: ${parseMs.toFixed(2)} ms`,
);
