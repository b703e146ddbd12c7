// Sessions as kopano-server keeps them: random ids, bound to the origin that logged on, expired
// after `session_timeout` without a call. Expiry is checked lazily (no timers to leak); the real
// server's cleaner runs every 5 s, so it may keep a dead session a few seconds longer.

import type { DirUser } from "./directory.ts";

export interface Session {
  id: bigint;
  user: DirUser;
  /** Who may use it: "ip:127.0.0.1" for TCP/TLS, "unix:..." for the UNIX socket. */
  origin: string;
  transport: "tcp" | "tls" | "unix";
  /** Client capability bits the logon asked for (after the server removed what it refused). */
  caps: number;
  /** Authenticated by the UNIX socket peer credentials rather than the password. */
  method: "password" | "socket";
  clientVersion: string | null;
  created: number;
  lastUsed: number;
}

/** Session info as exposed by sim.sessions(). */
export interface SimSessionInfo {
  id: string;
  user: string;
  origin: string;
  transport: "tcp" | "tls" | "unix";
  method: "password" | "socket";
  capabilities: number;
}

function randomId(large: boolean): bigint {
  const b = crypto.getRandomValues(new Uint8Array(8));
  const dv = new DataView(b.buffer);
  // Without LARGE_SESSIONID the server truncates ids to 32 bits.
  return large ? dv.getBigUint64(0) : BigInt(dv.getUint32(0));
}

export class SessionTable {
  #sessions = new Map<bigint, Session>();
  constructor(private timeoutMs: number, private now: () => number = Date.now) {}

  /** A fresh non-zero id not in use (also used for NO_REGISTER_SESSION replies). */
  newId(large: boolean): bigint {
    for (;;) {
      const id = randomId(large);
      if (id !== 0n && !this.#sessions.has(id)) return id;
    }
  }

  add(s: Omit<Session, "created" | "lastUsed">): Session {
    const t = this.now();
    const session: Session = { ...s, created: t, lastUsed: t };
    this.#sessions.set(s.id, session);
    return session;
  }

  #expired(s: Session): boolean {
    return this.now() - s.lastUsed > this.timeoutMs;
  }

  /** The session for a call from `origin`, refreshed; undefined means END_OF_SESSION. */
  validate(id: bigint, origin: string): Session | undefined {
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    if (this.#expired(s)) {
      this.#sessions.delete(id);
      return undefined;
    }
    if (s.origin !== origin) return undefined;
    s.lastUsed = this.now();
    return s;
  }

  remove(id: bigint): void {
    this.#sessions.delete(id);
  }

  #sweep(): void {
    for (const [id, s] of this.#sessions) if (this.#expired(s)) this.#sessions.delete(id);
  }

  count(): number {
    this.#sweep();
    return this.#sessions.size;
  }

  list(): SimSessionInfo[] {
    this.#sweep();
    return [...this.#sessions.values()].map((s) => ({
      id: s.id.toString(),
      user: s.user.name,
      origin: s.origin,
      transport: s.transport,
      method: s.method,
      capabilities: s.caps,
    }));
  }
}
