// The status query of docs/protocol.md §7.4, both ends: `pam_mapi_helper status` asks, `serve`
// answers. The query also asks the daemon to prove who it is: to set its socket's timestamps to a
// time the client chose. Only the socket's owner (or root) can do that, and the shim trusts the
// socket only when root or the service account owns it, so a daemon that does it runs as one of
// them. (Deno has no SO_PEERCRED, and reading /proc needs every permission.)
import { JsonError, parseStrictJson } from "../pam/json_strict.ts";
import type { LoginCounts } from "./daemon_stats.ts";
import type { PoolStats } from "./pool.ts";

/** How far from the daemon's clock the time to set may be (ms): no arbitrary dates. */
export const TOUCH_WINDOW_MS = 10 * 60 * 1000;
/**
 * After it set its socket's times, the daemon sets them for no other query for this long (ms),
 * answering "busy: ... for N ms more" instead: the client that asked looks at them within that
 * time, and nobody else's query can change them under it (§7.4).
 */
export const PROOF_HOLD_MS = 500;
/** A status query is short; anything longer is treated as a login request. */
const MAX_QUERY = 256;

export interface StatusQuery {
  /** Milliseconds since the epoch to set the socket's access and modification times to. */
  touch: number;
}

/** The query, when `raw` is exactly one (§2 rules: exactly the keys v, query, touch); else null. */
export function parseStatusQuery(raw: Uint8Array): StatusQuery | null {
  if (raw.length > MAX_QUERY) return null;
  let doc;
  try {
    // The bytes, not a string: a short login request (its password in base64) comes here too.
    doc = parseStrictJson(raw);
  } catch (e) {
    if (e instanceof JsonError) return null;
    throw e;
  }
  if (doc.type !== "object" || doc.entries.size !== 3) return null;
  const v = doc.entries.get("v");
  const query = doc.entries.get("query");
  const touch = doc.entries.get("touch");
  if (v?.type !== "number" || v.raw !== "1") return null;
  if (query?.type !== "string" || query.value !== "status") return null;
  if (touch?.type !== "number" || !/^[0-9]{1,15}$/.test(touch.raw)) return null;
  return { touch: Number(touch.raw) };
}

export function encodeStatusQuery(q: StatusQuery): string {
  return JSON.stringify({ v: 1, query: "status", touch: q.touch });
}

/** The Deno permissions whose state the daemon reports. */
export const PERMISSIONS = ["net", "read", "write", "env", "run", "ffi", "sys", "import"] as const;

/** What the daemon reports (`pam_mapi_helper status --json` prints it as "daemon"). */
export interface DaemonStatus {
  version: string;
  pid: number;
  /** The daemon's uid (the owner of the socket it created). */
  uid: number;
  socket: string;
  /** ISO 8601 time of start, and seconds since. */
  started: string;
  uptime_s: number;
  limits: { in_progress: number; request_bytes: number; request_ms: number };
  logins: LoginCounts;
  /** Connections being served now, this status query included. */
  in_progress: number;
  rejected_busy: number;
  malformed: number;
  late: number;
  internal_errors: number;
  status_queries: number;
  /** Over the last `samples` logins, from the end of a request to its reply; null before any. */
  latency_ms: { p50: number | null; p95: number | null; samples: number };
  kopano_connections: PoolStats;
  ca_cache: { files: number; bytes: number };
  /** Deno permissions the daemon holds: "granted" for net, read and write, the rest given up. */
  permissions: Record<string, string>;
  /** The daemon's memory in KiB: resident, and the JavaScript heap's size, use and outside buffers. */
  memory_kb: { rss: number; heap_total: number; heap_used: number; external: number };
  /** "done" when the socket's times were set as asked, otherwise why not. */
  touch: string;
}

export function encodeStatusReply(s: DaemonStatus): string {
  return JSON.stringify({ v: 1, status: s });
}

export class StatusReplyError extends Error {}

/**
 * The `status` member of a status reply, not yet checked (status_fields.ts does that); throws
 * StatusReplyError when the reply is not one at all.
 */
export function decodeStatusReply(text: string): unknown {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new StatusReplyError("the reply is not JSON");
  }
  if (typeof doc !== "object" || doc === null || doc.v !== 1) {
    throw new StatusReplyError("the reply is not a version 1 object");
  }
  if (typeof doc.status !== "object" || doc.status === null) {
    const result = typeof doc.result === "string"
      ? ` (it answered ${doc.result.slice(0, 40)})`
      : "";
    throw new StatusReplyError(`the reply carries no status${result}`);
  }
  return doc.status;
}
