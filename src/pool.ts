// Kept-alive connections to the Kopano servers, for the resident helper: an https:// login then
// no longer pays a TLS handshake, nor any login a TCP handshake. A connection is lent to one
// attempt at a time and comes back only when that attempt saw nothing wrong on it (src/http.ts
// Channel.finish). Idle connections are closed before the server would drop them, at most a
// few are kept per server, and connections are never shared between different trust anchors.
import type { SocketSpec } from "./args.ts";
import type { Connector } from "./attempt.ts";
import { openConnection, targetName } from "./connect.ts";
import { closeQuietly, type Link } from "./http.ts";

/** kopano-server closes TCP/TLS connections idle longer than server_recv_timeout, 5 s by default. */
export const IDLE_TCP_MS = 4000;
/** It never idle-closes UNIX connections; still, a connection nobody uses is given back. */
export const IDLE_UNIX_MS = 60_000;
export const MAX_IDLE_PER_SERVER = 16;
export const MAX_IDLE = 128;

interface Idle {
  conn: Link;
  timer: ReturnType<typeof setTimeout>;
}

export interface PoolStats {
  /** Connections open now (lent to a login or idle). */
  open: number;
  idle: number;
  /** Since start: connections opened, and logins' calls served by a kept-alive one. */
  opened: number;
  reused: number;
}

/**
 * What makes a connection different: transport, host, port, UNIX path and, for https://, the
 * trust anchors it was verified against (the CA set's identity: file and content).
 */
export function poolKey(spec: SocketSpec, caIdentity: string | null): string | null {
  if (spec.kind === "https" && caIdentity === null) return null; // unknown anchors: never kept
  const ca = spec.kind === "https" ? caIdentity : "";
  return JSON.stringify([spec.kind, spec.host, spec.port, spec.socketPath, ca]);
}

export class ConnectionPool {
  /** Idle connections per key, the most recently used last. */
  #idle = new Map<string, Idle[]>();
  #idleCount = 0;
  #open = 0;
  #opened = 0;
  #reused = 0;
  #closed = false;

  /** A Connector (src/attempt.ts) for logins that trust `caIdentity`. */
  connector(caIdentity: string | null): Connector {
    return (spec, caCerts, deadline, report) => {
      const key = poolKey(spec, caIdentity);
      const idleMs = spec.kind === "unix" ? IDLE_UNIX_MS : IDLE_TCP_MS;
      return {
        take: () => {
          const conn = key === null ? null : this.#take(key);
          if (conn) {
            report("connect", true, `reusing a kept-alive connection to ${targetName(spec)}`);
          }
          return conn;
        },
        open: async () => {
          const conn = await openConnection(spec, deadline, caCerts, report);
          this.#open++;
          this.#opened++;
          return conn;
        },
        done: (conn, reusable) => {
          if (reusable && key !== null) this.#give(key, conn, idleMs);
          else this.#close(conn);
        },
      };
    };
  }

  #take(key: string): Link | null {
    const idle = this.#idle.get(key)?.pop();
    if (!idle) return null;
    clearTimeout(idle.timer);
    this.#idleCount--;
    if (this.#idle.get(key)!.length === 0) this.#idle.delete(key);
    this.#reused++;
    return idle.conn;
  }

  #give(key: string, conn: Link, idleMs: number): void {
    const list = this.#idle.get(key) ?? [];
    if (this.#closed || list.length >= MAX_IDLE_PER_SERVER || this.#idleCount >= MAX_IDLE) {
      this.#close(conn);
      return;
    }
    const entry: Idle = {
      conn,
      timer: setTimeout(() => {
        const at = list.indexOf(entry);
        if (at < 0) return;
        list.splice(at, 1);
        if (list.length === 0 && this.#idle.get(key) === list) this.#idle.delete(key);
        this.#idleCount--;
        this.#close(conn);
      }, idleMs),
    };
    list.push(entry);
    this.#idle.set(key, list);
    this.#idleCount++;
  }

  #close(conn: Link): void {
    closeQuietly(conn);
    this.#open--;
  }

  stats(): PoolStats {
    return { open: this.#open, idle: this.#idleCount, opened: this.#opened, reused: this.#reused };
  }

  /** Closes every idle connection; connections given back later are closed too. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) {
      for (const idle of list) {
        clearTimeout(idle.timer);
        this.#close(idle.conn);
      }
    }
    this.#idle.clear();
    this.#idleCount = 0;
  }
}
