// PostgreSQL prints a WAL position (pg_lsn) as two hex halves, "16/B374D848"; as a 64-bit
// number they compare in order.

const lsnPattern = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i;

export function parseLsn(text: string): bigint {
  const match = lsnPattern.exec(text);
  if (match === null) throw new Error(`not a WAL position: ${JSON.stringify(text)}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function isLsn(text: unknown): text is string {
  return typeof text === "string" && lsnPattern.test(text);
}
