// Counting statements in the client side of the PostgreSQL wire protocol (v3), fed chunk by
// chunk as they arrive on a socket. Pure: pg-counter-worker.ts does the sockets.
//
// Before the startup message, a client may send SSLRequest, GSSENCRequest or CancelRequest:
// untyped messages (length, code). After it, every message is a type byte and a length. A
// simple Query ('Q') is one statement; in the extended protocol, Parse ('P') carries the SQL
// and Execute ('E') runs it, so an Execute is one statement of the class of the last Parse.

/** 0: any statement; 1: the replica-lag poll (replica); 2: a WAL-position read (primary). */
export type StatementClass = 0 | 1 | 2;

/** The primary's WAL position: the insert position (what the app asks for) or the write position. */
const WAL_POSITION = /pg_current_wal_(insert_)?lsn/;

export function classify(sql: string): StatementClass {
  if (sql.includes("pg_last_wal_replay_lsn")) return 1;
  if (WAL_POSITION.test(sql)) return 2;
  return 0;
}

const PROTOCOL_V3 = 196608;

export class StatementCounter {
  #buf: Buffer = Buffer.alloc(0);
  #started = false;
  #pendingParse: StatementClass = 0;
  /** Statements, replica-lag polls, WAL-position reads seen so far. */
  statements = 0;
  lagPolls = 0;
  walPositionQueries = 0;

  #count(c: StatementClass): void {
    this.statements++;
    if (c === 1) this.lagPolls++;
    if (c === 2) this.walPositionQueries++;
  }

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    while (true) {
      const buf = this.#buf;
      if (!this.#started) {
        if (buf.length < 8) return;
        const len = buf.readInt32BE(0);
        if (buf.length < len) return;
        if (buf.readInt32BE(4) === PROTOCOL_V3) this.#started = true;
        this.#buf = buf.subarray(len);
        continue;
      }
      if (buf.length < 5) return;
      const type = buf[0] as number;
      const len = buf.readInt32BE(1);
      if (buf.length < 1 + len) return;
      if (type === 0x51 /* Q */) {
        this.#count(classify(buf.toString("utf8", 5, len)));
      } else if (type === 0x50 /* P */) {
        // Parse: name\0 query\0 ...
        const nameEnd = buf.indexOf(0, 5);
        const queryEnd = buf.indexOf(0, nameEnd + 1);
        this.#pendingParse = classify(buf.toString("utf8", nameEnd + 1, queryEnd));
      } else if (type === 0x45 /* E */) {
        this.#count(this.#pendingParse);
      }
      this.#buf = buf.subarray(1 + len);
    }
  }
}
