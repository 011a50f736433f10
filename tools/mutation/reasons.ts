// Why a surviving mutant is left alive, by kind. `make mutation` prints each survivor with the
// first reason that fits, and counts those that fit none: each of those is either a missing
// test or a reason still to be written here. A reason names a kind of code, never one line,
// so that it keeps fitting as the code moves.

export type Survivor = { file: string; mutator: string; replacement: string; code: string; status: string };

type Reason = { why: string; fits: (s: Survivor) => boolean };

const logCall = /\b(log|req\.log|options\.log)\.(trace|debug|info|warn|error|fatal)\(/;
const textOnly = new Set(["StringLiteral", "ObjectLiteral"]);

export const REASONS: Reason[] = [
  {
    why: "the wording or fields of a log line: logs are for people, and no test pins their text",
    fits: (s) => logCall.test(s.code) && (textOnly.has(s.mutator) || s.mutator === "ArrowFunction"),
  },
  {
    why: "the text of an error message whose code and status the tests do check",
    fits: (s) =>
      s.mutator === "StringLiteral" &&
      /\b(redisUnavailable|badRequest|unavailable|new AppError|new Error|err)\(/.test(s.code),
  },
  {
    why: "unref() only decides whether a timer keeps the process alive at exit; tests never exit through it",
    fits: (s) => s.mutator === "CallExpression" && /\.unref\(\)/.test(s.code),
  },
  {
    why: "the capacity CLI's entry and printing lines: `make capacity` runs them; the tests call main() and the arithmetic",
    fits: (s) =>
      s.file === "load/capacity.ts" &&
      (/import\.meta\.main|process\.(argv|stdout|stderr)|\bout\(|\berr\(|`\s*$/.test(s.code) ||
        (s.mutator === "StringLiteral" && /`/.test(s.code))),
  },
  {
    why: "a default for a seam that only tests override (a window, a prefix, a folder): production always passes the value",
    fits: (s) => /^\s*(export )?(async )?function\b.*=\s*("|\d|join\()/.test(s.code) || /prefix \?\? "/.test(s.code),
  },
  {
    why: "a metric's help text or label value, read by people and dashboards, not by the code's behaviour",
    fits: (s) => s.mutator === "StringLiteral" && /\bhelp:|\bname: "nodescale_|labelNames/.test(s.code),
  },
];

export function reasonFor(s: Survivor): string | undefined {
  return REASONS.find((r) => r.fits(s))?.why;
}
