// Reads one request off a connection the way gSOAP's server side does: an HTTP/1.x request
// (Content-Length, chunked, or neither: then the XML itself says where it ends), or bare XML
// without any header (a body starting with "<", as kcc-go sends on the UNIX socket).
// gSOAP's limits: request line 1024 bytes (else 414), header line 8192 bytes (else "Header line
// too long"). The sim adds a cap on the body so tests cannot exhaust its memory.

import type { ByteReader } from "./byte_reader.ts";
import { xmlRootEnd } from "./xml.ts";

export interface RawRequest {
  /** Header-less XML. */
  bare: boolean;
  method: string | null;
  target: string | null;
  /** "1.1", "1.0", ... ; null for bare XML. */
  version: string | null;
  headers: Array<[string, string]>;
  /** De-chunked, still content-encoded. */
  body: Uint8Array;
  /** HTTP/1.1 without "Connection: close" (and bare XML). */
  keepAlive: boolean;
}

export type ReadOutcome =
  | { kind: "eof" }
  | { kind: "request"; req: RawRequest }
  /** Refused before the body: answered with a fault (GET -> 405, ...), then closed. */
  | { kind: "reject"; req: RawRequest; status: number; text: string }
  /** HEAD / OPTIONS: gSOAP answers an empty 200. */
  | { kind: "empty"; req: RawRequest }
  /** Not answerable: input ended early, too large, not HTTP. Closed without a reply. */
  | { kind: "abort"; reason: string; req: RawRequest | null };

const REQUEST_LINE_MAX = 1024;
const HEADER_LINE_MAX = 8192;
const HEADER_BLOCK_MAX = 64 * 1024;

export function header(req: RawRequest, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of req.headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}

/** Reads until the XML root element is complete (or input ends / the cap is hit). */
async function readXmlFramed(r: ByteReader, max: number): Promise<Uint8Array | null> {
  for (;;) {
    const end = xmlRootEnd(r.peek());
    if (end !== null) return end > max ? null : r.consume(end);
    if (r.buffered > max) return null;
    if (!await r.fill()) {
      if (!r.eof) return null; // cap reached
      return r.consume(r.buffered);
    }
  }
}

async function readChunked(r: ByteReader, max: number): Promise<Uint8Array | "eof" | "large"> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { line, end } = await r.readLine(HEADER_LINE_MAX);
    if (end !== "lf") return "eof";
    const size = Number.parseInt(line.split(";")[0].trim() || "0", 16);
    if (!Number.isFinite(size) || size === 0) break;
    total += size;
    if (total > max) return "large";
    const data = await r.readExact(size);
    if (data.length < size) return "eof";
    parts.push(data);
    const crlf = await r.readLine(2);
    if (crlf.end !== "lf") return "eof";
  }
  for (;;) { // trailer
    const { line, end } = await r.readLine(HEADER_LINE_MAX);
    if (end !== "lf") return "eof";
    if (line === "") break;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Reads the next request. Call after skipBlanks() found a byte. `onContinue` is called when the
 * client sent "Expect: 100-continue" (gSOAP answers 100 Continue before reading the body).
 */
export async function readRequest(
  r: ByteReader,
  maxBody: number,
  onContinue: () => Promise<void>,
): Promise<ReadOutcome> {
  const first = r.peek()[0];
  if (first === 0x3C) { // "<": header-less XML
    const body = await readXmlFramed(r, maxBody);
    const req: RawRequest = {
      bare: true,
      method: null,
      target: null,
      version: null,
      headers: [],
      body: body ?? new Uint8Array(0),
      keepAlive: true,
    };
    return body === null
      ? { kind: "abort", reason: "body too large", req }
      : { kind: "request", req };
  }
  if (!((first >= 0x41 && first <= 0x5A) || (first >= 0x61 && first <= 0x7A))) {
    return { kind: "abort", reason: "neither HTTP nor XML", req: null };
  }
  const reqLine = await r.readLine(REQUEST_LINE_MAX);
  const parts = reqLine.line.split(/[ \t]+/);
  const req: RawRequest = {
    bare: false,
    method: parts[0] ?? null,
    target: parts[1] ?? null,
    version: null,
    headers: [],
    body: new Uint8Array(0),
    keepAlive: false,
  };
  if (reqLine.end === "long") {
    return { kind: "reject", req, status: 414, text: "Error 414: HTTP 414 Request-URI Too Large" };
  }
  if (reqLine.end === "eof") {
    return { kind: "abort", reason: "input ended in the request line", req };
  }
  const proto = /HTTP\/(\d+\.\d+)/.exec(reqLine.line);
  if (!proto) return { kind: "abort", reason: "no HTTP version in the request line", req };
  req.version = proto[1];
  let headerBytes = 0;
  for (;;) {
    const h = await r.readLine(HEADER_LINE_MAX);
    if (h.end === "long") {
      return { kind: "reject", req, status: 500, text: "Header line too long" };
    }
    headerBytes += h.line.length;
    if (headerBytes > HEADER_BLOCK_MAX) {
      return { kind: "abort", reason: "header block too large", req };
    }
    if (h.end === "eof" && h.line === "") break; // gSOAP: "EOF in HTTP header, continue anyway"
    if (h.line === "") break;
    const colon = h.line.indexOf(":");
    if (colon > 0) req.headers.push([h.line.slice(0, colon), h.line.slice(colon + 1).trim()]);
    if (h.end === "eof") break;
  }
  // Keep-alive only for HTTP/1.1 (gSOAP looks at the minor digit) without "Connection: close".
  req.keepAlive = req.version.endsWith(".1") &&
    header(req, "Connection")?.toLowerCase() !== "close";

  switch (req.method) {
    case "POST":
      break;
    case "GET":
      return { kind: "reject", req, status: 405, text: "HTTP GET method not implemented" };
    case "HEAD":
    case "OPTIONS":
      return { kind: "empty", req };
    default:
      return { kind: "reject", req, status: 405, text: "Error 405: HTTP 405 Method Not Allowed" };
  }
  if (header(req, "Expect")?.toLowerCase() === "100-continue") await onContinue();

  if (header(req, "Transfer-Encoding")?.toLowerCase() === "chunked") {
    const body = await readChunked(r, maxBody);
    if (body === "eof") return { kind: "abort", reason: "input ended inside a chunk", req };
    if (body === "large") return { kind: "abort", reason: "body too large", req };
    req.body = body;
    return { kind: "request", req };
  }
  const cl = header(req, "Content-Length");
  if (cl !== undefined) {
    const n = Number(/^\s*(\d*)/.exec(cl)![1] || "0"); // strtoul: garbage reads as 0
    if (n > maxBody) return { kind: "abort", reason: "body too large", req };
    req.body = await r.readExact(n);
    // A short body is parsed as it is: the XML then ends early and the request is dropped.
    return { kind: "request", req };
  }
  await r.skipBlanks();
  const body = await readXmlFramed(r, maxBody);
  if (body === null) return { kind: "abort", reason: "body too large", req };
  req.body = body;
  return { kind: "request", req };
}
