// Kept-alive connections to the Kopano servers, for the resident helper: an https:// login then
// no longer pays a TLS handshake, nor any login a TCP handshake. A connection is lent to one
// attempt at a time and comes back only when that attempt saw nothing wrong on it (src/kopano/http.ts
// Channel.finish). Idle connections are closed before the server would drop them, at most a
// few are kept per server, and connections are never shared between different trust anchors.
// An idle connection on which anything arrives is closed, never lent (src/daemon/pool_watch.ts).
import type { SocketSpec } from "../kopano/socket_spec.ts";
import type { Connector } from "../kopano/attempt.ts";
import { openConnection, targetName } from "../kopano/connect.ts";
import { closeQuietly, type Link } from "../kopano/http.ts";
import { Lent, Watch } from "./pool_watch.ts";

/** kopano-server closes TCP/TLS connections idle longer than server_recv_timeout, 5 s by default. */
export const IDLE_TCP_MS = 4000;
/** It never idle-closes UNIX connections; still, a connection nobody uses is given back. */
export const IDLE_UNIX_MS = 60_000;
export const MAX_IDLE_PER_SERVER = 16;
export const MAX_IDLE = 128;

interface Idle {
  conn: Link;
  timer: ReturnType<typeof setTimeout>;
  watch: Watch;
  state: "idle" | "lent" | "closed";
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

  /** A Connector (src/kopano/attempt.ts) for logins that trust `caIdentity`. */
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
        done: (link, reusable) => {
          // A lent connection is watched again only once its watch's read was taken over.
          const conn = link instanceof Lent ? link.conn : link;
          const clean = !(link instanceof Lent) || link.readFrom;
          if (reusable && clean && key !== null) this.#give(key, conn, idleMs);
          else this.#close(conn);
        },
      };
    };
  }

  /**
   * The most recently used idle connection. One on which anything arrived is not here any more:
   * its watch closed it when the event loop saw the read end, even in the same turn of the loop
   * as this take (the watch's callback runs two promise steps after its read; a login reaches
   * this point many steps after whatever woke it). Bytes that arrive later, while the request is
   * on its way, cannot be told from the reply, by any client.
   */
  #take(key: string): Link | null {
    const idle = this.#idle.get(key)?.pop();
    if (!idle) return null;
    this.#unlist(key, idle);
    idle.state = "lent";
    this.#reused++;
    return new Lent(idle.conn, idle.watch);
  }

  /** Takes `idle`, popped from or still in its list, out of the pool's books. */
  #unlist(key: string, idle: Idle): void {
    clearTimeout(idle.timer);
    const list = this.#idle.get(key);
    const at = list?.indexOf(idle) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    if (list?.length === 0) this.#idle.delete(key);
    this.#idleCount--;
  }

  #give(key: string, conn: Link, idleMs: number): void {
    const list = this.#idle.get(key) ?? [];
    if (this.#closed || list.length >= MAX_IDLE_PER_SERVER || this.#idleCount >= MAX_IDLE) {
      this.#close(conn);
      return;
    }
    const entry: Idle = {
      conn,
      state: "idle",
      timer: setTimeout(() => {
        if (entry.state !== "idle") return;
        this.#unlist(key, entry);
        entry.state = "closed";
        this.#close(conn);
      }, idleMs),
      // Anything at all on an idle connection: close it.
      watch: new Watch(conn, () => {
        if (entry.state !== "idle") return; // the login's now, or gone
        this.#unlist(key, entry);
        entry.state = "closed";
        this.#close(conn);
      }),
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
        idle.state = "closed";
        this.#close(idle.conn);
      }
    }
    this.#idle.clear();
    this.#idleCount = 0;
  }
}
