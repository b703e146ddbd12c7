// The record of every connection the sim accepted: how many requests each carried, whether its
// TLS handshake completed, and who ended it. Keep-alive tests read it to see one connection serve
// many logins, TLS handshakes not repeated, idle connections closed by the client in time.

import type { Transport } from "./faults.ts";

export interface SimConnectionInfo {
  /** The connection number SimRequest.connection refers to. */
  id: number;
  transport: Transport;
  /** Date.now() at accept. */
  opened: number;
  /** Date.now() when it was closed; null while open. */
  closed: number | null;
  /** Requests read on it (each one answered, faulted or dropped). */
  requests: number;
  /** TLS only: whether the handshake completed; null for TCP and UNIX. */
  tlsHandshake: boolean | null;
  /**
   * Why it ended, null while open: "client" (end of input from the client), "idle"
   * (server_recv_timeout), "read timeout", "connection: close" (HTTP/1.0, asked by the client,
   * or after a fault), "tls handshake failed", "dropped: REASON", "fault: KIND", "write failed",
   * "sim" (the sim closed).
   */
  closedBy: string | null;
}

/** Totals that stay exact however many connections the bounded list has forgotten. */
export interface SimConnectionStats {
  accepted: Record<Transport, number>;
  /** TLS handshakes completed (one per TLS connection that got as far). */
  tlsHandshakes: number;
  /** Connections open now. */
  open: number;
}

export class ConnectionLog {
  readonly entries: SimConnectionInfo[] = [];
  #accepted: Record<Transport, number> = { tcp: 0, tls: 0, unix: 0 };
  #handshakes = 0;
  #open = 0;
  constructor(private max: number) {}

  add(id: number, transport: Transport): SimConnectionInfo {
    const info: SimConnectionInfo = {
      id,
      transport,
      opened: Date.now(),
      closed: null,
      requests: 0,
      tlsHandshake: null,
      closedBy: null,
    };
    this.#accepted[transport]++;
    this.#open++;
    this.entries.push(info);
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
    return info;
  }

  handshake(info: SimConnectionInfo, ok: boolean): void {
    info.tlsHandshake = ok;
    if (ok) this.#handshakes++;
  }

  /** Marks a connection closed; the first reason given wins. */
  closed(info: SimConnectionInfo, reason: string): void {
    if (info.closed !== null) return;
    info.closed = Date.now();
    info.closedBy = reason;
    this.#open--;
  }

  stats(): SimConnectionStats {
    return { accepted: { ...this.#accepted }, tlsHandshakes: this.#handshakes, open: this.#open };
  }
}
