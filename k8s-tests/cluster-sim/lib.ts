// Helpers of the simulated-cluster tests: find the running cluster (`make cluster-sim-up`
// writes .local/cluster-sim/cluster.env), run kubectl and Helm against it, and make the
// dependency-stripped copy of the chart the chart tests use (charts/tests/run.sh does the
// same: the Bitnami subcharts cannot be pulled here, and Helm refuses to render a chart whose
// declared dependencies are missing).
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const STATE = process.env.CLUSTER_SIM_STATE ?? join(ROOT, ".local/cluster-sim");
export const BIN = join(ROOT, "tools/bin");
export const CHART = join(ROOT, "charts/nodescale");
export const VALUES = join(ROOT, "charts/tests/values");

export type Helm = "helm3" | "helm4";

export interface Cluster {
  kubeconfig: string;
  server: string;
  bin: string;
  gatewayApiCrds: string;
  serviceMonitorCrds: string;
  kubernetesVersion: string;
}

/**
 * What a cluster script wrote to its cluster.env (KEY=value lines), as a reader that fails on
 * a missing key, saying how to restart. Fails, saying how to start one, when there is no file.
 */
export function clusterEnv(file: string, what: string, make: string): (key: string) => string {
  if (!existsSync(file)) {
    throw new Error(`no ${what}: ${file} is missing. Start one with 'make ${make}-up'.`);
  }
  const env = Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  return (key) => {
    const v = env[key];
    if (!v) throw new Error(`cluster.env has no ${key}: restart the cluster with 'make ${make}-down ${make}-up'`);
    return v;
  };
}

/** Fails, saying how to restart, unless the API server answers /readyz with ok. */
export async function assertApiReady(kubeconfig: string, server: string, what: string, make: string): Promise<void> {
  const ready = await run(join(BIN, "kubectl"), ["--kubeconfig", kubeconfig, "get", "--raw", "/readyz"]);
  if (ready.code !== 0 || ready.stdout.trim() !== "ok") {
    throw new Error(
      `the ${what} at ${server} is not ready (${(ready.stdout + ready.stderr).trim()}); ` +
        `restart it with 'make ${make}-down ${make}-up'`,
    );
  }
}

/** The running simulated cluster, or an error that says how to start one (never a skip). */
export async function cluster(): Promise<Cluster> {
  const need = clusterEnv(join(STATE, "cluster.env"), "simulated cluster", "cluster-sim");
  const c: Cluster = {
    kubeconfig: need("KUBECONFIG"),
    server: need("CLUSTER_SIM_SERVER"),
    bin: need("CLUSTER_SIM_BIN"),
    gatewayApiCrds: need("CLUSTER_SIM_GATEWAY_API_CRDS"),
    serviceMonitorCrds: need("CLUSTER_SIM_SERVICEMONITOR_CRDS"),
    kubernetesVersion: need("CLUSTER_SIM_KUBERNETES_VERSION"),
  };
  await assertApiReady(c.kubeconfig, c.server, "simulated cluster", "cluster-sim");
  return c;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws on a non-zero exit (the caller asserts). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      {
        env: { ...process.env, ...opts.env },
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 10 * 60_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs a command and throws with its output when it fails. */
export async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd.split("/").pop()} ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

export function kubectl(c: Cluster, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<Result> {
  return run(join(BIN, "kubectl"), ["--kubeconfig", c.kubeconfig, ...args], opts);
}
export function kubectlMust(c: Cluster, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  return must(join(BIN, "kubectl"), ["--kubeconfig", c.kubeconfig, ...args], opts);
}
export async function getJson<T = Record<string, unknown>>(c: Cluster, args: string[]): Promise<T> {
  return JSON.parse(await kubectlMust(c, ["get", ...args, "-o", "json"])) as T;
}

export function helm(c: Cluster, which: Helm, args: string[]): Promise<Result> {
  return run(join(BIN, which), ["--kubeconfig", c.kubeconfig, ...args], {
    // Helm keeps its cache and config under HOME; keep them away from the user's.
    env: {
      HELM_CACHE_HOME: join(STATE, "helm/cache"),
      HELM_CONFIG_HOME: join(STATE, "helm/config"),
      HELM_DATA_HOME: join(STATE, "helm/data"),
    },
  });
}
export async function helmMust(c: Cluster, which: Helm, args: string[]): Promise<string> {
  const r = await helm(c, which, args);
  if (r.code !== 0) throw new Error(`${which} ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout + r.stderr;
}

/** A temp copy of the chart with Chart.yaml's `dependencies:` removed; `dispose` removes it. */
export function strippedChart(source = CHART): { dir: string; dispose: () => void } {
  const tmp = mkdtempSync(join(tmpdir(), "nodescale-chart-"));
  const dir = join(tmp, "nodescale");
  cpSync(source, dir, { recursive: true });
  rmSync(join(dir, "charts"), { recursive: true, force: true });
  rmSync(join(dir, "Chart.lock"), { force: true });
  const out: string[] = [];
  let skip = false;
  for (const line of readFileSync(join(source, "Chart.yaml"), "utf8").split("\n")) {
    if (/^dependencies:/.test(line)) {
      skip = true;
      continue;
    }
    if (skip && /^[^ #-]/.test(line)) skip = false;
    if (!skip) out.push(line);
  }
  writeFileSync(join(dir, "Chart.yaml"), out.join("\n"));
  if (/^dependencies:/m.test(readFileSync(join(dir, "Chart.yaml"), "utf8")))
    throw new Error("dependencies not stripped");
  return { dir, dispose: () => rmSync(tmp, { recursive: true, force: true }) };
}

/** A fresh namespace (deleted first if a previous run left it). */
export async function freshNamespace(c: Cluster, ns: string): Promise<void> {
  await kubectl(c, ["delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s"]);
  await kubectlMust(c, ["create", "namespace", ns]);
}

/**
 * The Secrets that charts/tests/values/external-services.yaml names as existing ones, so the
 * app's configuration is complete (every variable the app reads at start has a source).
 */
export async function externalServiceSecrets(c: Cluster, ns: string): Promise<void> {
  const secrets: Record<string, Record<string, string>> = {
    "shop-db": { "pg-password": "sim-db-password" },
    "shop-redis": { password: "sim-redis-password" },
    "shop-sessions": { secrets: "sim-session-secret-1,sim-session-secret-0" },
  };
  for (const [name, data] of Object.entries(secrets)) {
    const args = ["create", "secret", "generic", name, "-n", ns];
    for (const [k, v] of Object.entries(data)) args.push(`--from-literal=${k}=${v}`);
    await kubectlMust(c, args);
  }
}

/** Applies the CRDs the chart's values can use (Gateway API, ServiceMonitor), server-side. */
export async function applyCrds(c: Cluster): Promise<void> {
  for (const dir of [c.gatewayApiCrds, c.serviceMonitorCrds]) {
    // (a trailing slash: kubectl does not follow a link to a folder otherwise)
    await kubectlMust(c, [
      "apply",
      "--server-side",
      "--field-manager=cluster-sim",
      "--validate=strict",
      "-f",
      `${dir}/`,
    ]);
  }
  // (the Gateway API bundle also holds a ValidatingAdmissionPolicy: wait on the CRDs only)
  await kubectlMust(c, ["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function eventually<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined | false>,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${last}` : ""}`);
    await sleep(everyMs);
  }
}
