// Installs (or upgrades) the release the e2e suite expects (`nodescale` in namespace
// `nodescale`, E2E_RELEASE / E2E_NAMESPACE) on the simulated cluster, the way the chart tests
// do: the chart with its Bitnami dependencies stripped, external services with their existing
// Secrets, Helm 4 with --wait. Used by e2e.sh (`make e2e-sim`).
//
//   node k8s-tests/cluster-sim/release.ts
import { join } from "node:path";
import { applyCrds, cluster, externalServiceSecrets, helmMust, kubectl, strippedChart, VALUES } from "./lib.ts";

const ns = process.env.E2E_NAMESPACE ?? "nodescale";
const release = process.env.E2E_RELEASE ?? "nodescale";
const c = await cluster();
await applyCrds(c);
const chart = strippedChart();
try {
  if ((await kubectl(c, ["get", "namespace", ns])).code !== 0) {
    await kubectl(c, ["create", "namespace", ns]);
    await externalServiceSecrets(c, ns);
  }
  const out = await helmMust(c, "helm4", [
    "upgrade",
    "--install",
    release,
    chart.dir,
    "-n",
    ns,
    "-f",
    join(VALUES, "external-services.yaml"),
    "--wait",
    "--wait-for-jobs",
    "--timeout",
    "4m",
  ]);
  console.log(out.split("\n").slice(0, 6).join("\n"));
} finally {
  chart.dispose();
}
