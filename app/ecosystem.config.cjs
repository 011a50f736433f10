// PM2 cluster mode: every core of one machine, before Kubernetes.
//
//   npm ci --omit=dev && npm run build
//   DATABASE_URL=... REDIS_URL=... SESSION_SECRETS=... pm2 start ecosystem.config.cjs
//   pm2 reload nodescale       # zero-downtime: one worker at a time
//
// PM2 is AGPL-3.0: install it on the VM (npm i -g pm2); it is never a dependency of the app or
// part of its image. The app's configuration is the same environment contract the Helm chart
// sets (see README.md); PM2 passes its own environment through to the workers.

const drainMs = Number(process.env.SHUTDOWN_DRAIN_MS ?? 1000);
const shutdownTimeoutMs = Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 10000);

module.exports = {
  apps: [
    {
      name: "nodescale",
      script: "dist/main.js",
      cwd: __dirname,
      exec_mode: "cluster",
      // One worker per core; PM2_INSTANCES=1 gives the single-process baseline.
      instances: process.env.PM2_INSTANCES ?? "max",
      // A reload starts the new worker and waits for its "ready" message (sent once it
      // listens) before stopping the old one.
      wait_ready: true,
      listen_timeout: 15000,
      // SIGINT starts the app's shutdown (drain, finish in-flight, close clients); PM2 must not
      // SIGKILL before that sequence can end.
      kill_timeout: drainMs + shutdownTimeoutMs + 2000,
      env: {
        NODE_ENV: "production",
        // The image's V8 young-generation cap (see Dockerfile): bounded memory on big payloads.
        NODE_OPTIONS: process.env.NODE_OPTIONS ?? "--max-semi-space-size=16",
        // Workers already fill the cores; one CPU thread each keeps the event loops free.
        WORKER_THREADS: process.env.WORKER_THREADS ?? "1",
        // The cluster master stops routing to a worker once it stops listening, so a short
        // drain only lets keep-alive clients move (responses carry "connection: close").
        SHUTDOWN_DRAIN_MS: String(drainMs),
        SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
        // Each worker also serves /metrics on METRICS_PORT + its index, so Prometheus scrapes
        // every worker and sums are right (the shared port would answer from a random one).
        METRICS_PORT: process.env.METRICS_PORT ?? "9100",
        // Clients reach PM2's cluster port directly here, so no X-Forwarded-For is trusted: a
        // client could otherwise pick its own IP and walk around the per-IP rate limits. Put
        // TRUST_PROXY=1 in the environment when a reverse proxy (nginx) stands in front.
        TRUST_PROXY: process.env.TRUST_PROXY ?? "0",
      },
    },
  ],
};
