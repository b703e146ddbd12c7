// A hostile Kopano server for flood tests: it reads each request like a kopano-server would, then
// answers with the worst replies we could think of for a client's HTTP reader and memory, sent
// fast or trickled. The URL's path picks the reply (`/<kind>`); `/mix` rotates through every kind,
// one per connection. No reply it sends is ever a successful logon: a login that ends in
// PAM_SUCCESS through it is a bug in the client.
//
// It runs in a process of its own (startHostileKopano), so that pumping megabytes to 128 clients
// does not slow the test process that times the logins. `deno run -A tests/lib/hostile_kopano.ts
// [--port N]` runs it by hand; it prints its base URL and serves until killed.
import { concat } from "../kopano_sim/http_response.ts";

/** The replies, and what each does to a reader. */
export const HOSTILE_KINDS = {
  /** A 1 MiB body in 1-byte chunks ("1\r\nX\r\n", 6 MiB on the wire), sent as fast as it goes. */
  "one-byte-chunks": "1 MiB in 1-byte chunks, fast",
  /** The same, each chunk with a 200-byte chunk extension. */
  "chunk-extensions": "1-byte chunks with 200-byte extensions, fast",
  /** Content-Length: 1 MiB; all but the last byte at once, then nothing: held until the timeout. */
  "stalled-length": "1 MiB Content-Length body, stalled one byte short",
  /** Chunked 64 KiB chunks up to 1 MiB less a byte, then nothing. */
  "stalled-chunked": "1 MiB chunked body, stalled one byte short",
  /** A complete 1 MiB body (a refused logon padded with entity references), trickled over 2 s. */
  "slow-entities": "1 MiB of entity references, complete, trickled over 2 s",
  /** A complete 1 MiB refused logon padded with spaces, in 1024 chunks of 1 KiB, fast. */
  "many-chunks": "a complete 1 MiB body in 1024 chunks, fast",
  /** A complete 1 MiB refused logon padded with empty elements of 64 attributes each, fast. */
  "attributes": "a complete 1 MiB body of attributes, fast",
  /** The status line, then a new header line every 20 ms, never the end of the head. */
  "endless-headers": "header lines every 20 ms, never ending",
  /** 20 000 header lines of the same name ("a:"), fast. */
  "many-headers": "20 000 header lines of one name, fast",
  /** The status line one byte every 50 ms, never ending. */
  "slow-status-line": "a status line trickled byte by byte, never ending",
  /** A header line of 1 MiB without an end. */
  "endless-line": "one header line of 1 MiB, no end",
} as const;

export type HostileKind = keyof typeof HOSTILE_KINDS;
export const ALL_KINDS = Object.keys(HOSTILE_KINDS) as HostileKind[];

const enc = new TextEncoder();
const MIB = 1024 * 1024;
/** KCERR_LOGON_FAILED: the padded bodies say "refused", whatever a reader makes of the padding. */
const REFUSED = "2147483657";
const envelope = (inner: string) =>
  '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope ' +
  'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa">' +
  `<SOAP-ENV:Body>${inner}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;

/** A refused logon reply of exactly `size` bytes: `pad` repeated inside an element we ignore. */
function paddedRefusal(size: number, pad: string): Uint8Array {
  const open = `<ns:logonResponse><er>${REFUSED}</er><ulSessionId>0</ulSessionId><pad>`;
  const close = "</pad></ns:logonResponse>";
  const frame = envelope(open + close);
  const room = size - frame.length;
  const padding = pad.repeat(Math.floor(room / pad.length)).padEnd(room, " ");
  return enc.encode(envelope(open + padding + close));
}

const HEAD = "HTTP/1.1 200 OK\r\nServer: gSOAP/2.8\r\nContent-Type: text/xml; charset=utf-8\r\n";

function oneByteChunks(body: Uint8Array, extension: string): Uint8Array {
  const prefix = enc.encode(`1${extension}\r\n`);
  const per = prefix.length + 3;
  const out = new Uint8Array(body.length * per + 5);
  let o = 0;
  for (const b of body) {
    out.set(prefix, o);
    out[o + prefix.length] = b;
    out[o + prefix.length + 1] = 13;
    out[o + prefix.length + 2] = 10;
    o += per;
  }
  out.set(enc.encode("0\r\n\r\n"), o);
  return out;
}

function chunked(body: Uint8Array, size: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let off = 0; off < body.length; off += size) {
    const piece = body.subarray(off, off + size);
    parts.push(enc.encode(`${piece.length.toString(16)}\r\n`), piece, enc.encode("\r\n"));
  }
  parts.push(enc.encode("0\r\n\r\n"));
  return concat(parts);
}

/** How one reply goes out: bytes written in order, with pauses; `hold` keeps the connection. */
type Step = { bytes: Uint8Array } | { pauseMs: number } | { repeat: Step[] } | { hold: true };

/** Built once per server: the big replies are shared by every connection. */
function buildScripts(): Record<HostileKind, Step[]> {
  const body = paddedRefusal(MIB, " ");
  const entities = paddedRefusal(MIB, "&amp;");
  const attributes = paddedRefusal(MIB, "<a " + "x='y' ".repeat(64) + "/>");
  const withLength = (b: Uint8Array) => enc.encode(`${HEAD}Content-Length: ${b.length}\r\n\r\n`);
  const chunkedHead = enc.encode(`${HEAD}Transfer-Encoding: chunked\r\n\r\n`);
  const trickle = (b: Uint8Array, pieces: number, totalMs: number): Step[] => {
    const out: Step[] = [];
    const size = Math.ceil(b.length / pieces);
    for (let off = 0; off < b.length; off += size) {
      out.push({ bytes: b.subarray(off, off + size) }, { pauseMs: totalMs / pieces });
    }
    return out;
  };
  const stalledChunks = chunked(body, 64 * 1024);
  return {
    "one-byte-chunks": [{ bytes: chunkedHead }, { bytes: oneByteChunks(body, "") }],
    "chunk-extensions": [
      { bytes: chunkedHead },
      { bytes: oneByteChunks(body.subarray(0, 64 * 1024), `;ext=${"x".repeat(195)}`) },
    ],
    "stalled-length": [
      { bytes: withLength(body) },
      { bytes: body.subarray(0, body.length - 1) },
      { hold: true },
    ],
    "stalled-chunked": [
      { bytes: chunkedHead },
      // Everything but the last chunk's final byte (and what follows it).
      { bytes: stalledChunks.subarray(0, stalledChunks.length - 8 - 1) },
      { hold: true },
    ],
    "slow-entities": [{ bytes: withLength(entities) }, ...trickle(entities, 20, 2000)],
    "many-chunks": [{ bytes: chunkedHead }, { bytes: chunked(body, 1024) }],
    "attributes": [{ bytes: withLength(attributes) }, { bytes: attributes }],
    "endless-headers": [
      { bytes: enc.encode(HEAD) },
      { repeat: [{ bytes: enc.encode("X-Filler: 0123456789abcdef\r\n") }, { pauseMs: 20 }] },
    ],
    "many-headers": [
      { bytes: enc.encode(HEAD + "a:\r\n".repeat(20_000) + "Content-Length: 0\r\n\r\n") },
    ],
    "slow-status-line": [
      { bytes: enc.encode("HTTP/1.1 200 ") },
      { repeat: [{ bytes: enc.encode("K") }, { pauseMs: 50 }] },
    ],
    "endless-line": [{ bytes: enc.encode(`${HEAD}X-Long: ${"y".repeat(MIB)}`) }, { hold: true }],
  };
}

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  // Slices of 64 KiB: a client that stops reading ends our write with an error, not a hang.
  for (let off = 0; off < b.length;) off += await conn.write(b.subarray(off, off + 64 * 1024));
}

async function play(conn: Deno.Conn, steps: Step[], closed: Promise<void>): Promise<void> {
  for (const s of steps) {
    if ("bytes" in s) await writeAll(conn, s.bytes);
    else if ("pauseMs" in s) await new Promise((r) => setTimeout(r, s.pauseMs));
    else if ("hold" in s) await closed;
    else for (;;) await play(conn, s.repeat, closed);
  }
}

/** Reads one request (head, then Content-Length bytes); false at the end of the stream. */
async function readRequest(conn: Deno.Conn, buf: Uint8Array): Promise<boolean> {
  let len = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(len));
    if (n === null) return false;
    len += n;
    const text = new TextDecoder().decode(buf.subarray(0, len));
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const cl = Number(/content-length:\s*(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (len >= end + 4 + cl) return true;
    }
    if (len === buf.length) return false; // not a request we expect
  }
}

/** Serves on `listener` until it is closed; the path of each request picks the reply. */
export async function serveHostile(listener: Deno.Listener): Promise<void> {
  const scripts = buildScripts();
  const conns = new Set<Deno.Conn>();
  let turn = 0;
  const serve = async (conn: Deno.Conn) => {
    const { promise: closed, resolve: close } = Promise.withResolvers<void>();
    conns.add(conn);
    try {
      const buf = new Uint8Array(64 * 1024);
      if (!await readRequest(conn, buf)) return;
      const path = /^POST (\S+)/.exec(new TextDecoder().decode(buf.subarray(0, 256)))?.[1] ?? "";
      const name = path.slice(path.lastIndexOf("/") + 1);
      const kind = name in scripts ? name as HostileKind : ALL_KINDS[turn++ % ALL_KINDS.length];
      // Whatever the client sends from now on is read and dropped; its end ends a `hold`.
      (async () => {
        try {
          while (await conn.read(buf) !== null) { /* drop */ }
        } catch { /* reset */ }
        close();
      })();
      await Promise.race([play(conn, scripts[kind], closed), closed]);
    } catch {
      // the client went away: that is what we expect of a good one
    } finally {
      close();
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  try {
    for await (const conn of listener) serve(conn);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
}

export interface HostileKopano extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/kopano-hostile/` + a kind, or "mix". */
  url(kind: HostileKind | "mix"): string;
  pid: number;
  close(): Promise<void>;
}

/** Starts the server in a process of its own on 127.0.0.1 (a free port unless `port`). */
export async function startHostileKopano(port = 0): Promise<HostileKopano> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", new URL(import.meta.url).pathname, "--port", String(port)],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const base = /^listening (\S+)/m.exec(text)?.[1];
  if (!base) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`the hostile server did not start: ${text}`);
  }
  let closing: Promise<void> | null = null;
  const close = () =>
    closing ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    })();
  return {
    url: (kind) => `${base}/kopano-hostile/${kind}`,
    pid: child.pid,
    close,
    [Symbol.asyncDispose]: close,
  };
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--port");
  const port = at >= 0 ? Number(Deno.args[at + 1]) : 0;
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const addr = listener.addr as Deno.NetAddr;
  console.log(`listening http://127.0.0.1:${addr.port}`);
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  await serveHostile(listener);
}
