// The HTTP reader's bounds (src/kopano/http_reader.ts): a reply breaks one of them, or it is read; and a
// genuine reply is read however the server slices it, one byte per write included. Each bound is
// tested at its limit (accepted) and one past it (refused), so that a limit set wrong either way
// fails here.
import assert from "node:assert/strict";
import { parseSocket } from "../../src/pam/args.ts";
import { freshConnections } from "../../src/kopano/attempt.ts";
import { Deadline } from "../../src/common/deadline.ts";
import { Channel, HttpError } from "../../src/kopano/http.ts";
import {
  MAX_BODY,
  MAX_CHUNK_LINE,
  MAX_CHUNKS,
  MAX_HEAD,
  MAX_HEADER_LINE,
  MAX_HEADERS,
  MAX_STATUS_LINE,
} from "../../src/kopano/http_reader.ts";
import { parseLogonReply } from "../../src/kopano/soap.ts";
import { captureText } from "../lib/captures.ts";
import { type Action, startRawServer } from "../lib/raw_server.ts";

const A1 = captureText("11.0.2", "a1_logon_alice_correct_password.response.body");
const SESSION = "13800724006105413899";
const enc = new TextEncoder();

/** One post to a server that answers `action`; the reply's body, or the error it threw. */
async function exchange(action: Action): Promise<string | Error> {
  const server = await startRawServer(() => action);
  const spec = parseSocket(server.url);
  const deadline = new Deadline(10_000);
  const ch = new Channel(freshConnections(spec, undefined, deadline, () => {}), spec, deadline);
  try {
    return (await ch.post("<x/>")).body;
  } catch (e) {
    return e as Error;
  } finally {
    ch.close();
    deadline.cancel();
    await server.close();
  }
}

async function accepted(action: Action, what: string): Promise<void> {
  const r = await exchange(action);
  assert.ok(typeof r === "string", `${what}: ${r}`);
  assert.equal(parseLogonReply(r).sessionId, SESSION, what);
}

async function refused(action: Action, re: RegExp, what: string): Promise<void> {
  const r = await exchange(action);
  assert.ok(r instanceof HttpError && re.test(r.message), `${what}: ${r}`);
}

const lengthReply = (headers: string[] = [], status = "HTTP/1.1 200 OK") =>
  [status, ...headers, `Content-Length: ${enc.encode(A1).length}`, "", A1].join("\r\n");

function chunkedReply(sizes: number[], ext = "", trailers: string[] = []): string {
  const body = enc.encode(A1);
  let out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  let off = 0;
  for (const size of sizes) {
    out += `${size.toString(16)}${ext}\r\n${A1.slice(off, off + size)}\r\n`;
    off += size;
  }
  assert.equal(off, body.length, "the sizes cover the body (ASCII)");
  return out + "0\r\n" + trailers.map((t) => t + "\r\n").join("") + "\r\n";
}

/** `n` sizes (at least 1 each) that add up to A1's length. */
function split(n: number): number[] {
  const total = enc.encode(A1).length;
  const sizes = Array.from({ length: n }, () => 1);
  sizes[n - 1] += total - n;
  return sizes;
}

Deno.test("a genuine reply written one byte at a time is read whole", async () => {
  const bytes = enc.encode(chunkedReply(split(40), ";x=y", ["X-T: 1"]));
  await accepted({
    stream: async (w) => {
      for (let i = 0; i < bytes.length; i++) await w(bytes.subarray(i, i + 1));
    },
  }, "one byte per write");
});

Deno.test("chunks: at most 1024 per body", async () => {
  assert.equal(MAX_CHUNKS, 1024);
  // Padded with spaces, A1 can be cut into 1024 or 1025 chunks.
  const padded = A1.replace("<SOAP-ENV:Body", " ".repeat(MAX_CHUNKS) + "<SOAP-ENV:Body");
  const reply = (n: number) => {
    const body = enc.encode(padded);
    let out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    const first = body.length - (n - 1);
    out += `${first.toString(16)}\r\n${padded.slice(0, first)}\r\n`;
    for (let i = first; i < body.length; i++) out += `1\r\n${padded[i]}\r\n`;
    return out + "0\r\n\r\n";
  };
  const r = await exchange(reply(MAX_CHUNKS));
  assert.ok(typeof r === "string", String(r));
  assert.equal(parseLogonReply(r).sessionId, SESSION);
  await refused(reply(MAX_CHUNKS + 1), /more than 1024 chunks/, "1025 chunks");
});

Deno.test("chunk-size lines: extensions allowed up to 256 bytes a line", async () => {
  const ext = (n: number) => ";e=" + "v".repeat(n);
  // The size (3 hex digits here) and the extension make the line.
  const size = enc.encode(A1).length.toString(16);
  const room = MAX_CHUNK_LINE - size.length - 3;
  await accepted(chunkedReply(split(1), ext(room)), "a 256-byte chunk line");
  await refused(chunkedReply(split(1), ext(room + 1)), /line too long/, "a 257-byte chunk line");
});

Deno.test("header lines: at most 64, each at most 8 KiB, 16 KiB in all", async () => {
  const filler = (n: number) => Array.from({ length: n }, (_, i) => `X-F${i}: ${i}`);
  // Content-Length is one of them.
  await accepted(lengthReply(filler(MAX_HEADERS - 1)), "64 header lines");
  await refused(lengthReply(filler(MAX_HEADERS)), /more than 64 HTTP header lines/, "65");
  // The same name again and again: counted like any other.
  const same = (n: number) => Array.from({ length: n }, () => "a:");
  await refused(lengthReply(same(20_000)), /more than 64 HTTP header lines/, "20 000 of one");
  const long = (n: number) => `X-Long: ${"y".repeat(n - 8)}`;
  await accepted(lengthReply([long(MAX_HEADER_LINE)]), "an 8 KiB line");
  await refused(lengthReply([long(MAX_HEADER_LINE + 1)]), /line too long/, "one byte more");
  // Two lines of 8000 bytes fit; a third, of 400, is one too many.
  await accepted(lengthReply([long(8000), long(8000)]), "16 000 bytes in all");
  await refused(
    lengthReply([long(8000), long(8000), long(400)]),
    /header too large/,
    "over 16 KiB in all",
  );
  assert.ok(2 * 8002 + 16 + 18 <= MAX_HEAD && 2 * 8002 + 402 > MAX_HEAD);
});

Deno.test("trailer lines: bounded like header lines", async () => {
  const t = (n: number) => Array.from({ length: n }, (_, i) => `X-T${i}: ${i}`);
  await accepted(chunkedReply(split(2), "", t(MAX_HEADERS)), "64 trailer lines");
  await refused(chunkedReply(split(2), "", t(MAX_HEADERS + 1)), /trailer lines/, "65");
});

Deno.test("the status line: at most 256 bytes", async () => {
  const status = (n: number) => `HTTP/1.1 200 ${"K".repeat(n - 13)}`;
  await accepted(lengthReply([], status(MAX_STATUS_LINE)), "a 256-byte status line");
  await refused(lengthReply([], status(MAX_STATUS_LINE + 1)), /line too long/, "257 bytes");
});

Deno.test("a line that never ends is refused at its limit, not read to the end of the stream", async () => {
  let sent = 0;
  const r = await exchange({
    stream: async (w) => {
      await w(enc.encode("HTTP/1.1 200 OK\r\nX-Endless: "));
      const block = new Uint8Array(4096).fill(0x79);
      for (; sent < 64 * MAX_HEADER_LINE; sent += block.length) await w(block);
    },
  });
  assert.ok(r instanceof HttpError && /line too long/.test(r.message), String(r));
});

Deno.test("a body of exactly 1 MiB is read, chunked and by length", async () => {
  const padded = A1.replace(
    "<SOAP-ENV:Body",
    " ".repeat(MAX_BODY - enc.encode(A1).length) + "<SOAP-ENV:Body",
  );
  assert.equal(enc.encode(padded).length, MAX_BODY);
  const r1 = await exchange(`HTTP/1.1 200 OK\r\nContent-Length: ${MAX_BODY}\r\n\r\n${padded}`);
  assert.ok(typeof r1 === "string", String(r1));
  assert.equal(parseLogonReply(r1).sessionId, SESSION);
  // In 1024 chunks of 1 KiB: the most chunks and the most bytes at once.
  let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (let off = 0; off < MAX_BODY; off += 1024) {
    chunked += `400\r\n${padded.slice(off, off + 1024)}\r\n`;
  }
  const r2 = await exchange(chunked + "0\r\n\r\n");
  assert.ok(typeof r2 === "string", String(r2));
  assert.equal(r2, padded);
});
