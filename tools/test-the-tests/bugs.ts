// The planted-bug table of issue 19: one-line bugs that matter, each with the tests that
// must fail when it is planted. `make test-the-tests` plants them one at a time in a scratch
// copy of the committed tree and runs those tests (run.ts).
//
// A bug is a literal text replacement in one file; `find` must occur exactly once, so that a
// change to the code it targets shows up as "not planted" instead of a silent pass.

export type Bug = {
  id: string;
  what: string;
  file: string;
  find: string;
  replace: string;
  /** Test commands (run from the scratch copy's root); each must fail with the bug planted. */
  tests: string[];
};

const integration = (file: string) => `node --test --test-reporter=spec --test-concurrency=1 ${file}`;
const unit = (file: string) => `node --test --test-reporter=spec ${file}`;

// The Bitnami charts cannot be fetched here: their full render is skipped by name, as in make test.
export const CHART_TEST = "CHECKS_SKIP=bitnami-render bash charts/tests/run.sh";

export const bugs: Bug[] = [
  {
    id: "login-any-password",
    what: "login only checks that the user exists",
    file: "app/src/http/routes/auth.ts",
    find: "if (user === undefined || !valid) {",
    replace: "if (user === undefined) {",
    tests: [integration("app/test/integration/auth.test.ts"), integration("charts/tests/helm-test-script.test.ts")],
  },
  {
    id: "unknown-user-told-apart",
    what: "an unknown user gets another message than a wrong password",
    file: "app/src/http/routes/auth.ts",
    find: "if (user === undefined || !valid) {",
    replace:
      'if (user === undefined) throw new AppError(401, "invalid_credentials", "No such user.");\n    if (!valid) {',
    tests: [integration("app/test/integration/auth.test.ts")],
  },
  {
    id: "no-session-regeneration",
    what: "the session id is kept at login (session fixation)",
    file: "app/src/http/routes/auth.ts",
    find: "    const session = await regenerateSession(req);\n",
    replace: "    const session = req.session ?? (await regenerateSession(req));\n",
    tests: [integration("app/test/integration/auth.test.ts")],
  },
  {
    id: "logout-keeps-session",
    what: "logout clears the cookie but leaves the session in Redis",
    file: "app/src/http/routes/auth.ts",
    find: "if (req.session?.stored) await destroySession(req);",
    replace: "void destroySession;",
    tests: [
      integration("app/test/integration/auth.test.ts"),
      integration("app/test/integration/session-store.test.ts"),
    ],
  },
  {
    id: "cookie-not-httponly",
    what: "the session cookie is readable by scripts",
    file: "app/src/sessions/middleware.ts",
    find: "httpOnly: true,",
    replace: "httpOnly: false,",
    tests: [integration("app/test/integration/auth.test.ts")],
  },
  {
    id: "cookie-secure-auto-ignored",
    what: "COOKIE_SECURE=auto never marks the cookie Secure",
    file: "app/src/sessions/middleware.ts",
    find: 'const secure = config.cookieSecure === "true" || (config.cookieSecure === "auto" && req.secure);',
    replace: 'const secure = config.cookieSecure === "true";',
    tests: [integration("app/test/integration/auth.test.ts")],
  },
  {
    id: "no-drain",
    what: "no drain on SIGTERM: stops accepting at once",
    file: "app/src/lifecycle.ts",
    find: "  await delay(options.drainMs);\n",
    replace: "",
    tests: [
      unit("app/test/unit/lifecycle.test.ts"),
      integration("local/test/sigterm-inflight.test.ts"),
      integration("local/test/rolling-restart.test.ts"),
    ],
  },
  {
    id: "close-connections-at-stop",
    what: "connections closed at stop, in-flight requests with them",
    file: "app/src/lifecycle.ts",
    find: "  server.closeIdleConnections();\n  const deadline",
    replace: "  server.closeAllConnections();\n  const deadline",
    tests: [
      unit("app/test/unit/lifecycle.test.ts"),
      integration("local/test/sigterm-inflight.test.ts"),
      integration("local/test/rolling-restart.test.ts"),
    ],
  },
  {
    id: "hpa-memory-metric",
    what: "HPA scales on memory instead of CPU",
    file: "charts/nodescale/templates/hpa.yaml",
    find: "        name: cpu\n",
    replace: "        name: memory\n",
    tests: [CHART_TEST],
  },
  {
    id: "hpa-no-scale-down-window",
    what: "HPA scaleDown.stabilizationWindowSeconds: 0",
    file: "charts/nodescale/values.yaml",
    find: "stabilizationWindowSeconds: 300",
    replace: "stabilizationWindowSeconds: 0",
    tests: [CHART_TEST],
  },
  {
    id: "pdb-all-unavailable",
    what: "PDB maxUnavailable: 100%",
    file: "charts/nodescale/templates/pdb.yaml",
    find: "  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}",
    replace: "  maxUnavailable: 100%",
    tests: [CHART_TEST],
  },
  {
    id: "rollout-all-unavailable",
    what: "Deployment rollingUpdate.maxUnavailable: 100%",
    file: "charts/nodescale/values.yaml",
    find: "    maxUnavailable: 0\n",
    replace: "    maxUnavailable: 100%\n",
    tests: [CHART_TEST],
  },
  {
    id: "rate-limit-off-by-one",
    what: "rate limit refuses the last allowed attempt (count >= limit)",
    file: "app/src/auth/rate-limit.ts",
    find: "    points: limits.attemptsPerMinute,\n",
    replace: "    points: limits.attemptsPerMinute - 1,\n",
    tests: [
      integration("app/test/integration/rate-limit.test.ts"),
      integration("app/test/integration/rate-limiter.test.ts"),
    ],
  },
  {
    id: "rate-limit-no-expire",
    what: "the window never ends: the counter never resets (a permanent lockout)",
    file: "app/src/auth/rate-limit.ts",
    find: "    points: limits.attemptsPerMinute,\n    duration: windowSeconds,\n",
    // rate-limiter-flexible reads a duration of 0 as "never expires".
    replace: "    points: limits.attemptsPerMinute,\n    duration: 0,\n",
    tests: [
      integration("app/test/integration/rate-limit.test.ts"),
      integration("app/test/integration/rate-limiter.test.ts"),
    ],
  },
  {
    id: "lag-check-disabled",
    what: "a replica past REPLICA_MAX_LAG_MS stays in the read rotation",
    file: "app/src/db/replicas.ts",
    find: "if (state.lagMs > options.maxLagMs)",
    replace: "if (false)",
    tests: [unit("app/test/unit/replicas.test.ts"), integration("app/test/integration/replica-lag.test.ts")],
  },
  {
    id: "lsn-compared-as-text",
    what: "the read-your-writes watermark compares WAL positions as strings",
    file: "app/src/db/watermarks.ts",
    find: "  if ch > nh or (ch == nh and cl >= nl) then\n",
    replace: "  if current >= ARGV[1] then\n",
    tests: [integration("app/test/integration/read-your-writes-per-user.test.ts")],
  },
  {
    id: "read-your-writes-ignored",
    what: "a user's write position is ignored when choosing where to read",
    file: "app/src/http/routes/items.ts",
    find: "    const route = deps.reads.choose(await readNeed(req));\n    try {",
    replace: '    const route = deps.reads.choose({ kind: "any" });\n    try {',
    tests: [integration("app/test/integration/read-your-writes.test.ts")],
  },
  {
    id: "migration-unlocked",
    what: "pg_advisory_lock removed from the migration",
    file: "app/src/db/migrate.ts",
    find: '    await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);\n',
    replace: "",
    tests: [integration("app/test/integration/migrations.test.ts")],
  },
  {
    id: "ready-before-schema",
    what: "the app turns ready without waiting for the schema",
    file: "app/src/main.ts",
    find: "  await waitForSchema(db.primary.pool, log);\n",
    replace: "  void waitForSchema;\n",
    tests: [integration("app/test/integration/migrations.test.ts")],
  },
  {
    id: "import-partial-commit",
    what: "a failed import ends its COPY instead of abandoning it (partial rows land)",
    file: "app/src/http/routes/items.ts",
    find: "      copy.destroy();\n",
    replace: "      copy.end();\n",
    tests: [integration("app/test/integration/import.test.ts")],
  },
  {
    id: "worker-queue-500",
    what: "a full worker queue answers 500 instead of 503 with retry-after",
    file: "app/src/work/pool.ts",
    find: "if (error instanceof Error && QUEUE_FULL_MESSAGES.has(error.message)) {",
    replace: "if (false) {",
    tests: [unit("app/test/unit/work-pool.test.ts")],
  },
  {
    id: "metrics-port-shared",
    what: "every PM2 worker gets the same METRICS_PORT",
    file: "app/src/config.ts",
    find: "env.METRICS_PORT + (env.NODE_APP_INSTANCE ?? 0)",
    replace: "env.METRICS_PORT",
    tests: [unit("app/test/unit/config.test.ts"), integration("app/test/integration/pm2-reload.test.ts")],
  },
  {
    id: "config-default-changed",
    what: "a documented default changed (SHUTDOWN_DRAIN_MS 5000 -> 0)",
    file: "app/src/config.ts",
    find: "SHUTDOWN_DRAIN_MS: integer(0, 600_000).default(5000),",
    replace: "SHUTDOWN_DRAIN_MS: integer(0, 600_000).default(0),",
    tests: [unit("app/test/unit/config.test.ts")],
  },
];
