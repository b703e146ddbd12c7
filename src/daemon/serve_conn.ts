// One connection to the resident helper (docs/protocol.md §7.3): the request must arrive within
// 2 s of the accept, at most 65 536 bytes, ended by the client; then the very code of --pam
// decides it (src/pam/request.ts), the reply is written and the connection closed. Beyond the limit
// of requests in progress, the busy reply goes out at once without the request being decided.
// Both of those replies name the user when the request's first bytes had come (request_user.ts).
import { Deadline, TimeoutError } from "../common/deadline.ts";
import type { DaemonLog } from "./daemon_log.ts";
import type { DaemonStats } from "./daemon_stats.ts";
import { closeQuietly } from "../kopano/http.ts";
import { encodeReply, MAX_REQUEST } from "../pam/protocol.ts";
import { handleRequest, internalError, type RequestOptions } from "../pam/request.ts";
import { USER_PREFIX_BYTES, userField } from "./request_user.ts";
import { parseStatusQuery } from "./status_query.ts";

export const REQUEST_MS = 2000;
export const MAX_IN_PROGRESS = 128;
/** Busy connections whose unread request is drained (so the client sees the reply, not a reset). */
const MAX_DRAINING = 256;
const WRITE_MS = 2000;
/** How long a busy connection's first bytes are waited for, to name the user in the reply. */
const BUSY_PEEK_MS = 50;
const enc = new TextEncoder();

/** The busy reply as §7.3 spells it, with "; user=NAME" when the request named one. */
export function busyReply(user: string | null = null): string {
  const message =
    `pam_mapi daemon busy: ${MAX_IN_PROGRESS} requests in progress; login not checked`;
  return encodeReply("PAM_AUTHINFO_UNAVAIL", [
    { priority: "err", message: user ? `${message}; ${user}` : message },
  ]);
}

function lateReply(user: string | null): string {
  const message = "request not received in time";
  return encodeReply("PAM_SERVICE_ERR", [
    { priority: "err", message: user ? `${message}; ${user}` : message },
  ]);
}

export interface ConnectionContext {
  stats: DaemonStats;
  log: DaemonLog;
  /** How requests are decided: the --pam code with the daemon's CA cache and connection pool. */
  request: RequestOptions;
  /** The reply to a status query (src/daemon/status_query.ts). */
  statusReply(touch: number): string;
}

type Received =
  /** `ended`: the client's end of stream was seen (not so when the request is too large). */
  | { kind: "request"; bytes: Uint8Array; ended: boolean }
  /** `user`: the user= field, when the bytes that came name one. */
  | { kind: "late"; user: string | null }
  | { kind: "gone" };

/** Reads to the client's end of stream, at most MAX_REQUEST + 1 bytes (enough to see too many). */
async function receive(conn: Deno.Conn, deadline: Deadline): Promise<Received> {
  let buf = new Uint8Array(4096);
  let len = 0;
  let ended = false;
  try {
    for (;;) {
      if (len === buf.length) {
        if (len > MAX_REQUEST) break; // too large: decoding says so
        const bigger = new Uint8Array(Math.min(buf.length * 4, MAX_REQUEST + 1));
        bigger.set(buf);
        buf.fill(0); // may hold a password
        buf = bigger;
      }
      const n = await deadline.race(conn.read(buf.subarray(len)));
      if (n === null) {
        ended = true;
        break;
      }
      len += n;
    }
  } catch (e) {
    const late = e instanceof TimeoutError;
    const user = late ? userField(buf.subarray(0, len)) : null;
    buf.fill(0);
    return late ? { kind: "late", user } : { kind: "gone" };
  }
  return { kind: "request", bytes: buf.subarray(0, len), ended };
}

/**
 * The user= field of what a busy connection has sent within BUSY_PEEK_MS (the module sends its
 * whole request at once), or null. Reads at most USER_PREFIX_BYTES; drain() reads the rest.
 */
async function peekUser(conn: Deno.Conn): Promise<string | null> {
  const deadline = new Deadline(BUSY_PEEK_MS);
  const buf = new Uint8Array(USER_PREFIX_BYTES);
  let len = 0;
  try {
    while (len < buf.length) {
      const n = await deadline.race(conn.read(buf.subarray(len)));
      if (n === null) break;
      len += n;
      if (userField(buf.subarray(0, len))) break;
    }
  } catch {
    // not in time, or gone: whatever came may still name the user
  } finally {
    deadline.cancel();
  }
  const user = userField(buf.subarray(0, len));
  buf.fill(0); // may hold the start of the password
  return user;
}

/**
 * After a reply to a request that was not read to its end: our end of stream, then read to the
 * client's (dropping what it sends), so that the unread bytes do not make the kernel reset the
 * connection under the reply. Within REQUEST_MS, at most about MAX_REQUEST bytes.
 */
async function drain(conn: Deno.Conn): Promise<void> {
  const deadline = new Deadline(REQUEST_MS);
  const scratch = new Uint8Array(16 * 1024);
  try {
    await conn.closeWrite();
    for (let total = 0; total <= MAX_REQUEST;) {
      const n = await deadline.race(conn.read(scratch));
      if (n === null) break;
      total += n;
    }
  } finally {
    scratch.fill(0);
    deadline.cancel();
  }
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = enc.encode(text);
  const deadline = new Deadline(WRITE_MS);
  try {
    let off = 0;
    while (off < bytes.length) off += await deadline.race(conn.write(bytes.subarray(off)));
  } finally {
    deadline.cancel();
  }
}

/** Serves one accepted connection (counted in stats.inProgress by the caller); never throws. */
export async function serveConnection(conn: Deno.Conn, ctx: ConnectionContext): Promise<void> {
  const { stats } = ctx;
  const deadline = new Deadline(REQUEST_MS);
  let writing = false; // past this point a failure is the client's (gone, or not reading)
  const reply = async (text: string) => {
    writing = true;
    await writeAll(conn, text);
  };
  try {
    const got = await receive(conn, deadline);
    deadline.cancel();
    if (got.kind === "gone") {
      stats.malformed++; // the client went away before its request was complete
      return;
    }
    if (got.kind === "late") {
      stats.late++;
      await reply(lateReply(got.user));
      return;
    }
    const start = performance.now();
    const query = parseStatusQuery(got.bytes);
    if (query) {
      stats.statusQueries++;
      await reply(ctx.statusReply(query.touch));
      return;
    }
    const h = await handleRequest(got.bytes, ctx.request); // wipes the request bytes
    if (h.kind === "malformed") stats.malformed++;
    if (h.kind === "internal") internal(ctx, h.error!);
    await reply(h.reply);
    if (h.kind !== "malformed") stats.login(h.result, performance.now() - start);
    if (!got.ended) await drain(conn);
  } catch (e) {
    // A bug here, before any reply, still gets its PAM_SERVICE_ERR (fail closed).
    if (!writing) {
      const h = internalError(e);
      internal(ctx, h.error!);
      await writeAll(conn, h.reply).catch(() => {});
    }
  } finally {
    deadline.cancel();
    closeQuietly(conn);
  }
}

function internal(ctx: ConnectionContext, error: string): void {
  ctx.stats.internalErrors++;
  ctx.log.limited("internal", `internal error (${error}) in a request: answered PAM_SERVICE_ERR`);
}

let draining = 0;

/**
 * The busy reply (§7.3): written at once, naming the user when the request's first bytes are
 * there within BUSY_PEEK_MS; then what the client sends is read and dropped.
 */
export async function refuseBusy(conn: Deno.Conn, ctx: ConnectionContext): Promise<void> {
  ctx.stats.rejectedBusy++;
  ctx.log.limited(
    "busy",
    `busy: ${MAX_IN_PROGRESS} requests in progress; a login was answered PAM_AUTHINFO_UNAVAIL`,
  );
  const drains = draining < MAX_DRAINING;
  if (drains) draining++;
  try {
    // Without a draining slot, nothing is read: the reply goes out at once, without a user.
    await writeAll(conn, busyReply(drains ? await peekUser(conn) : null));
    if (drains) await drain(conn);
  } catch {
    // late or gone: close anyway
  } finally {
    if (drains) draining--;
    closeQuietly(conn);
  }
}
