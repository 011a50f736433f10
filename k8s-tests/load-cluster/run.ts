// `make load-cluster SCENARIO=ramp TARGET_RPS=50000 PARALLELISM=10`: one k6 scenario spread over
// PARALLELISM k6 runners in the cluster by the k6-operator (k6.io/v1alpha1 TestRun), for rates
// one k6 process cannot make. See load/README.md.
//
//   1. `k6 archive` of load/scenarios/<SCENARIO>.ts, so ../shapes.ts travels with it. k6 freezes
//      the options in the archive, so TARGET_RPS (and SHAPE_TIME_SCALE) are given to it here.
//      k6 v2 from PATH, else the pinned image through Docker; with neither, one line says so
//      and the exit code is 1 (DRY_RUN=1 renders the manifests without an archive).
//   2. A ConfigMap holding the archive and a TestRun with `parallelism: N`, the runners'
//      environment (TARGET_RPS, BASE_URL, SUMMARY_TO_STDOUT=1, the caller's K6_*) and
//      resources, both written to the results folder and created with kubectl.
//   3. Waits for the run (bounded: the shape's length plus setup and scheduling time, or
//      LOAD_CLUSTER_TIMEOUT_S), printing the stage and the runners' states as it goes.
//   4. Reads each runner pod's log, takes its summary from between the marker lines, and
//      prints the combined result (combine.ts says how percentiles are combined).
//   5. Deletes the TestRun and the ConfigMap (KEEP=1 keeps them).
// Exit code: 0 when every runner passed; 99 when a runner failed a threshold (k6's code);
// 1 on any other failure (a runner without a summary, the timeout, kubectl).
//
//   SCENARIO        smoke | ramp | spike | soak | sessions | breakpoint (required)
//   TARGET_RPS      default 1000;  PARALLELISM  number of runners, default 1
//   BASE_URL        default http://nodescale.nodescale.svc.cluster.local (the chart's Service,
//                   release and namespace `nodescale` as `make kind-up` installs it)
//   LOAD_NAMESPACE  where the TestRun runs, default nodescale-load (created when missing)
//   KUBE_CONTEXT    kubectl context (default: the current one);  KUBECTL  kubectl to use
//   RUNNER_CPU / RUNNER_MEMORY  each runner's requests and limits, default 2 / 2Gi
//   K6_IMAGE        default grafana/k6:2.3.0 (load/k6.ts);  SHAPE_TIME_SCALE  as for make load
//   RESULTS_DIR     default load/results; this run's files go to <RESULTS_DIR>/cluster/<name>/
//   DRY_RUN=1       write the manifests (no archive: k6 is not needed) and print the kubectl
//                   commands; run nothing
//   KEEP=1          leave the TestRun, its jobs and the ConfigMap in the cluster

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { dockerWorks, has, K6_IMAGE, K6_MAJOR, versionProblem } from "../../load/k6.ts";
import { clusterShape, durationOf, peakOf, SHAPE_NAMES, type ShapeName } from "../../load/shapes.ts";
import { combine, report, type Summary, summaryFromLog } from "./combine.ts";
import {
  archiveArgs,
  CONFIGMAP_MAX_BYTES,
  configMap,
  type LoadClusterOptions,
  runnerShares,
  splitProblems,
  testRun,
} from "./manifests.ts";

const REPO = resolve(import.meta.dirname, "../..");
const say = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`make load-cluster: ${line}\n`);

/** The options from the environment, or the one-line reason they are wrong. */
export function optionsFrom(env: NodeJS.ProcessEnv, stamp: string): LoadClusterOptions | string {
  const scenario = (env.SCENARIO ?? "") as ShapeName;
  if (!SHAPE_NAMES.includes(scenario))
    return `SCENARIO=${scenario || "<unset>"}: expected one of ${SHAPE_NAMES.join(", ")}`;
  const targetRps = Number(env.TARGET_RPS || "1000");
  if (!Number.isFinite(targetRps) || targetRps < 1) return `TARGET_RPS=${env.TARGET_RPS}: expected a number >= 1`;
  const parallelism = Number(env.PARALLELISM || "1");
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > 1000)
    return `PARALLELISM=${env.PARALLELISM}: expected a whole number from 1 to 1000`;
  const scale = env.SHAPE_TIME_SCALE;
  if (scale !== undefined && scale !== "" && !(Number(scale) > 0))
    return `SHAPE_TIME_SCALE=${scale}: expected a number > 0`;
  const k6Env = Object.fromEntries(
    Object.entries(env).filter(
      (e): e is [string, string] => e[0].startsWith("K6_") && e[0] !== "K6_IMAGE" && e[1] !== undefined && e[1] !== "",
    ),
  );
  return {
    // a DNS label: runner jobs are <name>-<i>, services <name>-service-<i>
    name: `nodescale-${scenario}-${stamp}`,
    namespace: env.LOAD_NAMESPACE || "nodescale-load",
    scenario,
    targetRps,
    parallelism,
    baseUrl: (env.BASE_URL || "http://nodescale.nodescale.svc.cluster.local").replace(/\/+$/, ""),
    image: env.K6_IMAGE || K6_IMAGE,
    runnerCpu: env.RUNNER_CPU || "2",
    runnerMemory: env.RUNNER_MEMORY || "2Gi",
    ...(scale ? { timeScale: scale } : {}),
    k6Env,
  };
}

/** `k6 archive` with k6 v2 from PATH, else the pinned image; null and one line when neither works. */
function archive(o: LoadClusterOptions, dir: string, env: NodeJS.ProcessEnv): Buffer | null {
  const out = join(dir, "archive.tar");
  const args = archiveArgs(o, out);
  // only PATH and HOME reach k6: nothing of this machine's environment goes into the archive
  const clean = { PATH: env.PATH ?? "", HOME: env.HOME ?? "" };
  let r: ReturnType<typeof spawnSync>;
  if (has("k6", env.PATH)) {
    const v = spawnSync("k6", ["version"], { encoding: "utf8", env: clean, timeout: 30_000 });
    const problem = versionProblem(`${v.stdout ?? ""}`);
    if (problem) {
      err(problem);
      return null;
    }
    say(`k6 ${args.join(" ")}`);
    r = spawnSync("k6", args, { cwd: REPO, stdio: "inherit", env: clean });
  } else if (dockerWorks(env)) {
    say(`docker run ${o.image} ${args.join(" ")}`);
    const docker = ["run", "--rm", "--user", `${process.getuid?.() ?? 1000}`, "-v", `${REPO}:${REPO}:ro`];
    docker.push("-v", `${dir}:${dir}`, "-w", REPO, o.image, ...args);
    r = spawnSync("docker", docker, { stdio: "inherit", env });
  } else {
    err(
      `k6 is missing: \`k6 archive\` needs k6 v${K6_MAJOR} on PATH or a running Docker daemon (for ${o.image}); DRY_RUN=1 renders the manifests without it`,
    );
    return null;
  }
  if (r.status !== 0 || !existsSync(out)) {
    err(`k6 archive failed (exit ${r.status ?? r.error?.message})`);
    return null;
  }
  return readFileSync(out);
}

type Kubectl = (args: string[], input?: string) => { ok: boolean; out: string; err: string };

function kubectlFor(env: NodeJS.ProcessEnv): { bin: string; context: string[]; run: Kubectl } {
  const own = join(REPO, "tools/bin/kubectl");
  const bin = env.KUBECTL || (has("kubectl", env.PATH) ? "kubectl" : existsSync(own) ? own : "kubectl");
  const context = env.KUBE_CONTEXT ? ["--context", env.KUBE_CONTEXT] : [];
  return {
    bin,
    context,
    run: (args, input) => {
      const r = spawnSync(bin, [...context, ...args], { encoding: "utf8", input, env, timeout: 120_000 });
      return { ok: r.status === 0, out: r.stdout ?? "", err: (r.stderr ?? r.error?.message ?? "").trim() };
    },
  };
}

type RunnerPod = { name: string; index: number; phase: string; exitCode: number | undefined };

function runnerPods(kubectl: Kubectl, o: LoadClusterOptions): RunnerPod[] {
  // the operator labels runner pods app=k6, k6_cr=<TestRun name>, runner=true (v1.6.0)
  const r = kubectl(["-n", o.namespace, "get", "pods", "-l", `k6_cr=${o.name},runner=true`, "-o", "json"]);
  if (!r.ok) return [];
  type Pod = {
    metadata: { name: string; labels?: Record<string, string> };
    status?: {
      phase?: string;
      containerStatuses?: { name: string; state?: { terminated?: { exitCode: number } } }[];
    };
  };
  const items = (JSON.parse(r.out) as { items: Pod[] }).items;
  return items.map((p) => ({
    name: p.metadata.name,
    // job <name>-<i>: the pod's job-name label
    index: Number(/-(\d+)$/.exec(p.metadata.labels?.["job-name"] ?? "")?.[1] ?? 0),
    phase: p.status?.phase ?? "Unknown",
    exitCode: p.status?.containerStatuses?.find((c) => c.name === "k6")?.state?.terminated?.exitCode,
  }));
}

const fmtPeak = (v: number) => v.toLocaleString("en-US", { maximumFractionDigits: 1 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mmss = (s: number) => `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;

export async function main(env: NodeJS.ProcessEnv): Promise<number> {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d+Z$/, "")
    .toLowerCase();
  const o = optionsFrom(env, stamp);
  if (typeof o === "string") {
    err(o);
    return 2;
  }
  const dryRun = env.DRY_RUN === "1";
  const split = splitProblems(o.scenario, o.targetRps, o.parallelism);
  if (split.length > 0) {
    for (const p of split) err(p);
    return 2;
  }
  const dir = resolve(REPO, env.RESULTS_DIR || join("load", "results"), "cluster", o.name);
  mkdirSync(dir, { recursive: true });
  const shown = relative(REPO, dir).startsWith("..") ? dir : relative(REPO, dir);
  const tar = dryRun ? null : archive(o, dir, env);
  if (!dryRun && !tar) return 1;
  if (tar && tar.length > CONFIGMAP_MAX_BYTES) {
    err(`the archive is ${tar.length} bytes; a ConfigMap holds at most ${CONFIGMAP_MAX_BYTES}`);
    return 1;
  }
  const shape = clusterShape(o.scenario, o.targetRps);
  const share = runnerShares(shape, o.parallelism)[0];
  // after the archive: where k6 is missing, its one line is all that is printed
  say(
    `${o.scenario} at TARGET_RPS=${o.targetRps} over ${o.parallelism} runners (${fmtPeak(peakOf(shape) / o.parallelism)} ${shape.executor === "ramping-vus" ? "VUs" : "req/s"} each at the peak${share?.maxVUs ? `, up to ${share.maxVUs} VUs` : ""}) against ${o.baseUrl}; files in ${shown}/`,
  );
  const cm = configMap(o, tar);
  const tr = testRun(o);
  writeFileSync(join(dir, "configmap.json"), `${JSON.stringify(cm, null, 2)}\n`);
  writeFileSync(join(dir, "testrun.json"), `${JSON.stringify(tr, null, 2)}\n`);

  const k = kubectlFor(env);
  const ctx = k.context.join(" ");
  const kc = `${k.bin}${ctx ? ` ${ctx}` : ""}`;
  if (dryRun) {
    say(`DRY_RUN=1: wrote ${shown}/configmap.json (no archive) and ${shown}/testrun.json; would run:`);
    say(`  ${kc} create namespace ${o.namespace}   (when missing)`);
    say(`  ${kc} create -f ${shown}/configmap.json -f ${shown}/testrun.json`);
    say(`  ${kc} -n ${o.namespace} get testrun ${o.name} -o jsonpath={.status.stage}   (until finished or error)`);
    say(`  ${kc} -n ${o.namespace} logs <each runner pod: -l k6_cr=${o.name},runner=true>`);
    return 0;
  }

  const crd = k.run(["get", "crd", "testruns.k6.io", "-o", "name"]);
  if (!crd.ok) {
    err(
      `no k6-operator in the cluster (kubectl get crd testruns.k6.io: ${crd.err.split("\n")[0]}): K6_OPERATOR=1 make kind-up installs it, or see load/README.md`,
    );
    return 1;
  }
  if (!k.run(["get", "namespace", o.namespace, "-o", "name"]).ok) {
    const ns = k.run(["create", "namespace", o.namespace]);
    if (!ns.ok) {
      err(`kubectl create namespace ${o.namespace}: ${ns.err}`);
      return 1;
    }
  }
  // create, not apply: the archive would not fit apply's last-applied annotation (256 KiB)
  for (const [what, obj] of [
    ["ConfigMap", cm],
    ["TestRun", tr],
  ] as const) {
    const r = k.run(["create", "-f", "-"], JSON.stringify(obj));
    if (!r.ok) {
      err(`kubectl create ${what} ${o.name}: ${r.err}`);
      return 1;
    }
    say(`created ${what} ${o.namespace}/${o.name}`);
  }

  const timeScale = Number(o.timeScale ?? "1");
  const expectedS = Math.ceil(durationOf(shape) * timeScale);
  const limitS = Number(env.LOAD_CLUSTER_TIMEOUT_S) > 0 ? Number(env.LOAD_CLUSTER_TIMEOUT_S) : expectedS + 900;
  const started = Date.now();
  let pods: RunnerPod[] = [];
  let stage = "";
  let lastLine = "";
  for (;;) {
    const elapsedS = (Date.now() - started) / 1000;
    stage = k.run(["-n", o.namespace, "get", "testrun", o.name, "-o", "jsonpath={.status.stage}"]).out.trim();
    pods = runnerPods(k.run, o);
    const done = pods.filter((p) => p.phase === "Succeeded" || p.phase === "Failed");
    const running = pods.filter((p) => p.phase === "Running").length;
    const line = `stage=${stage || "-"} runners: ${running} running, ${done.length} done of ${o.parallelism}`;
    if (line !== lastLine || Math.floor(elapsedS) % 60 < 10) {
      say(`[${mmss(elapsedS)} of about ${mmss(expectedS)} + setup, limit ${mmss(limitS)}] ${line}`);
      lastLine = line;
    }
    if (stage === "finished" || stage === "error" || done.length >= o.parallelism) break;
    if (elapsedS > limitS) {
      err(
        `the run did not finish within ${limitS}s (LOAD_CLUSTER_TIMEOUT_S); left in the cluster: ${kc} -n ${o.namespace} get testrun ${o.name}`,
      );
      return 1;
    }
    await sleep(10_000);
  }

  const summaries: Summary[] = [];
  let missing = 0;
  for (const pod of [...pods].sort((a, b) => a.index - b.index)) {
    const log = k.run(["-n", o.namespace, "logs", pod.name, "-c", "k6"]);
    writeFileSync(join(dir, `runner-${pod.index}.log`), log.out);
    const s = summaryFromLog(log.out);
    if (!s) {
      missing++;
      err(
        `runner ${pod.index} (${pod.name}, exit ${pod.exitCode ?? "?"}) printed no summary: see ${shown}/runner-${pod.index}.log`,
      );
      continue;
    }
    writeFileSync(join(dir, `runner-${pod.index}-summary.json`), `${JSON.stringify(s, null, 2)}\n`);
    summaries.push(s);
  }
  if (summaries.length > 0) {
    const c = combine(summaries);
    writeFileSync(join(dir, "combined.json"), `${JSON.stringify(c, null, 2)}\n`);
    for (const line of report(c)) say(line);
  }
  say(`stage ${stage}; runner exit codes: ${pods.map((p) => `${p.index}:${p.exitCode ?? "?"}`).join(" ")}`);
  if (env.KEEP === "1") {
    say(`KEEP=1: left ${o.namespace}/${o.name} (TestRun, jobs, ConfigMap) in the cluster`);
  } else {
    k.run(["-n", o.namespace, "delete", "testrun", o.name, "--wait=false"]);
    k.run(["-n", o.namespace, "delete", "configmap", o.name, "--wait=false"]);
  }
  if (missing > 0 || summaries.length < o.parallelism || pods.length < o.parallelism) return 1;
  if (pods.some((p) => p.exitCode === 99)) return 99;
  return pods.every((p) => p.exitCode === 0) ? 0 : 1;
}

if (import.meta.main) process.exitCode = await main(process.env);
