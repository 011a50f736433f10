// Anchor: the least a Node.js HTTP server can do. `make bench` starts it as its own process
// (PORT from env) and judges every endpoint of the app against it.

import http from "node:http";

const body = JSON.stringify({ hello: "world" });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => process.stdout.write("listening\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
