import { Router } from "express";
import { z } from "zod";
import type { WorkerPool } from "../../work/pool.ts";
import { jsonBody, noQuery, parse } from "../validate.ts";

// The text limit keeps one task bounded (about 0.1-1 s of one core at the top); the body
// limit leaves room for JSON escaping of that text.
const MAX_TEXT_CHARS = 512 * 1024;

const workRequest = z.strictObject({
  text: z.string().min(1).max(MAX_TEXT_CHARS),
  iterations: z.number().int().min(1).max(1000).default(100),
});

export function workRouter(deps: { workers: WorkerPool }) {
  const router = Router();
  router.post("/api/work", noQuery, ...jsonBody("3mb"), async (req, res) => {
    const input = parse(workRequest, req.body);
    res.json(await deps.workers.run(input));
  });
  return router;
}
