// A database that cannot be reached, is starting or shutting down, or is out of connections
// is an outage (503, retry shortly), not a bug in the request or in our code.

const unavailableMessages = [
  "timeout exceeded when trying to connect",
  "Connection terminated",
  "connect ECONNREFUSED",
  "Client has encountered a connection error",
];
const unavailableNodeCodes = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EPIPE"]);
// SQLSTATE: 53300 too_many_connections, 57P01 admin_shutdown, 57P02 crash_shutdown,
// 57P03 cannot_connect_now, 08xxx connection exceptions, 25006 read_only_sql_transaction
// (a write reached a replica being promoted or demoted).
const unavailableSqlStates = /^(53300|57P0[123]|08\w{3}|25006)$/;

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (unavailableNodeCodes.has(code) || unavailableSqlStates.test(code))) return true;
  return unavailableMessages.some((text) => error.message.includes(text));
}
