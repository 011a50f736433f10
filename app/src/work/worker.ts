// Entry point of each worker thread in the pool: piscina calls the default export per task.
import { type BodyError, parseWorkBody } from "./input.ts";
import { runWork, type WorkInput, type WorkResult } from "./task.ts";

/** Either a checked input, or the raw bytes of a request body to parse and check here first. */
export type WorkTask = WorkInput | { body: Uint8Array };

export default function work(task: WorkTask): WorkResult | BodyError {
  if (!("body" in task)) return runWork(task);
  const parsed = parseWorkBody(task.body);
  return "error" in parsed ? parsed : runWork(parsed.input);
}
