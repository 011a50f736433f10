// A process with installShutdown wired to a bare HTTP server, for lifecycle.test.ts: it prints
// "listening" when ready and "closed: pool" when the sequence closes its one client. After the
// IPC message "fail-next", the next log line throws, so the sequence itself fails.

import { createServer } from "node:http";
import { createLifecycle, installShutdown } from "../../src/lifecycle.ts";
import type { Logger } from "../../src/logger.ts";

let failNext = false;
process.on("message", (message) => {
  if (message === "fail-next") failNext = true;
});
const print = (level: string) => (fields: unknown, message?: string) => {
  if (failNext && level === "info") throw new Error("log sink broken");
  process.stdout.write(`${level} ${message ?? String(fields)}\n`);
};
const log = { info: print("info"), warn: print("warn"), error: print("error") } as unknown as Logger;

const server = createServer((_req, res) => res.end("ok"));
const lifecycle = createLifecycle();
installShutdown({
  server,
  lifecycle,
  drainMs: 0,
  timeoutMs: 5000,
  log,
  closers: [{ name: "pool", close: async () => process.stdout.write("closed: pool\n") }],
});
server.listen(0, "127.0.0.1", () => {
  lifecycle.markReady();
  process.stdout.write("listening\n");
});
