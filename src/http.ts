// A small HTTP/1.1 client over one Deno.Conn: POST a body, read one reply. Hand-written instead of
// fetch because the first fetch in a process costs several milliseconds (toolchain addendum) and
// because every byte read must be bounded: replies over 1 MiB are refused, compressed replies are
// refused unread (we never ask for compression, so inflating one would only serve a decompression
// bomb), and the attempt's deadline ends any read or write in progress.
import { Deadline, TimeoutError } from "./deadline.ts";
import { neutralise } from "./log_text.ts";

export const MAX_BODY = 1024 * 1024;
const MAX_HEAD = 16 * 1024;
const READ_SIZE = 16 * 1024;

/** The transport failed or the reply is not acceptable HTTP: the server gave no usable answer. */
export class HttpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** The peer closed a reused keep-alive connection before sending any byte of the reply. */
class ClosedBeforeReply extends HttpError {}

export interface HttpReply {
  status: number;
  body: string;
}

export interface Target {
  path: string;
  hostHeader: string;
}

const encoder = new TextEncoder();

/** Reads from a connection into a growing buffer; every read is bounded by the deadline. */
class Reader {
  #buf = new Uint8Array(0);
  #eof = false;
  /** Total bytes received on this reader (to tell "nothing at all" from "cut short"). */
  received = 0;

  constructor(private conn: Deno.Conn, private deadline: Deadline) {}

  get buffered(): Uint8Array {
    return this.#buf;
  }

  /** Reads more bytes; returns false at end of stream. */
  async fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(READ_SIZE);
    let n: number | null;
    try {
      n = await this.deadline.race(this.conn.read(chunk));
    } catch (e) {
      this.deadline.check();
      throw e;
    }
    this.deadline.check();
    if (n === null) {
      this.#eof = true;
      return false;
    }
    this.received += n;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  /** Bytes up to and including the next CRLF, without the CRLF; limit applies to the line. */
  async line(limit: number): Promise<string> {
    for (;;) {
      const i = indexOfCrlf(this.#buf);
      if (i >= 0) {
        const line = this.take(i + 2).subarray(0, i);
        return latin1(line);
      }
      if (this.#buf.length > limit) throw new HttpError("HTTP line too long");
      if (!await this.fill()) throw new HttpError("connection closed in the middle of the reply");
    }
  }

  async exactly(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!await this.fill()) throw new HttpError("connection closed in the middle of the reply");
    }
    return this.take(n);
  }
}

function indexOfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 1 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10) return i;
  return -1;
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array, deadline: Deadline): Promise<void> {
  let off = 0;
  while (off < data.length) {
    let n: number;
    try {
      n = await deadline.race(conn.write(data.subarray(off)));
    } catch (e) {
      deadline.check();
      throw e;
    }
    deadline.check();
    off += n;
  }
}

interface Head {
  status: number;
  version: string;
  headers: Map<string, string[]>;
}

async function readHead(r: Reader): Promise<Head> {
  // Skip interim 1xx replies (we never ask for them, but a server may send "100 Continue").
  for (let interim = 0; interim < 4; interim++) {
    if (r.buffered.length === 0 && !await r.fill()) {
      if (r.received === 0) throw new ClosedBeforeReply("connection closed before any reply");
      throw new HttpError("connection closed in the middle of the reply");
    }
    const statusLine = await r.line(MAX_HEAD);
    const m = /^HTTP\/(1\.[01]) ([1-5][0-9][0-9])(?: .*)?$/.exec(statusLine);
    if (!m) throw new HttpError("reply is not HTTP/1.x");
    const headers = new Map<string, string[]>();
    let size = statusLine.length;
    for (;;) {
      const line = await r.line(MAX_HEAD);
      size += line.length + 2;
      if (size > MAX_HEAD) throw new HttpError("HTTP header too large");
      if (line === "") break;
      const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
      if (!h) throw new HttpError("malformed HTTP header line");
      const name = h[1].toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), h[2]]);
    }
    const status = Number(m[2]);
    if (status >= 200) return { status, version: m[1], headers };
  }
  throw new HttpError("too many interim HTTP replies");
}

function one(head: Head, name: string): string | null {
  const v = head.headers.get(name);
  if (!v) return null;
  const all = v.join(",").split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
  return all.join(",");
}

async function readChunked(r: Reader): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const sizeLine = await r.line(1024);
    const m = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/.exec(sizeLine);
    if (!m) throw new HttpError("malformed chunk size");
    const size = parseInt(m[1], 16);
    if (size === 0) break;
    total += size;
    if (total > MAX_BODY) throw new HttpError("reply larger than 1 MiB");
    parts.push(await r.exactly(size));
    if (await r.line(2) !== "") throw new HttpError("malformed chunk");
  }
  // Trailer fields, up to the empty line.
  for (let size = 0;;) {
    const line = await r.line(MAX_HEAD);
    if (line === "") break;
    size += line.length;
    if (size > MAX_HEAD) throw new HttpError("HTTP trailer too large");
  }
  return concat(parts, total);
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Where a Channel gets its connections. The fork path opens a fresh one per attempt and closes
 * it at the end; the resident helper also lends and takes back kept-alive ones (src/pool.ts).
 */
export interface ConnectionSource {
  /** A kept-alive connection to reuse, or null. */
  take(): Deno.Conn | null;
  /** A new connection (throws ConnectError). */
  open(): Promise<Deno.Conn>;
  /** The channel is done with `conn`: keep it for reuse only when `reusable`, else close it. */
  done(conn: Deno.Conn, reusable: boolean): void;
}

/**
 * One connection reused for every call of one attempt. It comes from the source lazily: a
 * kept-alive one when the source has one, else a new one; again after the server closed it; and
 * once more, always new, when a reused connection (kept alive from an earlier call or lent by the
 * source) turns out to be closed before any byte of a reply.
 */
export class Channel {
  #conn: Deno.Conn | null = null;
  #unregister: (() => void) | null = null;
  /** The last exchange left the connection ready for another request (see finish()). */
  #clean = false;
  /** An exchange on this connection was not clean: never lend it out again. */
  #spoiled = false;

  constructor(
    private source: ConnectionSource,
    private target: Target,
    private deadline: Deadline,
  ) {}

  async post(body: string): Promise<HttpReply> {
    const payload = encoder.encode(body);
    const head = encoder.encode(
      `POST ${this.target.path} HTTP/1.1\r\nHost: ${this.target.hostHeader}\r\n` +
        `Content-Type: text/xml; charset=utf-8\r\nContent-Length: ${payload.length}\r\n` +
        "Connection: keep-alive\r\n\r\n",
    );
    const request = concat([head, payload], head.length + payload.length);
    payload.fill(0); // the logon body holds the password: keep as few copies as we can
    try {
      let reused = this.#conn !== null;
      if (this.#conn === null) {
        const kept = this.source.take();
        reused = kept !== null;
        this.#attach(kept ?? await this.source.open());
      }
      try {
        return await this.#exchange(request);
      } catch (e) {
        if (!reused || !(e instanceof ClosedBeforeReply)) throw e;
        this.close(); // the server idle-closed our keep-alive socket: one fresh try
        this.#attach(await this.source.open());
        return await this.#exchange(request);
      }
    } catch (e) {
      this.close(); // a refused reply may end anywhere: the next call must not read its rest
      throw e;
    } finally {
      request.fill(0);
    }
  }

  #attach(conn: Deno.Conn): void {
    this.#conn = conn;
    this.#clean = false;
    this.#spoiled = false;
    this.#unregister = this.deadline.onExpire(() => this.close());
  }

  async #exchange(request: Uint8Array): Promise<HttpReply> {
    const conn = this.#conn!;
    this.#clean = false;
    try {
      await writeAll(conn, request, this.deadline);
    } catch (e) {
      if (e instanceof TimeoutError) throw e;
      throw new ClosedBeforeReply(`cannot send the request: ${errorText(e)}`);
    }
    const r = new Reader(conn, this.deadline);
    let head: Head;
    try {
      head = await readHead(r);
    } catch (e) {
      if (e instanceof HttpError || e instanceof TimeoutError) throw e;
      // ECONNRESET and friends before any reply byte count as "closed before reply".
      if (r.received === 0) throw new ClosedBeforeReply(`connection lost: ${errorText(e)}`);
      throw new HttpError(`connection lost: ${errorText(e)}`);
    }
    // Kopano compresses only when the logon asked for it (KOPANO_CAP_COMPRESSION, reference
    // §1.4), and we never do: a compressed reply is refused before its body is read.
    const ce = one(head, "content-encoding");
    if (ce && ce.split(",").some((c) => c !== "identity")) {
      throw new HttpError(
        `the server compressed its reply (Content-Encoding: ${ce.slice(0, 40)}), ` +
          "which pam_mapi never asks for",
      );
    }
    // 204 and 304 replies end with their head, whatever it says about a body (RFC 9112 §6.3).
    // Neither is an answer: without this the unframed case would wait for the end of the stream.
    if (head.status === 204 || head.status === 304) {
      this.close();
      return { status: head.status, body: "" };
    }
    let body: Uint8Array;
    let readToEof = false;
    const te = one(head, "transfer-encoding");
    const cl = head.headers.get("content-length");
    try {
      if (te !== null) {
        // Two framings in one reply is how response splitting starts; gSOAP never sends both,
        // and RFC 9112 §6.3 says a client ought to treat it as an error.
        if (cl) throw new HttpError("reply has both Transfer-Encoding and Content-Length");
        if (te !== "chunked") throw new HttpError(`unsupported transfer encoding "${te}"`);
        body = await readChunked(r);
      } else if (cl) {
        if (!cl.every((v) => /^[0-9]{1,15}$/.test(v) && v === cl[0])) {
          throw new HttpError("invalid Content-Length");
        }
        const n = Number(cl[0]);
        if (n > MAX_BODY) throw new HttpError("reply larger than 1 MiB");
        body = await r.exactly(n);
      } else {
        // No framing: the body runs to the end of the connection.
        readToEof = true;
        while (await r.fill()) {
          if (r.buffered.length > MAX_BODY) throw new HttpError("reply larger than 1 MiB");
        }
        body = r.take(r.buffered.length);
      }
    } catch (e) {
      if (e instanceof HttpError || e instanceof TimeoutError) throw e;
      throw new HttpError(`connection lost: ${errorText(e)}`);
    }
    const connection = one(head, "connection") ?? "";
    const keepAlive = head.version === "1.1"
      ? !connection.split(",").includes("close")
      : connection.split(",").includes("keep-alive");
    if (!keepAlive || readToEof || r.buffered.length > 0) this.close();

    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(body);
    } catch {
      throw new HttpError("reply body is not valid UTF-8");
    }
    // Only a complete HTTP/1.1 200 reply on a kept-alive connection leaves it fit to lend out
    // again (gSOAP always answers HTTP/1.1: anything else is not the server we think it is).
    this.#clean = this.#conn !== null && head.status === 200 && head.version === "1.1";
    if (!this.#clean) this.#spoiled = true;
    return { status: head.status, body: text };
  }

  close(): void {
    this.#release(false);
  }

  /**
   * Ends the channel: its connection goes back to the source for reuse when `reusable` (the
   * caller saw nothing wrong) and the last exchange left it clean; otherwise it is closed.
   */
  finish(reusable: boolean): void {
    this.#release(reusable && this.#clean && !this.#spoiled && !this.deadline.expired);
  }

  #release(reusable: boolean): void {
    this.#unregister?.();
    this.#unregister = null;
    const conn = this.#conn;
    this.#conn = null;
    this.#clean = false;
    if (conn !== null) this.source.done(conn, reusable);
  }
}

/** Closes a connection, ignoring that it may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Error text for logs: the message only (Deno's messages name the OS error, not our data). */
export function errorText(e: unknown): string {
  return neutralise(e instanceof Error ? e.message : String(e), " ").slice(0, 200);
}
