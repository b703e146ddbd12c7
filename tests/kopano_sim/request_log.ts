// The record of every request the sim received, for tests to assert on what a client sent.

import type { Transport } from "./faults.ts";

export interface SimRequest {
  /** 1, 2, 3, ... in arrival order. */
  seq: number;
  /** Date.now() when the request had been read. */
  time: number;
  transport: Transport;
  /** Which connection (numbered per sim, from 1) carried it. */
  connection: number;
  /** Peer IP for TCP/TLS, "unix" for the UNIX socket. */
  peer: string;
  /** "POST", "GET", ...; null for header-less XML. */
  httpMethod: string | null;
  path: string | null;
  /** "1.1", "1.0"; null for header-less XML. */
  httpVersion: string | null;
  /** Request headers, names lower-cased (repeated headers joined with ", "). */
  headers: Record<string, string>;
  /** The body as received (chunked encoding removed, Content-Encoding not). */
  rawBody: Uint8Array;
  /** SOAP method: local name of the first element in the Body, e.g. "logon"; null if none. */
  method: string | null;
  /** Text of the first occurrence of each child element of the method element, by tag as written. */
  params: Record<string, string>;
  /** Tags of all child elements of the method element, in order (so absence can be asserted). */
  elements: string[];
  /** HTTP status of the reply sent, null when none was sent. */
  status: number | null;
  /** What the sim did: "reply", "fault: TEXT", "dropped: REASON", "injected: KIND", ... */
  outcome: string;
}

export class RequestLog {
  readonly entries: SimRequest[] = [];
  #seq = 0;
  constructor(private max: number) {}

  add(entry: Omit<SimRequest, "seq">): SimRequest {
    const full = { seq: ++this.#seq, ...entry } as SimRequest;
    this.entries.push(full);
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
    return full;
  }

  clear(): void {
    this.entries.length = 0;
  }
}
