import { createHash } from "node:crypto";

// The CPU task behind POST /api/work: a SHA-256 hash chain over the posted text plus a word
// frequency count. Both scale with the input, so the cost per request is real and tunable.
// It runs on a worker thread; the event loop only hands the input over.

export type WorkInput = { text: string; iterations: number };
export type WorkResult = {
  digest: string;
  iterations: number;
  bytes: number;
  words: number;
  topWords: { word: string; count: number }[];
};

export function runWork({ text, iterations }: WorkInput): WorkResult {
  const data = Buffer.from(text, "utf8");
  let digest = createHash("sha256").update(data).digest();
  for (let round = 1; round < iterations; round++) {
    digest = createHash("sha256").update(digest).update(data).digest();
  }

  const counts = new Map<string, number>();
  let words = 0;
  for (const match of text.toLowerCase().matchAll(/[\p{L}\p{N}']+/gu)) {
    words++;
    counts.set(match[0], (counts.get(match[0]) ?? 0) + 1);
  }
  const topWords = [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 10)
    .map(([word, count]) => ({ word, count }));

  return { digest: digest.toString("hex"), iterations, bytes: data.length, words, topWords };
}
