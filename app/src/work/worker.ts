// Entry point of each worker thread in the pool: piscina calls the default export per task.
import { runWork, type WorkInput, type WorkResult } from "./task.ts";

export default function work(input: WorkInput): WorkResult {
  return runWork(input);
}
