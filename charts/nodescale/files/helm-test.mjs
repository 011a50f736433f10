// The `helm test` checks, run by Node 24 (built-in fetch) in the test pods. One script,
// the check named by CHECK: readiness | session | replicas. Talks to the release's Service
// at BASE_URL, as a user would, and to the internal metrics Service at METRICS_URL (when
// set: /metrics and the dependency detail are served only there); prints one "ok - ..."
// line per assertion, exits 1 on the first failure with the reason.
const base = process.env.BASE_URL;
const metricsBase = process.env.METRICS_URL;
const check = process.env.CHECK;

function assert(condition, message) {
  if (!condition) throw new Error(`not ok - ${message}`);
  console.log(`ok - ${message}`);
}

async function call(method, path, { body, cookie, at = base } = {}) {
  // The test pod talks to the Service in plain HTTP, as the TLS front door does, and says
  // what that front door says: the request came over https. With COOKIE_SECURE=true (the
  // chart's choice behind a TLS Ingress or Gateway) the app sets no cookie otherwise.
  const headers = { "x-forwarded-proto": "https" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (cookie) headers.cookie = cookie;
  const res = await fetch(at + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

// Polls fn until it returns a truthy value or the deadline passes.
async function eventually(what, seconds, fn) {
  const until = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < until) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`not ok - ${what} within ${seconds}s${last ? `: ${last.message}` : ""}`);
}

async function login() {
  const username = `helmtest-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const password = `pw-${crypto.randomUUID()}`;
  const reg = await call("POST", "/api/auth/register", { body: { username, password } });
  assert(reg.status === 201 || reg.status === 200, `register ${username} (HTTP ${reg.status})`);
  const res = await call("POST", "/api/auth/login", { body: { username, password } });
  assert(res.status === 200 || res.status === 204, `login (HTTP ${res.status})`);
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");
  assert(cookie.length > 0, "login sets a session cookie");
  return { username, password, cookie };
}

const checks = {
  async readiness() {
    await eventually("GET /readyz answers 200", 120, async () => (await call("GET", "/readyz")).status === 200);
    const ready = await call("GET", "/readyz");
    assert(ready.status === 200, "GET /readyz is 200");
    assert(Boolean(ready.headers.get("x-instance")), `x-instance header (${ready.headers.get("x-instance")})`);
    const live = await call("GET", "/livez");
    assert(live.status === 200, "GET /livez is 200");
    if (metricsBase) {
      const hidden = await call("GET", "/metrics");
      assert(hidden.status === 404, `GET /metrics on the app's Service is 404: only the internal port serves it (HTTP ${hidden.status})`);
      assert(ready.json?.dependencies === undefined, "GET /readyz on the app's Service carries no dependency detail");
      const detail = await call("GET", "/readyz", { at: metricsBase });
      assert(detail.status === 200 && detail.json?.dependencies?.primary !== undefined, `the internal port's /readyz reports the dependencies (${JSON.stringify(detail.json?.dependencies)})`);
    }
    const metrics = await call("GET", "/metrics", { at: metricsBase ?? base });
    assert(metrics.status === 200 && metrics.text.includes("http_request_duration_seconds"), `GET /metrics at ${metricsBase ?? base} exposes http_request_duration_seconds`);
  },

  async session() {
    const { username, password, cookie } = await login();
    const instances = new Set();
    let asUser = 0;
    for (let i = 0; i < 20; i++) {
      const me = await call("GET", "/api/me", { cookie });
      if (me.status === 200 && me.json?.username === username) asUser++;
      instances.add(me.headers.get("x-instance"));
    }
    assert(asUser === 20, `${asUser} of 20 x GET /api/me return ${username}, served by ${instances.size} instance(s): ${[...instances].join(", ")}`);
    const anonymous = await call("GET", "/api/me");
    assert(anonymous.status === 401, `GET /api/me without the cookie is 401 (HTTP ${anonymous.status})`);
    const wrong = await call("POST", "/api/auth/login", { body: { username, password: `${password}-wrong` } });
    assert(wrong.status === 401 && !wrong.headers.get("set-cookie"), `login with a wrong password is 401, no cookie (HTTP ${wrong.status})`);
  },

  async replicas() {
    const { cookie } = await login();
    const title = `helm test ${new Date().toISOString()}`;
    const created = await call("POST", "/api/items", { body: { title }, cookie });
    assert(created.status === 201, `POST /api/items (HTTP ${created.status})`);
    const id = created.json?.id ?? created.json?.item?.id;
    assert(id !== undefined, `the new item has an id (${id})`);
    // Read-your-writes: the writer reads its item at once, from whichever route is fresh.
    const own = await call("GET", `/api/items/${id}`, { cookie });
    assert(own.status === 200 && own.text.includes(title), `the writer reads its item at once (x-db-route: ${own.headers.get("x-db-route")})`);
    // Anyone else's read goes to a replica once it has replayed the write.
    const route = await eventually("an anonymous read is served by a replica", 30, async () => {
      const read = await call("GET", `/api/items/${id}`);
      return read.status === 200 && read.text.includes(title) && read.headers.get("x-db-route") === "replica" && "replica";
    });
    assert(route === "replica", "x-db-route: replica for an anonymous read");
  },
};

const run = checks[check];
if (!run) {
  console.error(`unknown CHECK "${check}" (expected ${Object.keys(checks).join(", ")})`);
  process.exit(2);
}
run().then(
  () => console.log(`# ${check}: passed`),
  (error) => {
    console.error(error.message);
    process.exit(1);
  },
);
