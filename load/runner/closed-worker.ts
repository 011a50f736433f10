// One thread of runClosedThreads (drive.ts): a closed-loop run of its share of a job's
// requests (every threads-th request number, from its index), posted back raw.

import { parentPort, workerData } from "node:worker_threads";
import { type Job, jobRequest, runClosedPart } from "./drive.ts";

const { base, job, index, threads, connections, durationS } = workerData as {
  base: string;
  job: Job;
  index: number;
  threads: number;
  connections: number;
  durationS: number;
};

const part = await runClosedPart(base, (i) => jobRequest(job, index + i * threads), { connections, durationS });
parentPort?.postMessage(part);
