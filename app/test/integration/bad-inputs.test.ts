// A corpus of bad inputs sent to every route: malformed JSON, wrong types, unknown fields,
// oversized bodies, SQL metacharacters, very long strings, invalid UTF-8, wrong content types,
// bad path parameters and query strings, forged cookies. Each must answer 4xx with a JSON
// `{ error: { code, message } }` body, never 5xx, and no process may die. Hostile but valid
// values (SQL metacharacters in free text) must be stored and read back byte for byte.
//
// Requests go straight to the instances (round-robin), so nginx answers none of them itself.

import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import {
  Client,
  countBy,
  isErrorBody,
  jsonOf,
  mapLimit,
  type Reply,
  type RequestOptions,
  registerAndLogin,
  startStack,
  stopStack,
  type Topology,
} from "./support.ts";

const INSTANCES = 2;

type Case = {
  route: string;
  what: string;
  path: string;
  options: RequestOptions;
  client?: "anonymous";
  /**
   * Through nginx: for bodies the app rejects part-way. It answers and closes the connection
   * while the sender is still writing; nginx (like curl) reads that answer, Node's http client
   * may report EPIPE instead.
   */
  viaLb?: boolean;
};

const json = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value));
const invalidUtf8 = (template: string) =>
  Buffer.concat([
    Buffer.from(template.split("@")[0] ?? ""),
    Buffer.from([0xff, 0xfe, 0xc3]),
    Buffer.from(template.split("@")[1] ?? ""),
  ]);

// Valid bodies per JSON route; the corpus breaks them one way at a time.
const jsonRoutes: {
  route: string;
  path: string;
  valid: Record<string, unknown>;
  strings: string[];
  numbers: string[];
  /** Fields that may be left out (they have defaults); `body` of an item may also be empty. */
  optional?: string[];
}[] = [
  {
    route: "register",
    path: "/api/auth/register",
    valid: { username: "someone_new", password: "long enough password" },
    strings: ["username", "password"],
    numbers: [],
  },
  {
    route: "login",
    path: "/api/auth/login",
    valid: { username: "someone_new", password: "long enough password" },
    strings: ["username", "password"],
    numbers: [],
  },
  {
    route: "items create",
    path: "/api/items",
    valid: { title: "a title", body: "a body" },
    optional: ["body"],
    strings: ["title", "body"],
    numbers: [],
  },
  {
    route: "work",
    path: "/api/work",
    valid: { text: "some text", iterations: 3 },
    optional: ["iterations"],
    strings: ["text"],
    numbers: ["iterations"],
  },
];

function jsonBodyCases(): Case[] {
  const cases: Case[] = [];
  for (const r of jsonRoutes) {
    const add = (
      what: string,
      body: Buffer | string,
      headers: Record<string, string> = { "content-type": "application/json" },
    ) => cases.push({ route: r.route, what, path: r.path, options: { method: "POST", body, headers } });
    // Malformed JSON.
    for (const text of ["{", '{"a":', "not json", "[1,2", "{'a':'b'}", '{"a":1,}', '{"a" 1}', "\u0000", "{}}", "NaN"])
      add(`malformed ${JSON.stringify(text)}`, text);
    add("empty body", "");
    add("deeply nested unclosed", "[".repeat(3000));
    // Well-formed JSON of the wrong shape.
    for (const value of [null, 1, "string", true, [], [r.valid], {}])
      add(`top-level ${JSON.stringify(value)}`, json(value));
    // Wrong types, one field at a time.
    for (const field of [...r.strings, ...r.numbers]) {
      const wrong = r.numbers.includes(field)
        ? ["3", null, true, [], {}, 1.5, -1, 1001, 0]
        : [123, null, true, [], {}, ["x"]];
      for (const value of wrong) add(`${field}: ${JSON.stringify(value)}`, json({ ...r.valid, [field]: value }));
      if (!r.optional?.includes(field))
        add(`${field} missing`, json(Object.fromEntries(Object.entries(r.valid).filter(([k]) => k !== field))));
      if (field === "iterations") add("iterations 1e400", `{"text":"a","iterations":1e400}`);
    }
    // Unknown fields.
    add("unknown field", json({ ...r.valid, extra: 1 }));
    add("__proto__ field", `{"__proto__":{"admin":true},${JSON.stringify(r.valid).slice(1)}`);
    add("constructor field", json({ ...r.valid, constructor: { prototype: { admin: true } } }));
    add("duplicate key of the wrong type", `${JSON.stringify(r.valid).slice(0, -1)},"${r.strings[0]}":42}`);
    // Very long strings and oversized bodies.
    for (const field of r.strings) {
      add(`${field} of 600,000 chars`, json({ ...r.valid, [field]: "a".repeat(600_000) }));
      if (!r.optional?.includes(field)) add(`${field} empty`, json({ ...r.valid, [field]: "" }));
    }
    add("5 MB body", json({ ...r.valid, pad: "x".repeat(5 * 1024 * 1024) }));
    // Invalid UTF-8 inside a string, and a NUL character (PostgreSQL text cannot hold one).
    for (const field of r.strings) {
      add(`invalid UTF-8 in ${field}`, invalidUtf8(JSON.stringify({ ...r.valid, [field]: "x@y" })));
      // NUL is bad only where text reaches PostgreSQL (a password is hashed, work text hashed).
      if (field !== "password" && field !== "text") add(`NUL in ${field}`, json({ ...r.valid, [field]: "a\u0000b" }));
    }
    add("invalid UTF-8 outside strings", invalidUtf8(`${JSON.stringify(r.valid).slice(0, -1)},@}`));
    // SQL metacharacters where the field does not allow them.
    if (r.strings.includes("username"))
      for (const u of ["admin'--", "' OR '1'='1", "x; drop table users; --", 'a"b', "a b", "%_", "\\"])
        add(`username ${JSON.stringify(u)}`, json({ ...r.valid, username: u }));
    // Wrong content types and encodings.
    const validText = JSON.stringify(r.valid);
    add("no content-type", validText, {});
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/xml",
      "application/json; charset=latin1",
      "application/json; charset=utf-16",
      "application/x-ndjson",
    ])
      add(`content-type ${type}`, validText, { "content-type": type });
    add("gzip that is not gzip", validText, { "content-type": "application/json", "content-encoding": "gzip" });
    add("unknown content-encoding", validText, { "content-type": "application/json", "content-encoding": "snappy" });
  }
  return cases;
}

function importCases(): Case[] {
  const cases: Case[] = [];
  const add = (
    what: string,
    body: Buffer | string | (() => Readable),
    headers = { "content-type": "application/x-ndjson" },
  ) =>
    cases.push({
      route: "items import",
      what,
      path: "/api/items/import",
      options: { method: "POST", body: typeof body === "function" ? body() : body, headers, timeoutMs: 30_000 },
      viaLb: typeof body === "function" || body.length > 512 * 1024,
    });
  const good = `${JSON.stringify({ title: "fine" })}\n`;
  for (const line of [
    "{",
    "not json",
    '{"title":1}',
    '{"title":"a","extra":1}',
    "[]",
    "1",
    "null",
    '{"body":"no title"}',
    '{"title":""}',
  ])
    add(`line ${JSON.stringify(line)} after a good one`, `${good}${line}\n`);
  add(`title of 201 chars`, `${JSON.stringify({ title: "t".repeat(201) })}\n`);
  add("NUL in a title", `${JSON.stringify({ title: "a\u0000b" })}\n`);
  add("invalid UTF-8 in a line", Buffer.concat([Buffer.from(good), invalidUtf8('{"title":"x@y"}\n')]));
  add("a 100 KB line", `${JSON.stringify({ title: "t", body: "b".repeat(100_000) })}\n`);
  add("a bad first line before 2 MB of good ones", () =>
    Readable.from(
      (function* () {
        yield "{broken\n";
        for (let i = 0; i < 64; i++) yield good.repeat((32 * 1024) / good.length);
      })(),
    ),
  );
  add("a 1 MB line with no newline", "x".repeat(1024 * 1024));
  add("no content-type", good, {} as { "content-type": string });
  add("content-type application/json", JSON.stringify({ title: "fine" }), { "content-type": "application/json" });
  add("content-type text/plain", good, { "content-type": "text/plain" });
  return cases;
}

function pathCases(): Case[] {
  const ids = [
    "abc",
    "99999999999999999999",
    "9007199254740993",
    "-1",
    "0",
    "1.5",
    "1e3",
    "0x10",
    "%FF",
    "%00",
    "%",
    "1;drop%20table%20items",
    "1'%20or%20'1'='1",
    "1%20OR%201=1",
    "%201",
    "1".repeat(2000),
    "%E2%80%AE1",
    "null",
    "undefined",
    "__proto__",
  ];
  return ids.map((id) => ({
    route: "items get",
    what: `id ${id.slice(0, 40)}`,
    path: `/api/items/${id}`,
    options: {},
  }));
}

function queryCases(): Case[] {
  const cases: Case[] = [];
  const listQueries = [
    "after=abc",
    "after=-1",
    "after=1.5",
    "after=99999999999999999999",
    "limit=0",
    "limit=101",
    "limit=abc",
    "limit=1e2",
    "limit=",
    "mine=yes",
    "unknown=1",
    "after[]=1",
    "after=1&after=2",
    "limit=%FF",
    "limit=5%00",
    "after=1'%20or%20'1'='1",
    `after=${"9".repeat(5000)}`,
    "%ZZ=1",
  ];
  for (const q of listQueries)
    cases.push({ route: "items list", what: `?${q.slice(0, 40)}`, path: `/api/items?${q}`, options: {} });
  for (const q of ["mine=yes", "mine=1", "foo=1", "mine=true&mine=false", "limit=5"])
    cases.push({ route: "items export", what: `?${q}`, path: `/api/items/export?${q}`, options: {} });
  cases.push({
    route: "items export",
    what: "?mine=true anonymously",
    path: "/api/items/export?mine=true",
    options: {},
    client: "anonymous",
  });
  // Routes that take no query at all.
  const noQuery: [string, string, string][] = [
    ["register", "POST", "/api/auth/register"],
    ["login", "POST", "/api/auth/login"],
    ["logout", "POST", "/api/auth/logout"],
    ["me", "GET", "/api/me"],
    ["items create", "POST", "/api/items"],
    ["items get", "GET", "/api/items/1"],
    ["items import", "POST", "/api/items/import"],
    ["work", "POST", "/api/work"],
  ];
  for (const [route, method, path] of noQuery)
    for (const q of ["foo=1", "a[b]=1", "%FF=%FF", `x=${"y".repeat(4000)}`]) {
      // A body that is valid for the route, so that only the query is wrong.
      const body = {
        register: '{"username":"query_user","password":"long enough password"}',
        login: '{"username":"query_user","password":"long enough password"}',
        "items create": '{"title":"q"}',
        "items import": '{"title":"q"}\n',
        work: '{"text":"q"}',
      }[route];
      const type = route === "items import" ? "application/x-ndjson" : "application/json";
      cases.push({
        route,
        what: `?${q.slice(0, 30)}`,
        path: `${path}?${q}`,
        options: { method, ...(body !== undefined ? { body, headers: { "content-type": type } } : {}) },
        // Logged in, a logout that wrongly succeeded would end the session the other cases use.
        ...(route === "logout" ? { client: "anonymous" as const } : {}),
      });
    }
  return cases;
}

function cookieCases(): Case[] {
  const cookies = [
    "sid=garbage",
    "sid=s%3Aforged.signature",
    "sid=s%3A",
    "sid=%FF%FE",
    `sid=${"a".repeat(4000)}`,
    "sid=s:abc.def; sid=other",
  ];
  const routes: [string, string, string, RequestOptions][] = [
    ["me", "GET", "/api/me", {}],
    ["items create", "POST", "/api/items", { body: '{"title":"x"}', headers: { "content-type": "application/json" } }],
    [
      "items import",
      "POST",
      "/api/items/import",
      { body: '{"title":"x"}\n', headers: { "content-type": "application/x-ndjson" } },
    ],
    ["items export", "GET", "/api/items/export?mine=true", {}],
    ["items list", "GET", "/api/items?mine=true", {}],
  ];
  return routes.flatMap(([route, method, path, options]) =>
    cookies.map((cookie) => ({
      route,
      what: `cookie ${cookie.slice(0, 30)}`,
      path,
      options: { ...options, method, headers: { ...options.headers, cookie } },
      client: "anonymous" as const,
    })),
  );
}

describe("bad inputs on every route", { timeout: 180_000 }, () => {
  let stack: Topology | undefined;

  before(async () => {
    stack = await startStack("badinput", {
      instances: INSTANCES,
      // Six requests in flight, all of them imports at times: room for each on either instance,
      // so that a bad body is answered for what it is, not refused for capacity.
      appEnv: { LOGIN_RATE_LIMIT_PER_MINUTE: "100000", STREAMS_MAX: "6" },
    });
  });

  after(async () => {
    await stopStack(stack);
  });

  test("each bad input answers 4xx JSON, never 5xx, and every process lives", async () => {
    assert.ok(stack);
    const instances = stack.instances;
    const pids = instances.map((i) => i.pid);
    const user = new Client(instances[0]?.url as string);
    await registerAndLogin(user, "corpus");
    const asUser = instances.map((i) => user.withBase(i.url));
    const anonymous = instances.map((i) => new Client(i.url));
    const userViaLb = user.withBase(stack.lbUrl);

    const cases = [...jsonBodyCases(), ...importCases(), ...pathCases(), ...queryCases(), ...cookieCases()];
    const started = performance.now();
    const replies = await mapLimit(cases, 6, (c, n) => {
      const pool = c.client === "anonymous" ? anonymous : asUser;
      const client = c.viaLb ? userViaLb : (pool[n % pool.length] as Client);
      return client.request(c.path, { timeoutMs: 20_000, ...c.options });
    });
    const ms = performance.now() - started;

    const wrong = cases
      .map((c, n) => ({ c, r: replies[n] as Reply }))
      .filter(({ r }) => r.status < 400 || r.status > 499 || !isErrorBody(r))
      .map(({ c, r }) => `${c.route} ${c.what}: ${r.status}${r.error ? ` (${r.error})` : ""} ${r.text.slice(0, 100)}`);
    const byRoute = countBy(cases, (c) => c.route);
    const byStatus = countBy(replies, (r) => String(r.status));
    const codes = countBy(replies, (r) => (jsonOf(r) as { error?: { code?: string } })?.error?.code ?? "(none)");

    // Hostile but valid: stored and read back exactly, never interpreted.
    const hostile = ["'; drop table items; --", "' OR '1'='1", 'a"b\\c', "%_*", "$1 $$ $tag$", "😀 ünïcödé ‮rtl"];
    const roundTrips: string[] = [];
    for (const [n, title] of hostile.entries()) {
      const client = asUser[n % asUser.length] as Client;
      const created = await client.post("/api/items", { title, body: title });
      const id = (jsonOf(created) as { id?: number })?.id;
      const read = await client.get(`/api/items/${id}`);
      const item = jsonOf(read) as { title?: string; body?: string } | undefined;
      if (created.status !== 201 || read.status !== 200 || item?.title !== title || item.body !== title)
        roundTrips.push(`${JSON.stringify(title)}: ${created.status}/${read.status} ${read.text.slice(0, 80)}`);
    }
    const hostileLogin = new Client(instances[1]?.url as string);
    const hostileUser = await registerAndLogin(hostileLogin, "pw").catch((e: Error) => e);
    hostileLogin.close();

    const live = await Promise.all(instances.map((i) => new Client(i.url).get("/livez")));
    const pidsAfter = stack.instances.map((i) => i.pid);
    console.log(
      `${cases.length} bad inputs in ${ms.toFixed(0)} ms, per route ${JSON.stringify(byRoute)}\n` +
        `statuses ${JSON.stringify(byStatus)}\nerror codes ${JSON.stringify(codes)}\n` +
        `hostile valid values round-tripped: ${hostile.length - roundTrips.length}/${hostile.length}; ` +
        `/livez after: ${live.map((r) => r.status).join(",")}; pids ${JSON.stringify(pids)} -> ${JSON.stringify(pidsAfter)}`,
    );
    for (const c of [...asUser, ...anonymous, user, userViaLb]) c.close();

    assert.deepEqual(wrong, [], "every bad input answers 4xx with a JSON error body");
    assert.deepEqual(roundTrips, [], "hostile but valid text is stored and read back exactly");
    assert.ok(!(hostileUser instanceof Error), `register/login still work: ${hostileUser}`);
    assert.deepEqual(
      live.map((r) => r.status),
      instances.map(() => 200),
      "every instance answers /livez",
    );
    assert.deepEqual(pidsAfter, pids, "no instance died or restarted");
  });
});
