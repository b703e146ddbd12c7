// The genuine kopano-server captures in tests/fixtures/ (see its README): the one place that knows
// where each generation's files are and how to read an exchange whatever its layout. 11.0.2 has
// the request and reply split into headers and body files; 8.7.85 has the raw bytes of each
// (NAME.request.http, NAME.response.http), several replies of one connection in one file.

/** The server releases the captures come from, newest first. */
export const GENERATIONS = ["11.0.2", "8.7.85"] as const;
export type Generation = typeof GENERATIONS[number];

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The directory of one generation's captures, with a trailing slash. */
export function captureDir(generation: Generation): string {
  return new URL(`../fixtures/kopano-${generation}/`, import.meta.url).pathname;
}

/** A capture file's bytes; throws NotFound naming the file. */
export function captureBytes(generation: Generation, file: string): Uint8Array {
  return Deno.readFileSync(captureDir(generation) + file);
}

export function captureText(generation: Generation, file: string): string {
  return dec.decode(captureBytes(generation, file));
}

function readIfThere(generation: Generation, file: string): Uint8Array | null {
  try {
    return captureBytes(generation, file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** One HTTP message: its header lines (start line first, no line ends) and its body. */
export interface HttpMessage {
  head: string[];
  body: Uint8Array;
}

export interface Exchange {
  request: HttpMessage;
  /** null: the server sent nothing at all (11.0.2 d2). */
  response: HttpMessage | null;
}

function headLines(b: Uint8Array): string[] {
  return dec.decode(b).split(/\r?\n/).filter((l) => l !== "");
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The HTTP messages recorded one after the other in a raw capture, framed by Content-Length.
 * Anything between two messages (8.7.85 marks a connection's next reply with a "----" line) is
 * skipped up to the next "HTTP/" or "POST " start line.
 */
export function splitMessages(raw: Uint8Array): HttpMessage[] {
  const out: HttpMessage[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = indexOfBytes(raw, enc.encode("\r\n\r\n"), at);
    if (end < 0) throw new Error("capture: a message without the blank line after its headers");
    const head = headLines(raw.subarray(at, end));
    const length = head.map((l) => /^content-length:\s*(\d+)$/i.exec(l)).find((m) => m)?.[1];
    if (length === undefined) throw new Error(`capture: no Content-Length in ${head[0]}`);
    const bodyEnd = end + 4 + Number(length);
    if (bodyEnd > raw.length) throw new Error(`capture: body shorter than ${length} bytes`);
    out.push({ head, body: raw.subarray(end + 4, bodyEnd) });
    const next = [enc.encode("\nHTTP/"), enc.encode("\nPOST ")]
      .map((s) => indexOfBytes(raw, s, bodyEnd - 1)).filter((i) => i >= 0);
    at = next.length ? Math.min(...next) + 1 : raw.length;
  }
  return out;
}

/** The n-th message of a split (headers + body files) or raw (.http) capture, or null. */
function message(
  generation: Generation,
  name: string,
  side: "request" | "response",
  n: number,
): HttpMessage | null {
  const sfx = n === 1 ? "" : `.${n}`;
  const head = readIfThere(generation, `${name}.${side}${sfx}.headers`);
  const body = readIfThere(generation, `${name}.${side}${sfx}.body.xml`) ??
    readIfThere(generation, `${name}.${side}${sfx}.body`);
  if (head && body) return { head: headLines(head), body };
  const raw = readIfThere(generation, `${name}.${side}.http`);
  if (!raw || raw.length === 0) return null;
  return splitMessages(raw)[n - 1] ?? null;
}

/**
 * One recorded exchange; `n` selects the n-th of a keep-alive capture (2, 3, ...). Throws when
 * there is no such request (8.7.85 http_keepalive_two_logons has replies only: recordedResponse).
 */
export function exchange(generation: Generation, name: string, n = 1): Exchange {
  const request = message(generation, name, "request", n);
  if (!request) throw new Error(`capture ${name} #${n}: no request in ${captureDir(generation)}`);
  return { request, response: message(generation, name, "response", n) };
}

/** The n-th recorded reply of a capture; throws if there is none. */
export function recordedResponse(generation: Generation, name: string, n = 1): HttpMessage {
  const r = message(generation, name, "response", n);
  if (!r) throw new Error(`capture ${name} #${n}: no reply in ${captureDir(generation)}`);
  return r;
}

/** A reply as a test server would send it again: the status ("500 Internal Server Error"), the
 * body text. */
export interface CapturedReply {
  status: string;
  body: string;
}

export function capturedReply(generation: Generation, name: string, n = 1): CapturedReply {
  const r = recordedResponse(generation, name, n);
  return { status: r.head[0].replace(/^HTTP\/1\.[01] /, ""), body: dec.decode(r.body) };
}
