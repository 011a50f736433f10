// The e2e suite's view of the cluster: kubectl and helm (tools/bin, else PATH) against the
// current kubeconfig context, always with a timeout, and the settings of the run.

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const NAMESPACE = process.env.E2E_NAMESPACE ?? "nodescale";
export const RELEASE = process.env.E2E_RELEASE ?? "nodescale";
/** The cluster's front door (kind: host port 80 on loopback; the real-node cluster: the Service). */
export const BASE_URL = process.env.E2E_URL ?? "http://127.0.0.1";
/** The chart upgrades use: kind-up's (dependencies built), or a copy without them (local clusters). */
export const CHART = process.env.E2E_CHART ?? "charts/nodescale";
export const RESULTS_DIR = path.join(ROOT, "k8s-tests", "results");

function tool(name: string, fallback: string): string {
  const pinned = path.join(ROOT, "tools", "bin", name);
  return existsSync(pinned) ? pinned : fallback;
}
export const KUBECTL = tool("kubectl", "kubectl");
export const HELM = tool("helm4", "helm");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, cwd: ROOT }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && !stderr ? err.message : "") });
    });
  });
}

/** kubectl ARGS in the release's namespace; throws with kubectl's message when it fails. */
export async function kubectl(args: string[], timeoutMs = 60_000): Promise<string> {
  const r = await run(KUBECTL, ["--request-timeout=20s", "-n", NAMESPACE, ...args], timeoutMs);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}
/** kubectl's JSON output, read field by field. */
// biome-ignore lint/suspicious/noExplicitAny: untyped JSON from kubectl
export type Json = any;

export async function kubectlJson(args: string[]): Promise<Json> {
  return JSON.parse(await kubectl([...args, "-o", "json"]));
}

export async function helm(args: string[], timeoutMs: number): Promise<Run> {
  return run(HELM, [...args, "--namespace", NAMESPACE], timeoutMs);
}

/**
 * Can the suite run? A reachable API server (3 s), the release, and a loopback front door.
 * Returns the reason it cannot, or undefined.
 */
export async function preflight(): Promise<string | undefined> {
  const u = new URL(BASE_URL);
  // Loopback (kind's ingress), or 198.18.0.0/15, the benchmarking range the local clusters
  // use for their pods and Services: nothing outside this machine.
  const local = /^(127\.\d+\.\d+\.\d+|198\.1[89]\.\d+\.\d+|localhost|\[::1\])$/;
  if (!local.test(u.hostname) && process.env.E2E_ALLOW_REMOTE !== "1") {
    return `E2E_URL ${BASE_URL} is neither loopback nor a local cluster's address in 198.18.0.0/15 (the kind cluster's ingress is http://127.0.0.1; E2E_ALLOW_REMOTE=1 for another cluster you own)`;
  }
  if (!existsSync(KUBECTL) && (await run("sh", ["-c", "command -v kubectl"], 5_000)).code !== 0) {
    return "no kubectl (tools/bin/kubectl or on PATH): run make tools";
  }
  const ctx = await run(KUBECTL, ["config", "current-context"], 5_000);
  const context = ctx.stdout.trim();
  if (ctx.code !== 0 || !context)
    return `no current kubeconfig context (KUBECONFIG=${process.env.KUBECONFIG ?? "~/.kube/config"}): run make kind-up`;
  const ready = await run(KUBECTL, ["--request-timeout=3s", "get", "--raw", "/readyz"], 6_000);
  if (ready.code !== 0) {
    const why = (ready.stderr.trim().split("\n").pop() ?? "").slice(0, 160);
    return `context ${context} does not answer (${why}): run make kind-up`;
  }
  const status = await run(HELM, ["status", RELEASE, "--namespace", NAMESPACE], 10_000);
  if (status.code !== 0)
    return `context ${context} has no release ${RELEASE} in namespace ${NAMESPACE}: run make kind-up`;
  return undefined;
}
