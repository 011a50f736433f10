// Anchor: an Express 5 hello-world, with the exact Express the app uses (resolved from
// app/node_modules). `make bench` starts it as its own process (PORT from env).

import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(import.meta.dirname, "..", "..", "app", "package.json"));
type Res = { json(body: unknown): void };
type ExpressApp = {
  disable(setting: string): void;
  get(path: string, handler: (req: unknown, res: Res) => void): void;
  listen(port: number, host: string, callback: () => void): import("node:http").Server;
};
// Typed by hand: the root tooling has no @types/express (that lives with the app).
const express = require("express") as () => ExpressApp;

const app = express();
app.disable("x-powered-by");
app.get("/", (_req, res) => {
  res.json({ hello: "world" });
});
const server = app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => process.stdout.write("listening\n"));
server.keepAliveTimeout = 65_000;
process.on("SIGTERM", () => server.close(() => process.exit(0)));
