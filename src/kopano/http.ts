// A small HTTP/1.1 client over one connection: POST a body, read one reply. Hand-written instead of
// fetch because the first fetch in a process costs several milliseconds (toolchain addendum) and
// because every byte read must be bounded (src/kopano/http_reader.ts): replies over 1 MiB are refused,
// so are compressed replies, unread (we never ask for compression, so inflating one would only
// serve a decompression bomb), and the attempt's deadline ends any read or write in progress.
import { wipe } from "../common/bytes.ts";
import { Deadline, TimeoutError } from "../common/deadline.ts";
import {
  Body,
  ClosedBeforeReply,
  type Head,
  HttpError,
  type Readable,
  readChunked,
  Reader,
  readHead,
  readLength,
} from "./http_reader.ts";
import { neutralise } from "../common/log_text.ts";
import { type ReplyAccount, UNLIMITED } from "./reply_budget.ts";

export { HttpError, MAX_BODY } from "./http_reader.ts";

export interface HttpReply {
  status: number;
  body: string;
}

export interface Target {
  path: string;
  hostHeader: string;
}

/** A connection as a Channel uses it: a Deno.Conn, or a kept-alive one lent by the pool. */
export interface Link extends Readable {
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

const encoder = new TextEncoder();

async function writeAll(conn: Link, data: Uint8Array, deadline: Deadline): Promise<void> {
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

function one(head: Head, name: string): string | null {
  const v = head.headers.get(name);
  if (!v) return null;
  const all = v.join(",").split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
  return all.join(",");
}

/**
 * Where a Channel gets its connections. The fork path opens a fresh one per attempt and closes
 * it at the end; the resident helper also lends and takes back kept-alive ones (src/daemon/pool.ts).
 */
export interface ConnectionSource {
  /** A kept-alive connection to reuse, or null. */
  take(): Link | null;
  /** A new connection (throws ConnectError). */
  open(): Promise<Link>;
  /** The channel is done with `conn`: keep it for reuse only when `reusable`, else close it. */
  done(conn: Link, reusable: boolean): void;
  /** What a reply's buffers are charged to (the resident helper's budget); default: no limit. */
  replyAccount?(): ReplyAccount;
}

/**
 * One connection reused for every call of one attempt. It comes from the source lazily: a
 * kept-alive one when the source has one, else a new one; again after the server closed it; and
 * once more, always new, when a reused connection (kept alive from an earlier call or lent by the
 * source) turns out to be closed before any byte of a reply.
 */
export class Channel {
  #conn: Link | null = null;
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

  /**
   * Sends `body` (a SOAP envelope) and reads the reply. The body is wiped and released at once:
   * the logon's holds the password, of which the request is then the only copy, wiped at the end.
   */
  async post(body: Uint8Array | string): Promise<HttpReply> {
    const payload = typeof body === "string" ? encoder.encode(body) : body;
    const head = encoder.encode(
      `POST ${this.target.path} HTTP/1.1\r\nHost: ${this.target.hostHeader}\r\n` +
        `Content-Type: text/xml; charset=utf-8\r\nContent-Length: ${payload.length}\r\n` +
        "Connection: keep-alive\r\n\r\n",
    );
    const request = new Uint8Array(head.length + payload.length);
    request.set(head);
    request.set(payload, head.length);
    wipe(payload);
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
      wipe(request);
    }
  }

  #attach(conn: Link): void {
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
    const account = this.source.replyAccount?.() ?? UNLIMITED;
    const r = new Reader(conn, this.deadline, account);
    let body: Body | null = null;
    try {
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
      let readToEof = false;
      const te = one(head, "transfer-encoding");
      const cl = head.headers.get("content-length");
      try {
        if (te !== null) {
          // Two framings in one reply is how response splitting starts; gSOAP never sends both,
          // and RFC 9112 §6.3 says a client ought to treat it as an error.
          if (cl) throw new HttpError("reply has both Transfer-Encoding and Content-Length");
          if (te !== "chunked") throw new HttpError(`unsupported transfer encoding "${te}"`);
          body = new Body(account);
          await readChunked(r, body);
        } else if (cl) {
          if (!cl.every((v) => /^[0-9]{1,15}$/.test(v) && v === cl[0])) {
            throw new HttpError("invalid Content-Length");
          }
          body = await readLength(r, account, Number(cl[0]));
        } else {
          // No framing: the body runs to the end of the connection.
          readToEof = true;
          body = new Body(account);
          await r.copyToEnd(body);
        }
      } catch (e) {
        if (e instanceof HttpError || e instanceof TimeoutError) throw e;
        throw new HttpError(`connection lost: ${errorText(e)}`);
      }
      const connection = one(head, "connection") ?? "";
      const keepAlive = head.version === "1.1"
        ? !connection.split(",").includes("close")
        : connection.split(",").includes("keep-alive");
      if (!keepAlive || readToEof || r.buffered > 0) this.close();

      // A big reply waits its turn for the thread (src/kopano/reply_budget.ts).
      const turn = account.turn(body.length);
      if (turn) await this.deadline.race(turn);
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(body.bytes());
      } catch {
        throw new HttpError("reply body is not valid UTF-8");
      }
      // Only a complete HTTP/1.1 200 reply on a kept-alive connection leaves it fit to lend out
      // again (gSOAP always answers HTTP/1.1: anything else is not the server we think it is).
      this.#clean = this.#conn !== null && head.status === 200 && head.version === "1.1";
      if (!this.#clean) this.#spoiled = true;
      return { status: head.status, body: text };
    } finally {
      body?.free();
      r.free();
    }
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
export function closeQuietly(conn: Link): void {
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
