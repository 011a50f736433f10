import { pino } from "pino";

export type Logger = pino.Logger;

// Anything that can carry a credential is removed before a line is written.
const redactedPaths = [
  "req.headers.cookie",
  "req.headers.authorization",
  'res.headers["set-cookie"]',
  "password",
  "*.password",
  "config.session.secrets",
  "config.redis.password",
];

export function createLogger(options: { level: string; instance: string }): Logger {
  return pino({
    level: options.level,
    base: { instance: options.instance },
    redact: { paths: redactedPaths, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
