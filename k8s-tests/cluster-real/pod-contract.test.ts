// pod-contract: what the chart declares about the app's pods holds in a running container,
// where kwok could only show the spec: a numeric non-root user, a read-only root with a
// writable /tmp, no capabilities, no service-account token, and the schema migration run
// as the chart says (an initContainer that completed before the app started).
import assert from "node:assert/strict";
import { test } from "node:test";
import { appPods, isReady, type Json, kubectlMust, NAMESPACE, realCluster } from "./lib.ts";

const c = await realCluster();

/** Runs a Node one-liner in the app container (the image has node and no shell). */
async function inPod(pod: string, script: string): Promise<string> {
  return (await kubectlMust(c, ["exec", "-n", NAMESPACE, pod, "-c", "nodescale", "--", "node", "-e", script])).trim();
}

test("pod-contract: uid 10001, read-only root, writable /tmp, no capabilities, no token", async () => {
  const pod = (await appPods(c)).find(isReady);
  assert.ok(pod, "a ready app pod");
  const name = pod.metadata.name;
  const facts = JSON.parse(
    await inPod(
      name,
      `const fs = require("node:fs");
       const tryWrite = (f) => { try { fs.writeFileSync(f, "x"); fs.unlinkSync(f); return "written"; } catch (e) { return e.code; } };
       const status = fs.readFileSync("/proc/self/status", "utf8");
       console.log(JSON.stringify({
         uid: process.getuid(), gid: process.getgid(),
         root: tryWrite("/probe"), app: tryWrite("/app/probe"), tmp: tryWrite("/tmp/probe"),
         capEff: /CapEff:\\s*(\\S+)/.exec(status)[1], noNewPrivs: /NoNewPrivs:\\s*(\\S+)/.exec(status)[1],
         token: fs.existsSync("/var/run/secrets/kubernetes.io/serviceaccount"),
       }));`,
    ),
  );
  console.log(`${name}: ${JSON.stringify(facts)}`);
  assert.equal(facts.uid, 10001, "runs as uid 10001");
  assert.equal(facts.gid, 10001, "runs as gid 10001");
  assert.equal(facts.root, "EROFS", "the root filesystem is read-only");
  assert.equal(facts.app, "EROFS", "/app is read-only");
  assert.equal(facts.tmp, "written", "/tmp is writable (an emptyDir)");
  assert.match(facts.capEff, /^0+$/, "no effective capabilities");
  assert.equal(facts.noNewPrivs, "1", "no privilege escalation");
  assert.equal(facts.token, false, "no service-account token is mounted");
});

test("pod-contract: the migration runs as declared, before the app starts", async () => {
  const pods = await appPods(c);
  assert.ok(pods.length >= 1, "app pods");
  for (const pod of pods as Json[]) {
    const declared = (pod.spec.initContainers ?? []).find((x: Json) => x.name === "migrate");
    assert.ok(declared, `${pod.metadata.name} declares the migrate initContainer`);
    assert.deepEqual(declared.command, ["node", "dist/main.js", "migrate"]);
    const ran = (pod.status.initContainerStatuses ?? []).find((x: Json) => x.name === "migrate");
    assert.equal(ran?.state?.terminated?.exitCode, 0, `${pod.metadata.name}: migrate exited 0`);
    assert.equal(ran?.state?.terminated?.reason, "Completed");
    const app = (pod.status.containerStatuses ?? []).find((x: Json) => x.name === "nodescale");
    const appStarted = Date.parse(app?.state?.running?.startedAt ?? "");
    const migrateFinished = Date.parse(ran.state.terminated.finishedAt);
    assert.ok(appStarted >= migrateFinished, `${pod.metadata.name}: the app started after migrate finished`);
  }
});
