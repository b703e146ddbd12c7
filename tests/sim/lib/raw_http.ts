// A deliberately dumb HTTP client for testing the sim: it writes exactly the bytes it is given
// and reads back exactly what arrives (status line, headers, body framing, end of connection),
// over TCP, TLS or a UNIX socket. Independent of the sim's own code.

export type Target =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "tls"; hostname: string; port: number; caCerts: string[] }
  | { transport: "unix"; path: string };

export interface RawResponse {
  status: number;
  reason: string;
  /** Header lines in order, as [name, value]. */
  headers: Array<[string, string]>;
  /** Status line + headers + blank line, exactly as received. */
  head: string;
  /** Body with chunked framing removed. */
  body: Uint8Array;
  /** Sizes of the chunks when chunked, in order (the final 0 excluded). */
  chunks: number[] | null;
  /** Every byte of this response as received (framing included). */
  raw: Uint8Array;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

export function header(r: RawResponse, name: string): string | undefined {
  const n = name.toLowerCase();
  return r.headers.find(([k]) => k.toLowerCase() === n)?.[1];
}

export function text(r: RawResponse): string {
  return dec.decode(r.body);
}

/** Builds the Target for a sim URL ("http://h:p/x", "https://…", "file:///path"). */
export function targetOf(url: string, caCerts: string[] = []): Target {
  if (url.startsWith("file://")) return { transport: "unix", path: url.slice("file://".length) };
  const u = new URL(url);
  const hostname = u.hostname.replace(/^\[|\]$/g, "");
  return u.protocol === "https:"
    ? { transport: "tls", hostname, port: Number(u.port), caCerts }
    : { transport: "tcp", hostname, port: Number(u.port) };
}

export class RawConn {
  #buf = new Uint8Array(0);
  #eof = false;
  private constructor(readonly conn: Deno.Conn) {}

  static async open(t: Target): Promise<RawConn> {
    const conn = t.transport === "unix"
      ? await Deno.connect({ transport: "unix", path: t.path })
      : t.transport === "tls"
      ? await Deno.connectTls({ hostname: t.hostname, port: t.port, caCerts: t.caCerts })
      : await Deno.connect({ hostname: t.hostname, port: t.port });
    return new RawConn(conn);
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  #pending: Promise<Uint8Array | null> | null = null;

  /** The one outstanding read (kept across quietFor() so no read op is ever abandoned). */
  #read(): Promise<Uint8Array | null> {
    if (!this.#pending) {
      const chunk = new Uint8Array(64 * 1024);
      this.#pending = this.conn.read(chunk).then(
        (n) => (n === null ? null : chunk.subarray(0, n)),
        () => null,
      );
    }
    return this.#pending;
  }

  /** Reads more bytes; false at end of connection. */
  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const got = await this.#read();
    this.#pending = null;
    if (got === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + got.length);
    next.set(this.#buf);
    next.set(got, this.#buf.length);
    this.#buf = next;
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  async #line(): Promise<Uint8Array | null> {
    for (;;) {
      const lf = this.#buf.indexOf(0x0A);
      if (lf !== -1) return this.#take(lf + 1);
      if (!await this.#fill()) return null;
    }
  }

  async #exact(n: number): Promise<Uint8Array | null> {
    while (this.#buf.length < n) if (!await this.#fill()) return null;
    return this.#take(n);
  }

  /**
   * Reads one response. null when the connection ended before any byte of it arrived;
   * throws when it ended in the middle.
   */
  async response(): Promise<RawResponse | null> {
    const raw: Uint8Array[] = [];
    const first = await this.#line();
    if (first === null) {
      if (this.#buf.length === 0) return null;
      throw new Error(`connection ended inside the status line: ${dec.decode(this.#buf)}`);
    }
    raw.push(first);
    const statusLine = dec.decode(first).replace(/\r?\n$/, "");
    const m = /^HTTP\/\d\.\d (\d{3}) ?(.*)$/.exec(statusLine);
    if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
    const headers: Array<[string, string]> = [];
    for (;;) {
      const l = await this.#line();
      if (l === null) throw new Error("connection ended inside the headers");
      raw.push(l);
      const s = dec.decode(l).replace(/\r?\n$/, "");
      if (s === "") break;
      const c = s.indexOf(":");
      headers.push([s.slice(0, c), s.slice(c + 1).trim()]);
    }
    const res: RawResponse = {
      status: Number(m[1]),
      reason: m[2],
      headers,
      head: raw.map((b) => dec.decode(b)).join(""),
      body: new Uint8Array(0),
      chunks: null,
      raw: new Uint8Array(0),
    };
    const te = header(res, "Transfer-Encoding");
    const cl = header(res, "Content-Length");
    const parts: Uint8Array[] = [];
    if (res.status < 200 || res.status === 204 || res.status === 304) {
      // no body
    } else if (te?.toLowerCase() === "chunked") {
      res.chunks = [];
      for (;;) {
        const l = await this.#line();
        if (l === null) throw new Error("connection ended inside a chunk size");
        raw.push(l);
        const size = parseInt(dec.decode(l).trim(), 16);
        if (size === 0) {
          const end = await this.#line();
          if (end === null) throw new Error("connection ended after the last chunk");
          raw.push(end);
          break;
        }
        res.chunks.push(size);
        const data = await this.#exact(size + 2);
        if (data === null) throw new Error("connection ended inside a chunk");
        raw.push(data);
        parts.push(data.subarray(0, size));
      }
    } else if (cl !== undefined) {
      const data = await this.#exact(Number(cl));
      if (data === null) {
        throw new Error(`connection ended inside the body (${this.#buf.length} of ${cl} bytes)`);
      }
      raw.push(data);
      parts.push(data);
    } else {
      while (await this.#fill());
      parts.push(this.#take(this.#buf.length));
      raw.push(parts[0]);
    }
    res.body = concat(parts);
    res.raw = concat(raw);
    return res;
  }

  /** Everything until the peer closes (or `limit` bytes). */
  async readAll(limit = 64 * 1024 * 1024): Promise<Uint8Array> {
    while (this.#buf.length < limit && await this.#fill());
    return this.#take(this.#buf.length);
  }

  /** True if the peer closes within `ms` (without sending anything more). */
  async closedWithin(ms: number): Promise<boolean> {
    if (this.#eof) return this.#buf.length === 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
    try {
      const first = await Promise.race([this.#read().then(() => "data" as const), timeout]);
      if (first === "timeout") return false;
      const more = await this.#fill();
      return !more && this.#buf.length === 0;
    } finally {
      clearTimeout(timer);
    }
  }

  /** True if nothing at all (no byte, no close) arrives for `ms`; the connection stays usable. */
  async quietFor(ms: number): Promise<boolean> {
    return !this.#eof && !(await this.#arrivesWithin(ms));
  }

  async #arrivesWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
    try {
      return await Promise.race([this.#read().then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether the peer has been seen to close. */
  get ended(): boolean {
    return this.#eof;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One request on a fresh connection; returns the response (or null) and closes. */
export async function exchange(
  t: Target,
  request: string | Uint8Array,
): Promise<RawResponse | null> {
  const c = await RawConn.open(t);
  try {
    await c.write(request);
    return await c.response();
  } finally {
    c.close();
  }
}
