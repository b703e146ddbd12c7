// One client connection: read a request, answer it like kopano-server (or apply an injected
// fault), repeat while the connection is kept alive. kopano-server's timing rules:
// * TCP/TLS connections idle longer than server_recv_timeout (5 s) between requests are closed;
//   UNIX-socket connections never are;
// * a request must arrive completely within server_read_timeout (60 s);
// * after any SOAP fault, or when the request asked for close / was HTTP/1.0, the reply says
//   "Connection: close" and the socket is closed;
// * otherwise the connection serves any number of requests (kopano-server does not use
//   soap_serve's max_keep_alive count, so gSOAP sends no "Keep-Alive: max=" header).
// Each connection is recorded in the ConnectionLog (requests, TLS handshake, why it ended).
// Every timer belongs to the connection and dies with it, so tests' sanitizers stay quiet.

import { ByteReader } from "./byte_reader.ts";
import type { ConnectionLog, SimConnectionInfo } from "./connection_log.ts";
import { envelope, faultEnvelope, type GsoapGeneration } from "./envelope.ts";
import {
  garbageReply,
  http500Reply,
  http503Reply,
  oversizedReply,
  rawReply,
} from "./fault_replies.ts";
import type { Fault, FaultSet, Transport } from "./faults.ts";
import { header, type RawRequest, type ReadOutcome, readRequest } from "./http_request.ts";
import { buildReply } from "./http_response.ts";
import type { Methods } from "./methods.ts";
import type { RequestLog, SimRequest } from "./request_log.ts";
import {
  type CallInfo,
  clientFault,
  type Decoded,
  decodeRequest,
  type SoapFault,
} from "./soap_request.ts";
import type { ServerProfile } from "./version.ts";

export interface ConnectionHost {
  profile: ServerProfile;
  methods: Methods;
  faults(): FaultSet;
  log: RequestLog;
  connections: ConnectionLog;
  idleTimeoutMs: number;
  readTimeoutMs: number;
  maxBodyBytes: number;
  /** UNIX session binding: per connection, or one origin for the whole socket. */
  unixOrigin: "connection" | "socket";
  verbose: ((line: string) => void) | null;
}

const enc = new TextEncoder();

/** gzip/deflate request bodies (Content-Encoding, or gzip magic, as gSOAP autodetects). */
async function decodeContent(body: Uint8Array, coding: string | undefined, limit: number) {
  const c = coding?.toLowerCase();
  const format: CompressionFormat | null =
    c === "gzip" || c === "x-gzip" || (body[0] === 0x1F && body[1] === 0x8B)
      ? "gzip"
      : c === "deflate"
      ? "deflate"
      : null;
  if (!format) return body;
  const reader = new Blob([body as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream(format),
  )
    .getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel();
        return "too large";
      }
      parts.push(value);
    }
  } catch {
    return null;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Length of the status line and headers including the blank line. */
function headLength(b: Uint8Array): number {
  for (let i = 3; i < b.length; i++) {
    if (b[i - 3] === 0x0D && b[i - 2] === 0x0A && b[i - 1] === 0x0D && b[i] === 0x0A) return i + 1;
  }
  return b.length;
}

function lowerHeaders(req: RawRequest | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [n, v] of req?.headers ?? []) {
    const k = n.toLowerCase();
    out[k] = k in out ? `${out[k]}, ${v}` : v;
  }
  return out;
}

export class Connection {
  #reader: ByteReader;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wakers = new Set<() => void>();
  /** Why the connection ends when run() leaves its loop (default: the client ended its input). */
  #endReason = "client";
  readonly origin: string;
  readonly peer: string;
  readonly info: SimConnectionInfo;

  constructor(
    private host: ConnectionHost,
    private conn: Deno.Conn,
    readonly transport: Transport,
    readonly id: number,
  ) {
    this.#reader = new ByteReader(conn, host.maxBodyBytes + 64 * 1024);
    this.info = host.connections.add(id, transport);
    if (transport === "unix") {
      this.peer = "unix";
      // Deno cannot read the peer's pid (kopano-server binds to "*:pid-N"): see mod.ts.
      this.origin = host.unixOrigin === "socket" ? "unix:socket" : `unix:connection-${id}`;
    } else {
      this.peer = (conn.remoteAddr as Deno.NetAddr).hostname;
      this.origin = `ip:${this.peer}`;
    }
  }

  get #gsoap(): GsoapGeneration {
    return this.host.profile.gsoap;
  }

  /** Closes the connection; `reason` is recorded (see SimConnectionInfo.closedBy). */
  close(reason = "sim"): void {
    if (this.#closed) return;
    this.#closed = true;
    // A TLS connection closed before its handshake completed never will: say so at once.
    if (this.transport === "tls" && this.info.tlsHandshake === null) {
      this.host.connections.handshake(this.info, false);
    }
    this.host.connections.closed(this.info, reason);
    this.#disarm();
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
    try {
      this.conn.close();
    } catch {
      // already closed by the peer side of Deno's resource table
    }
  }

  #arm(ms: number, reason: string): void {
    this.#disarm();
    this.#timer = setTimeout(() => this.close(reason), ms);
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Sleeps `ms`, or less when the connection is closed meanwhile; true if still open. */
  #sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#wakers.delete(done);
        resolve(!this.#closed);
      };
      const t = setTimeout(done, ms);
      this.#wakers.add(done);
    });
  }

  async #write(bytes: Uint8Array): Promise<boolean> {
    try {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
      return true;
    } catch {
      return false;
    }
  }

  async run(): Promise<void> {
    try {
      // The idle timer also covers the TLS handshake and a connection that never sends anything
      // (kopano-server records the accept time as the last activity).
      if (this.transport !== "unix") this.#arm(this.host.idleTimeoutMs, "idle");
      if (this.transport === "tls" && !await this.#handshake()) return;
      while (!this.#closed) {
        if (this.transport !== "unix") this.#arm(this.host.idleTimeoutMs, "idle");
        const more = await this.#reader.skipBlanks();
        this.#disarm();
        if (!more || this.#closed) break;
        // The moment a kept-alive connection is used again: kopano-server may have shut it down
        // for idleness just before (its check runs once a second), so the request gets no reply.
        if (this.info.requests > 0 && this.host.faults().takeCloseReused(this.transport)) {
          this.#endReason = "fault: close-reused";
          break;
        }
        this.#arm(this.host.readTimeoutMs, "read timeout");
        const outcome = await readRequest(this.#reader, this.host.maxBodyBytes, async () => {
          await this.#write(enc.encode("HTTP/1.1 100 Continue\r\n\r\n"));
        });
        this.#disarm();
        if (outcome.kind === "eof" || this.#closed) break;
        this.info.requests++;
        const keep = await this.#handle(outcome);
        if (!keep) break;
        this.#endReason = "client";
      }
    } finally {
      this.close(this.#endReason);
    }
  }

  async #handshake(): Promise<boolean> {
    try {
      await (this.conn as Deno.TlsConn).handshake();
    } catch {
      if (!this.#closed) this.host.connections.handshake(this.info, false);
      this.#endReason = "tls handshake failed"; // (when the idle timer closed it, that reason stays)
      return false;
    }
    this.host.connections.handshake(this.info, true);
    return !this.#closed;
  }

  #logEntry(req: RawRequest | null, info: CallInfo, outcome: string): SimRequest {
    const entry = this.host.log.add({
      time: Date.now(),
      transport: this.transport,
      connection: this.id,
      peer: this.peer,
      httpMethod: req?.method ?? null,
      path: req?.target ?? null,
      httpVersion: req?.version ?? null,
      headers: lowerHeaders(req),
      rawBody: req?.body ?? new Uint8Array(0),
      method: info.method,
      params: info.params,
      elements: info.elements,
      status: null,
      outcome,
    });
    this.host.verbose?.(
      `#${entry.seq} ${this.transport} conn ${this.id}: ${req?.method ?? "-"} ${
        info.method ?? "-"
      }`,
    );
    return entry;
  }

  /** Handles one read outcome; returns whether the connection stays open. */
  async #handle(outcome: Exclude<ReadOutcome, { kind: "eof" }>): Promise<boolean> {
    const none: CallInfo = { method: null, params: {}, elements: [] };
    if (outcome.kind === "abort") {
      this.#logEntry(outcome.req, none, `dropped: ${outcome.reason}`);
      this.#endReason = `dropped: ${outcome.reason}`;
      return false;
    }
    const req = outcome.req;
    let decoded: Decoded;
    let info = none;
    if (outcome.kind === "reject") {
      decoded = { kind: "fault", fault: clientFault(outcome.text, outcome.status) };
    } else if (outcome.kind === "empty") {
      decoded = { kind: "drop", reason: "empty" }; // replaced below by the empty 200
    } else {
      const body = await decodeContent(
        req.body,
        header(req, "Content-Encoding"),
        this.host.maxBodyBytes,
      );
      if (body === "too large") {
        this.#logEntry(req, none, "dropped: body too large");
        this.#endReason = "dropped: body too large";
        return false;
      }
      if (body === null) {
        decoded = {
          kind: "fault",
          fault: clientFault("Zlib/gzip error: 'invalid compressed data'"),
        };
      } else {
        ({ decoded, info } = decodeRequest(body, this.host.profile, !req.bare));
      }
    }
    const entry = this.#logEntry(req, info, "");
    const fault = this.host.faults().takeForRequest(this.transport, info.method);
    if (fault) return await this.#inject(fault, req, decoded, entry);
    if (outcome.kind === "empty") return await this.#sendEmpty(entry);
    return await this.#answer(req, decoded, entry, {});
  }

  /** HEAD/OPTIONS: gSOAP's empty 200 (then the sim closes). */
  async #sendEmpty(entry: SimRequest): Promise<boolean> {
    entry.status = 200;
    entry.outcome = "reply";
    const bytes = await buildReply({
      gsoap: this.#gsoap,
      status: 200,
      body: new Uint8Array(0),
      keepAlive: false,
    });
    await this.#write(bytes);
    this.#endReason = "connection: close";
    return false;
  }

  /** Serves the request and sends the reply; options let faults bend the reply. */
  async #answer(
    req: RawRequest,
    decoded: Decoded,
    entry: SimRequest,
    opt: { contentType?: string; cutInHalf?: boolean },
  ): Promise<boolean> {
    let fault: SoapFault | undefined;
    let xml = "";
    let chunked = false, gzip = false;
    if (decoded.kind === "drop") {
      entry.outcome ||= `dropped: ${decoded.reason}`;
      this.#endReason = `dropped: ${decoded.reason}`;
      return false;
    }
    if (decoded.kind === "fault") {
      fault = decoded.fault;
    } else {
      const ctx = { transport: this.transport, origin: this.origin };
      const res = this.host.methods.serve(decoded.call, ctx);
      if (res.fault) fault = res.fault;
      else {
        xml = envelope(this.#gsoap, res.xml!);
        chunked = res.chunked;
        gzip = res.gzip;
      }
    }
    // HTTP/1.0 cannot carry chunks: gSOAP then buffers and sends a Content-Length.
    if (req.version !== null && !req.version.endsWith(".1")) chunked = false;
    const keepAlive = !fault && req.keepAlive;
    const body = enc.encode(fault ? faultEnvelope(this.#gsoap, fault.code, fault.text) : xml);
    const status = fault ? fault.status : 200;
    const bytes = await buildReply({
      gsoap: this.#gsoap,
      status,
      body,
      keepAlive,
      chunked,
      gzip,
      contentType: opt.contentType,
    });
    entry.status = status;
    if (!entry.outcome) entry.outcome = fault ? `fault: ${fault.text}` : "reply";
    if (opt.cutInHalf) {
      const head = headLength(bytes);
      await this.#write(bytes.subarray(0, head + Math.floor((bytes.length - head) / 2)));
      return false;
    }
    const ok = await this.#write(bytes);
    if (!ok) this.#endReason = "write failed";
    else if (!keepAlive) this.#endReason = "connection: close";
    return ok && keepAlive;
  }

  async #inject(f: Fault, req: RawRequest, decoded: Decoded, entry: SimRequest): Promise<boolean> {
    entry.outcome = `injected: ${f.kind}`;
    this.#endReason = `fault: ${f.kind}`; // unless the reply below keeps the connection open
    this.host.verbose?.(`#${entry.seq}: injected ${f.kind}`);
    switch (f.kind) {
      case "delay":
        if (!await this.#sleep(f.value as number)) return false;
        entry.outcome = "";
        return await this.#answer(req, decoded, entry, {});
      case "hang":
        // Hold the connection: swallow input until the client or the sim closes it.
        while (!this.#closed && await this.#reader.fill()) {
          this.#reader.consume(this.#reader.buffered);
        }
        return false;
      case "drop":
        return false;
      case "close-mid-reply":
        await this.#answer(req, decoded, entry, { cutInHalf: true });
        entry.outcome = `injected: ${f.kind}`;
        return false;
      case "wrong-content-type": {
        const keep = await this.#answer(req, decoded, entry, { contentType: f.value as string });
        entry.outcome = `injected: ${f.kind}`;
        return keep;
      }
      case "garbage":
        entry.status = 200;
        await this.#write(await garbageReply(this.#gsoap));
        return false;
      case "http-500":
        entry.status = 500;
        await this.#write(await http500Reply(this.#gsoap));
        return false;
      case "http-503":
        entry.status = 503;
        await this.#write(http503Reply());
        return false;
      case "raw":
        entry.status = f.reply!.bytes !== undefined ? null : (f.reply!.status ?? 200);
        await this.#write(rawReply(f.reply!));
        return false;
      case "oversized":
        entry.status = 200;
        for (const piece of oversizedReply(this.#gsoap, f.value as number)) {
          if (this.#closed || !await this.#write(piece)) break;
        }
        return false;
      default:
        return false;
    }
  }
}
