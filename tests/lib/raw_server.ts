// A scriptable HTTP server for transport-level tests: it reads each request (Content-Length
// framing, keep-alive) and answers with whatever bytes the test wants, including garbage, hangs,
// early closes and huge bodies. Listens on port 0 / a temp-dir socket so tests can run in parallel.
// Acceptance tests use the Kopano-compatible server (tests/kopano_sim) instead.

export interface RawRequest {
  head: string;
  body: string;
  /** 1-based number of this request on its connection. */
  onConnection: number;
  /** 1-based connection number. */
  connection: number;
}

/** Bytes (or a string) to send, then keep the connection open; or a special action. */
export type Action =
  | string
  | Uint8Array
  | { send: string | Uint8Array; close?: boolean }
  /** Answer, then write `push` on the same connection `afterMs` later, unasked; go on serving. */
  | { send: string; push: { afterMs: number; bytes: string } }
  | { hang: true }
  | { close: true }
  | { stream: (w: (b: Uint8Array) => Promise<void>) => Promise<void> };

export type Responder = (req: RawRequest) => Action | Promise<Action>;

export interface RawServer {
  url: string;
  requests: RawRequest[];
  connections(): number;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function httpReply(
  body: string,
  opts: { status?: string; headers?: string[] } = {},
): string {
  const b = enc.encode(body);
  return [
    `HTTP/1.1 ${opts.status ?? "200 OK"}`,
    "Server: gSOAP/2.8",
    "Content-Type: text/xml; charset=utf-8",
    ...(opts.headers ?? [`Content-Length: ${b.length}`, "Connection: keep-alive"]),
    "",
    body,
  ].join("\r\n");
}

async function readRequest(conn: Deno.Conn, pending: { buf: Uint8Array }): Promise<
  { head: string; body: string } | null
> {
  const find = (b: Uint8Array) => {
    for (let i = 0; i + 3 < b.length; i++) {
      if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
    }
    return -1;
  };
  const more = async () => {
    const chunk = new Uint8Array(65536);
    const n = await conn.read(chunk).catch(() => null);
    if (n === null) return false;
    const next = new Uint8Array(pending.buf.length + n);
    next.set(pending.buf);
    next.set(chunk.subarray(0, n), pending.buf.length);
    pending.buf = next;
    return true;
  };
  let end;
  while ((end = find(pending.buf)) < 0) if (!await more()) return null;
  const head = dec.decode(pending.buf.subarray(0, end));
  const m = /content-length:\s*(\d+)/i.exec(head);
  const len = m ? Number(m[1]) : 0;
  while (pending.buf.length < end + 4 + len) if (!await more()) return null;
  const body = dec.decode(pending.buf.subarray(end + 4, end + 4 + len));
  pending.buf = pending.buf.slice(end + 4 + len);
  return { head, body };
}

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

export async function startRawServer(
  responder: Responder,
  opts: { transport?: "tcp" | "unix" | "tls"; cert?: string; key?: string; dir?: string } = {},
): Promise<RawServer> {
  const transport = opts.transport ?? "tcp";
  let listener: Deno.Listener;
  let url: string;
  let dir: string | null = null;
  if (transport === "unix") {
    dir = opts.dir ?? await Deno.makeTempDir({ prefix: "pam_mapi_raw_" });
    const path = `${dir}/server.sock`;
    listener = Deno.listen({ transport: "unix", path });
    url = `file://${path}`;
  } else if (transport === "tls") {
    listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: opts.cert!, key: opts.key! });
    url = `https://localhost:${(listener.addr as Deno.NetAddr).port}/kopano`;
  } else {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/kopano`;
  }
  const requests: RawRequest[] = [];
  const open = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  let connections = 0;

  const serve = async (conn: Deno.Conn, connection: number) => {
    open.add(conn);
    const pending = { buf: new Uint8Array(0) };
    try {
      for (let n = 1;; n++) {
        const r = await readRequest(conn, pending);
        if (!r) return;
        const req = { ...r, onConnection: n, connection };
        requests.push(req);
        const action = await responder(req);
        if (typeof action === "string" || action instanceof Uint8Array) {
          await writeAll(conn, typeof action === "string" ? enc.encode(action) : action);
        } else if ("hang" in action) {
          // Never answer: wait until the client (or close()) ends the connection.
          const sink = new Uint8Array(4096);
          while (await conn.read(sink).catch(() => null) !== null) { /* discard */ }
          return;
        } else if ("stream" in action) {
          await action.stream((b) => writeAll(conn, b));
          return;
        } else if ("push" in action) {
          const push = action.push;
          await writeAll(conn, enc.encode(action.send));
          setTimeout(() => writeAll(conn, enc.encode(push.bytes)).catch(() => {}), push.afterMs);
        } else if ("send" in action) {
          await writeAll(
            conn,
            typeof action.send === "string" ? enc.encode(action.send) : action.send,
          );
          if (action.close) return;
        } else {
          return;
        }
      }
    } catch {
      // the client went away
    } finally {
      open.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };

  const acceptLoop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      tasks.push(serve(conn, ++connections));
    }
  })();

  return {
    url,
    requests,
    connections: () => connections,
    async close() {
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await acceptLoop;
      await Promise.allSettled(tasks);
      if (dir && !opts.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
