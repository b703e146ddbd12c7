// Reads one HTTP/1.1 reply from a connection with every part of it bounded, doing work linear in
// the bytes received: bytes are read into one fixed window and copied once into the body, which
// grows by doubling; lines are searched from where the last search stopped. A server can thus
// make a reply cost at most a few times its size (at most MAX_BODY of body, MAX_CHUNKS chunks,
// short lines), however it slices it. The numbers and why: docs/protocol.md §7.5.
import { release } from "../common/bytes.ts";
import type { Deadline } from "../common/deadline.ts";
import type { ReplyAccount } from "./reply_budget.ts";

export const MAX_BODY = 1024 * 1024;
/** "HTTP/1.1 200 OK": gSOAP's reason phrases are a few words. */
export const MAX_STATUS_LINE = 256;
/** One header line (gSOAP refuses longer ones itself); all of one head; how many lines. */
export const MAX_HEADER_LINE = 8 * 1024;
export const MAX_HEAD = 16 * 1024;
export const MAX_HEADERS = 64;
/** Interim (1xx) replies before the real one. */
export const MAX_INTERIM = 4;
/** Chunks of one body (gSOAP sends one per buffer it fills), and a chunk-size line. */
export const MAX_CHUNKS = 1024;
export const MAX_CHUNK_LINE = 256;
/** The read window: every read lands here; a line must fit in it. */
const WINDOW = 16 * 1024;
/** A body's first buffer (most replies fit). */
const FIRST_BODY = 4 * 1024;

/** The transport failed or the reply is not acceptable HTTP: the server gave no usable answer. */
export class HttpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** The peer closed a reused keep-alive connection before sending any byte of the reply. */
export class ClosedBeforeReply extends HttpError {}

/** The daemon's memory for replies in progress is used up (src/kopano/reply_budget.ts). */
export class OverBudget extends HttpError {
  constructor() {
    super(
      "reply not read: the daemon's memory for replies in progress is in use by other logins",
    );
  }
}

/** What a Reader reads from: a connection, or a kept-alive one lent by the pool. */
export interface Readable {
  read(p: Uint8Array): Promise<number | null>;
}

const tooLarge = () => new HttpError(`reply larger than ${MAX_BODY / 1024 / 1024} MiB`);

/** A reply body: one buffer, doubled as it fills, charged to the reply's account. */
export class Body {
  #buf = new Uint8Array(0);
  length = 0;

  constructor(private account: ReplyAccount, private limit = MAX_BODY) {}

  append(src: Uint8Array): void {
    const need = this.length + src.length;
    if (need > this.#buf.length) this.#grow(need);
    this.#buf.set(src, this.length);
    this.length = need;
  }

  #grow(need: number): void {
    if (need > this.limit) throw tooLarge();
    const size = Math.min(this.limit, Math.max(need, this.#buf.length * 2, FIRST_BODY));
    if (!this.account.take(size)) throw new OverBudget();
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.length));
    this.free();
    this.#buf = next;
  }

  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }

  free(): void {
    this.account.give(this.#buf.length);
    release(this.#buf);
    this.#buf = new Uint8Array(0);
  }
}

/** Reads from a connection into a fixed window; every read is bounded by the deadline. */
export class Reader {
  #win: Uint8Array;
  #start = 0;
  #end = 0;
  /** Where the search for the next line's end resumes. */
  #scan = 0;
  #eof = false;
  /** Total bytes received on this reader (to tell "nothing at all" from "cut short"). */
  received = 0;

  constructor(
    private conn: Readable,
    private deadline: Deadline,
    private account: ReplyAccount,
  ) {
    if (!account.take(WINDOW)) throw new OverBudget();
    this.#win = new Uint8Array(WINDOW);
  }

  /** Bytes read but not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads more bytes; returns false at end of stream. */
  async fill(): Promise<boolean> {
    if (this.#eof) return false;
    if (this.#end === this.#win.length) {
      // Make room. What is moved is an unfinished line, shorter than its limit and so than the
      // bytes consumed since the last move: all moves together cost less than the reads.
      if (this.#start === 0) throw new HttpError("HTTP line too long");
      this.#win.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#scan -= this.#start;
      this.#start = 0;
    }
    let n: number | null;
    try {
      n = await this.deadline.race(this.conn.read(this.#win.subarray(this.#end)));
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
    this.#end += n;
    return true;
  }

  /** The next line, up to CRLF (not included); `limit` bounds its length. */
  async line(limit: number): Promise<string> {
    return String.fromCharCode(...await this.lineBytes(limit));
  }

  /** The next line's bytes, as a view that the next read may overwrite. */
  async lineBytes(limit: number): Promise<Uint8Array> {
    for (;;) {
      const end = this.#lineEnd();
      if (end - this.#start > limit) throw new HttpError("HTTP line too long");
      if (end >= 0) {
        const line = this.#win.subarray(this.#start, end);
        this.#start = this.#scan = end + 2;
        return line;
      }
      // No end yet: what is buffered is the line so far (and perhaps its CR).
      if (this.#end - this.#start > limit + 1) throw new HttpError("HTTP line too long");
      if (!await this.fill()) throw new HttpError("connection closed in the middle of the reply");
    }
  }

  /** Where the CR of the first CRLF at or after the scan position is, or -1 (scan advanced). */
  #lineEnd(): number {
    let from = Math.max(this.#scan, this.#start);
    for (;;) {
      const lf = this.#win.subarray(from, this.#end).indexOf(10);
      if (lf < 0) break;
      const at = from + lf;
      if (at > this.#start && this.#win[at - 1] === 13) return at - 1;
      from = at + 1; // a bare LF is part of the line (and makes it malformed)
    }
    this.#scan = Math.max(this.#start, this.#end - 1); // a CR at the end may meet its LF later
    return -1;
  }

  /** Moves exactly `n` bytes into `body`. */
  async copy(body: Body, n: number): Promise<void> {
    while (n > 0) {
      if (this.#start === this.#end) {
        this.#start = this.#end = this.#scan = 0; // all consumed: start the window over
        if (!await this.fill()) {
          throw new HttpError("connection closed in the middle of the reply");
        }
      }
      const k = Math.min(n, this.#end - this.#start);
      body.append(this.#win.subarray(this.#start, this.#start + k));
      this.#start += k;
      n -= k;
    }
    this.#scan = this.#start;
  }

  /** Moves everything up to the end of the stream into `body`. */
  async copyToEnd(body: Body): Promise<void> {
    do {
      body.append(this.#win.subarray(this.#start, this.#end));
      this.#start = this.#end = this.#scan = 0;
    } while (await this.fill());
  }

  free(): void {
    this.account.give(this.#win.length);
    release(this.#win);
  }
}

export interface Head {
  status: number;
  version: string;
  headers: Map<string, string[]>;
}

/** The status line and header fields, interim (1xx) replies skipped. */
export async function readHead(r: Reader): Promise<Head> {
  for (let interim = 0; interim <= MAX_INTERIM; interim++) {
    if (r.buffered === 0 && !await r.fill()) {
      if (r.received === 0) throw new ClosedBeforeReply("connection closed before any reply");
      throw new HttpError("connection closed in the middle of the reply");
    }
    const statusLine = await r.line(MAX_STATUS_LINE);
    const m = /^HTTP\/(1\.[01]) ([1-5][0-9][0-9])(?: .*)?$/.exec(statusLine);
    if (!m) throw new HttpError("reply is not HTTP/1.x");
    const headers = await readFields(r, "header");
    const status = Number(m[2]);
    if (status >= 200) return { status, version: m[1], headers };
  }
  throw new HttpError("too many interim HTTP replies");
}

/** Header (or trailer) fields up to the empty line: at most MAX_HEADERS, MAX_HEAD bytes. */
async function readFields(r: Reader, what: string): Promise<Map<string, string[]>> {
  const fields = new Map<string, string[]>();
  for (let count = 0, size = 0;; count++) {
    const line = await r.line(MAX_HEADER_LINE);
    if (line === "") return fields;
    size += line.length + 2;
    if (size > MAX_HEAD) throw new HttpError(`HTTP ${what} too large`);
    if (count === MAX_HEADERS) throw new HttpError(`more than ${MAX_HEADERS} HTTP ${what} lines`);
    const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!h) throw new HttpError(`malformed HTTP ${what} line`);
    const name = h[1].toLowerCase();
    const values = fields.get(name);
    if (values) values.push(h[2]);
    else fields.set(name, [h[2]]);
  }
}

/** A chunked body into `body`: at most MAX_CHUNKS chunks, then the trailer fields. */
export async function readChunked(r: Reader, body: Body): Promise<void> {
  for (let chunks = 0;; chunks++) {
    const size = chunkSize(await r.lineBytes(MAX_CHUNK_LINE));
    if (size < 0) throw new HttpError("malformed chunk size");
    if (size === 0) break;
    if (chunks === MAX_CHUNKS) throw new HttpError(`reply in more than ${MAX_CHUNKS} chunks`);
    if (body.length + size > MAX_BODY) throw tooLarge();
    await r.copy(body, size);
    if ((await r.lineBytes(2)).length !== 0) throw new HttpError("malformed chunk");
  }
  await readFields(r, "trailer");
}

/**
 * The size a chunk-size line gives (1 to 8 hex digits, blanks, then perhaps ";" and extensions,
 * which are ignored), or -1. Read from the bytes: a string and a pattern per chunk would make
 * small chunks several times dearer.
 */
function chunkSize(line: Uint8Array): number {
  let size = 0;
  let i = 0;
  for (; i < line.length && i <= 8; i++) {
    const c = line[i] | 0x20; // ASCII letters to lower case; digits stay digits
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) break;
    size = size * 16 + digit;
  }
  if (i === 0 || i > 8) return -1;
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
  if (i < line.length && line[i] !== 0x3b) return -1;
  // Extensions are ignored, but a bare CR or LF in them is not a line we understand.
  if (line.indexOf(0x0d, i) >= 0 || line.indexOf(0x0a, i) >= 0) return -1;
  return size;
}

/** A body of `n` bytes (Content-Length) into a new Body. */
export async function readLength(r: Reader, account: ReplyAccount, n: number): Promise<Body> {
  if (n > MAX_BODY) throw tooLarge();
  const body = new Body(account, n);
  try {
    await r.copy(body, n);
  } catch (e) {
    body.free();
    throw e;
  }
  return body;
}
