// The HTTP/1.1 client against a scriptable server: framing (Content-Length, chunked, to EOF),
// defensive decompression, the 1 MiB limit, the deadline, and connection reuse.
import assert from "node:assert/strict";
import { Channel, HttpError, MAX_BODY } from "../../src/http.ts";
import { Deadline, TimeoutError } from "../../src/deadline.ts";
import { parseSocket } from "../../src/args.ts";
import { freshConnections } from "../../src/attempt.ts";
import { parseLogoffReply, parseLogonReply } from "../../src/soap.ts";
import { httpReply, RawRequest, Responder, startRawServer } from "./lib/raw_server.ts";

const FIX = new URL("../../../shared/fixtures/kopano-11.0.2/", import.meta.url).pathname;
const enc = new TextEncoder();
const A1 = Deno.readTextFileSync(`${FIX}a1_logon_alice_correct_password.response.body`);
const B1 = Deno.readTextFileSync(`${FIX}b1_logoff_alice.response.body`);

async function withServer(
  responder: Responder,
  fn: (
    post: (body?: string) => Promise<{ status: number; body: string }>,
    requests: RawRequest[],
    connections: () => number,
  ) => Promise<void>,
  timeoutMs = 5000,
) {
  const server = await startRawServer(responder);
  const spec = parseSocket(server.url);
  const deadline = new Deadline(timeoutMs);
  const ch = new Channel(freshConnections(spec, undefined, deadline, () => {}), spec, deadline);
  try {
    await fn((b = "<x/>") => ch.post(b), server.requests, server.connections);
  } finally {
    ch.close();
    deadline.cancel();
    await server.close();
  }
}

async function gzip(text: string, format: "gzip" | "deflate"): Promise<Uint8Array> {
  const s = new Blob([text]).stream().pipeThrough(new CompressionStream(format));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function withHeaders(head: string[], body: Uint8Array): Uint8Array {
  const h = enc.encode(["HTTP/1.1 200 OK", ...head, "", ""].join("\r\n"));
  const out = new Uint8Array(h.length + body.length);
  out.set(h);
  out.set(body, h.length);
  return out;
}

Deno.test("Content-Length reply; the request is a keep-alive POST with no Accept-Encoding", async () => {
  await withServer(() => httpReply(A1), async (post, reqs) => {
    const r = await post("<body/>");
    assert.equal(r.status, 200);
    assert.equal(parseLogonReply(r.body).er, 0);
    const head = reqs[0].head;
    assert.match(head, /^POST \/kopano HTTP\/1\.1\r\n/);
    assert.match(head, /\r\nHost: 127\.0\.0\.1:\d+\r\n/);
    assert.match(head, /\r\nContent-Type: text\/xml; charset=utf-8\r\n/);
    assert.match(head, /\r\nContent-Length: 7(\r\n|$)/);
    assert.doesNotMatch(head, /accept-encoding/i);
    assert.equal(reqs[0].body, "<body/>");
  });
});

Deno.test("f2: the genuine chunked keep-alive replies, one connection for both calls", async () => {
  const raw = Deno.readTextFileSync(
    `${FIX}f2_kopano-passwd_alice_before_store_created.response.http`,
  );
  const replies = raw.split(/(?=HTTP\/1\.1 200 OK\r\n)/);
  assert.equal(replies.length, 3);
  await withServer((req) => replies[req.onConnection === 1 ? 0 : 2], async (post, _reqs, conns) => {
    const logon = parseLogonReply((await post()).body);
    assert.equal(logon.sessionId, "7640426884856637719");
    assert.equal(parseLogoffReply((await post()).body), 0);
    assert.equal(conns(), 1);
  });
});

Deno.test("gzip and deflate replies are decoded even though we never ask for them", async () => {
  for (const format of ["gzip", "deflate"] as const) {
    const z = await gzip(A1, format);
    await withServer(
      () => withHeaders([`Content-Encoding: ${format}`, `Content-Length: ${z.length}`], z),
      async (post) => assert.equal(parseLogonReply((await post()).body).er, 0),
    );
  }
});

Deno.test("replies over 1 MiB are refused: declared, chunked, unframed and decompressed", async () => {
  const huge = 100 * 1024 * 1024;
  await withServer(
    () => withHeaders([`Content-Length: ${huge}`], new Uint8Array(0)),
    async (post) => {
      await assert.rejects(post(), /larger than 1 MiB/);
    },
  );
  await withServer(() => ({
    stream: async (w) => {
      await w(enc.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
      const chunk = enc.encode("10000\r\n" + "x".repeat(0x10000) + "\r\n");
      for (let i = 0; i < 40; i++) await w(chunk);
    },
  }), async (post) => {
    await assert.rejects(post(), /larger than 1 MiB/);
  });
  await withServer(() => ({
    stream: async (w) => {
      await w(enc.encode("HTTP/1.0 200 OK\r\n\r\n"));
      const chunk = new Uint8Array(0x10000).fill(0x41);
      for (let i = 0; i < 40; i++) await w(chunk);
    },
  }), async (post) => {
    await assert.rejects(post(), /larger than 1 MiB/);
  });
  const bomb = await gzip("<".repeat(MAX_BODY * 8), "gzip"); // 8 MiB inflated, ~8 KiB on the wire
  await withServer(
    () => withHeaders(["Content-Encoding: gzip", `Content-Length: ${bomb.length}`], bomb),
    async (post) => {
      await assert.rejects(post(), /decompressed reply larger than 1 MiB/);
    },
  );
});

Deno.test("malformed HTTP is an error, never a reply", async () => {
  const bad: (string | Uint8Array)[] = [
    "garbage\r\n\r\n",
    "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    "HTTP/1.1 200 OK\r\nX: " + "y".repeat(20000) + "\r\n\r\n",
    withHeaders(["Content-Length: 2"], new Uint8Array([0xff, 0xfe])),
  ];
  for (const reply of bad) {
    await withServer(() => ({ send: reply, close: true }), async (post) => {
      await assert.rejects(
        post(),
        HttpError,
        typeof reply === "string" ? reply.slice(0, 60) : "bytes",
      );
    });
  }
});

Deno.test("a server that never answers is abandoned at the deadline", async () => {
  await withServer(() => ({ hang: true }), async (post) => {
    const t = performance.now();
    await assert.rejects(post(), TimeoutError);
    const ms = performance.now() - t;
    assert.ok(ms >= 250 && ms < 1000, `${ms} ms`);
  }, 300);
});

Deno.test("a reused keep-alive connection closed by the server is retried once on a fresh one", async () => {
  await withServer(
    (req) => req.connection === 1 ? { send: httpReply(A1), close: true } : httpReply(B1),
    async (post, _reqs, conns) => {
      // The server closes after the first reply although it said keep-alive (idle close).
      assert.equal(parseLogonReply((await post()).body).er, 0);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(parseLogoffReply((await post()).body), 0);
      assert.equal(conns(), 2);
    },
  );
  // But a fresh connection that closes without a reply is an error, not an endless retry.
  await withServer(() => ({ close: true }), async (post, reqs) => {
    await assert.rejects(post(), /closed before any reply/);
    assert.equal(reqs.length, 1);
  });
});

Deno.test("Connection: close and HTTP/1.0 replies end the connection; the next call reconnects", async () => {
  await withServer(
    (req) =>
      req.connection === 1
        ? httpReply(A1, { headers: [`Content-Length: ${A1.length}`, "Connection: close"] })
        : "HTTP/1.0 200 OK\r\nContent-Length: " + B1.length + "\r\n\r\n" + B1,
    async (post, _reqs, conns) => {
      await post();
      await post();
      assert.equal(conns(), 2);
    },
  );
});
