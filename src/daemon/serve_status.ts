// The resident helper's answer to a status query (docs/protocol.md §7.4): its counters, pool,
// memory and permissions, and the proof of its identity, its socket's times set as asked.
import type { CaCache } from "./ca_cache.ts";
import type { DaemonStats } from "./daemon_stats.ts";
import type { ConnectionPool } from "./pool.ts";
import { MAX_REQUEST } from "../pam/protocol.ts";
import { MAX_IN_PROGRESS, REQUEST_MS } from "./serve_conn.ts";
import { encodeStatusReply, PERMISSIONS, PROOF_HOLD_MS, TOUCH_WINDOW_MS } from "./status_query.ts";
import { VERSION } from "../common/version.ts";

export interface Listening {
  listener: Deno.Listener;
  /** Identity of the socket file we created, to remove or touch it only while it is ours. */
  dev: number;
  ino: number;
  /** Our uid: the owner of the socket we created. */
  uid: number;
}

export interface StatusSources {
  path: string;
  listening: Listening;
  stats: DaemonStats;
  pool: ConnectionPool;
  ca: CaCache;
  started: Date;
}

/** Whether `path` still names the socket we listen on (an administrator may have replaced it). */
export function stillOurs(path: string, l: Listening): boolean {
  try {
    const info = Deno.lstatSync(path);
    return info.isSocket === true && info.dev === l.dev && info.ino === l.ino;
  } catch {
    return false;
  }
}

/** Until when (performance.now()) the times last set are held for the query that asked. */
let heldUntil = 0;

/** Sets the socket's times to `ms`, the proof §7.4 asks for; says whether it did. */
function touch(path: string, l: Listening, ms: number): string {
  if (Math.abs(ms - Date.now()) > TOUCH_WINDOW_MS) return "refused: time too far from now";
  if (!stillOurs(path, l)) return "refused: the socket path no longer names our socket";
  const left = Math.ceil(heldUntil - performance.now());
  if (left > 0) return `busy: held for another status query's proof for ${left} ms more`;
  try {
    Deno.utimeSync(path, new Date(ms), new Date(ms));
    heldUntil = performance.now() + PROOF_HOLD_MS;
    return "done";
  } catch (e) {
    return `failed: ${(e as Error).name}`;
  }
}

function memoryKb() {
  const m = Deno.memoryUsage();
  const kb = (n: number) => Math.round(n / 1024);
  return {
    rss: kb(m.rss),
    heap_total: kb(m.heapTotal),
    heap_used: kb(m.heapUsed),
    external: kb(m.external),
  };
}

export function statusReply(src: StatusSources, touchMs: number): string {
  const { stats } = src;
  return encodeStatusReply({
    version: VERSION,
    pid: Deno.pid,
    uid: src.listening.uid,
    socket: src.path,
    started: src.started.toISOString(),
    uptime_s: Math.round((Date.now() - src.started.getTime()) / 100) / 10,
    limits: { in_progress: MAX_IN_PROGRESS, request_bytes: MAX_REQUEST, request_ms: REQUEST_MS },
    logins: { ...stats.logins },
    in_progress: stats.inProgress,
    rejected_busy: stats.rejectedBusy,
    malformed: stats.malformed,
    late: stats.late,
    internal_errors: stats.internalErrors,
    status_queries: stats.statusQueries,
    latency_ms: stats.percentiles(),
    kopano_connections: src.pool.stats(),
    ca_cache: src.ca.size,
    permissions: Object.fromEntries(
      PERMISSIONS.map((name) => [name, Deno.permissions.querySync({ name }).state]),
    ),
    memory_kb: memoryKb(),
    touch: touch(src.path, src.listening, touchMs),
  });
}
