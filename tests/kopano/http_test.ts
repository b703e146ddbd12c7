// The HTTP/1.1 client against a scriptable server: framing (Content-Length, chunked, to EOF),
// compressed replies refused, the 1 MiB limit, the deadline, and connection reuse.
import assert from "node:assert/strict";
import { Channel, HttpError } from "../../src/kopano/http.ts";
import { Deadline, TimeoutError } from "../../src/common/deadline.ts";
import { parseSocket } from "../../src/pam/args.ts";
import { freshConnections } from "../../src/kopano/attempt.ts";
import { parseLogoffReply, parseLogonReply } from "../../src/kopano/soap.ts";
import { httpReply, RawRequest, Responder, startRawServer } from "../lib/raw_server.ts";
import { repliesOf } from "../lib/captured_replies.ts";
import { captureDir, type HttpMessage, recordedResponse } from "../lib/captures.ts";

const enc = new TextEncoder();
const A1 = repliesOf("11.0.2").logonAccepted.body;
const B1 = repliesOf("11.0.2").logoff.body;

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

function withHeaders(head: string[], body: Uint8Array, status = "HTTP/1.1 200 OK"): Uint8Array {
  const h = enc.encode([status, ...head, "", ""].join("\r\n"));
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
    `${captureDir("11.0.2")}f2_kopano-passwd_alice_before_store_created.response.http`,
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

Deno.test("8.7.85 and 11.0.2 replies byte for byte: keep-alive reused, a fault and Connection: close end it", async () => {
  const bytes = (m: HttpMessage) => withHeaders(m.head.slice(1), m.body, m.head[0]);
  // Two logons kept alive on one connection, then the HTTP 500 fault a logon without the UNICODE
  // capability gets from 8.7.85 (Connection: close), then 11.0.2's a1 (Connection: close).
  const script = [
    recordedResponse("8.7.85", "http_keepalive_two_logons", 1),
    recordedResponse("8.7.85", "http_keepalive_two_logons", 2),
    recordedResponse("8.7.85", "http_logon_alice_no_unicode_cap"),
    recordedResponse("11.0.2", "a1_logon_alice_correct_password"),
    recordedResponse("8.7.85", "http_logoff_alice"),
  ];
  let n = 0;
  await withServer(() => {
    const m = script[n++];
    return { send: bytes(m), close: m.head.includes("Connection: close") };
  }, async (post, _reqs, conns) => {
    const first = await post();
    assert.equal(parseLogonReply(first.body).serverVersion, "0,8,7,85");
    assert.equal(parseLogonReply((await post()).body).er, 2147483657);
    assert.equal(conns(), 1);
    const fault = await post();
    assert.equal(fault.status, 500);
    assert.throws(() => parseLogonReply(fault.body), /MAPI_E_BAD_CHARWIDTH/);
    assert.equal(parseLogonReply((await post()).body).serverVersion, "0,11,0,2");
    assert.equal(conns(), 2);
    assert.equal(parseLogoffReply((await post()).body), 0);
    assert.equal(conns(), 3);
  });
});

Deno.test("compressed replies are refused unread, named; the next call gets a fresh connection", async () => {
  for (const coding of ["gzip", "deflate", "x-gzip", "br", "GZIP", "identity, gzip", "compress"]) {
    const z = await gzip(A1, "gzip");
    await withServer(
      (req) =>
        req.connection === 1
          ? withHeaders([`Content-Encoding: ${coding}`, `Content-Length: ${z.length}`], z)
          : httpReply(B1),
      async (post, _reqs, conns) => {
        await assert.rejects(post(), {
          name: "HttpError",
          message:
            `the server compressed its reply (Content-Encoding: ${
              coding.toLowerCase().replace(", ", ",")
            }), ` +
            "which pam_mapi never asks for",
        });
        // The unread compressed body must not become the start of the next reply.
        assert.equal(parseLogoffReply((await post()).body), 0);
        assert.equal(conns(), 2);
      },
    );
  }
  // "identity" (and an empty value) means not compressed.
  for (const coding of ["identity", ""]) {
    await withServer(
      () =>
        httpReply(A1, { headers: [`Content-Encoding: ${coding}`, `Content-Length: ${A1.length}`] }),
      async (post) => assert.equal(parseLogonReply((await post()).body).er, 0),
    );
  }
});

Deno.test("replies over 1 MiB are refused: declared, chunked and unframed", async () => {
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
});

Deno.test("malformed HTTP is an error, never a reply", async () => {
  const bad: (string | Uint8Array)[] = [
    "garbage\r\n\r\n",
    "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
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

Deno.test("hostile framing: chunk sizes, Content-Length conflicts, length lists are errors", async () => {
  const chunked = (size: string, data = "x", head = "Transfer-Encoding: chunked") =>
    `HTTP/1.1 200 OK\r\n${head}\r\n\r\n${size}\r\n${data}\r\n0\r\n\r\n`;
  const bad: [string, RegExp][] = [
    [chunked("-1"), /malformed chunk size/],
    [chunked("+1"), /malformed chunk size/],
    [chunked("0x1"), /malformed chunk size/],
    [chunked(""), /malformed chunk size/],
    [chunked("000000001"), /malformed chunk size/], // nine digits: more than we ever read
    [chunked("100000000"), /malformed chunk size/], // 2^32: would overflow a 32-bit size
    [chunked("fffffffffffffffff"), /malformed chunk size/],
    [chunked("ffffffff"), /larger than 1 MiB/],
    [chunked("2"), /malformed chunk/], // fewer bytes than declared
    [chunked("1", "xy"), /malformed chunk/], // more bytes than declared
    [chunked("1", "x", "Transfer-Encoding: chunked\r\nContent-Length: 1"), /both/],
    [chunked("1", "x", "Content-Length: 27\r\nTransfer-Encoding: chunked"), /both/],
    [chunked("1", "x", "Transfer-Encoding: gzip, chunked"), /unsupported transfer encoding/],
    [chunked("1", "x", "Transfer-Encoding: chunked, chunked"), /unsupported transfer encoding/],
    ["HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", /invalid Content-Length/],
    ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\nhello", /invalid/],
    ["HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", /invalid Content-Length/],
    ["HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello", /invalid Content-Length/],
    ["HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456\r\n\r\n", /invalid Content-Length/],
    ["HTTP/1.1 200 OK\r\nContent-Length: 1048577\r\n\r\n", /larger than 1 MiB/],
  ];
  for (const [reply, re] of bad) {
    await withServer(() => ({ send: reply, close: true }), async (post) => {
      await assert.rejects(
        post(),
        (e: Error) => e instanceof HttpError && re.test(e.message),
        reply,
      );
    });
  }
});

Deno.test("framing that is legal: leading zeros, extensions, HTTP/1.0 to the end of the stream", async () => {
  const hex = A1.length.toString(16);
  const replies = [
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${
      hex.padStart(8, "0")
    }\r\n${A1}\r\n0\r\n\r\n`,
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n${hex};x=y\r\n${A1}\r\n0\r\nX-T: 1\r\n\r\n`,
    `HTTP/1.1 200 OK\r\nContent-Length: ${enc.encode(A1).length}\r\nContent-Length: ${
      enc.encode(A1).length
    }\r\n\r\n${A1}`,
    `HTTP/1.0 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n\r\n${A1}`,
  ];
  for (const reply of replies) {
    await withServer(() => ({ send: reply, close: true }), async (post) => {
      assert.equal(parseLogonReply((await post()).body).sessionId, "13800724006105413899");
    });
  }
});

Deno.test("bytes after the declared length never become the next reply", async () => {
  const fake = httpReply(B1.replace("<result>0</result>", "<result>2147483664</result>"));
  await withServer(
    (req) => req.connection === 1 ? httpReply(A1) + fake : httpReply(B1),
    async (post, _reqs, conns) => {
      assert.equal(parseLogonReply((await post()).body).er, 0);
      // The smuggled second reply was discarded with its connection: logoff asks afresh.
      assert.equal(parseLogoffReply((await post()).body), 0);
      assert.equal(conns(), 2);
    },
  );
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
