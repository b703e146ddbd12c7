// HTTP replies framed like gSOAP's http_response()/soap_puthttphdr(): always "HTTP/1.1", headers
// in gSOAP's order, Content-Length or (chunked mode) one chunk per 64 KiB buffer with uppercase
// hex sizes, Connection keep-alive or close. gSOAP 2.7 sent no X-Frame-Options.

import type { GsoapGeneration } from "./envelope.ts";

export const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  400: "Bad Request",
  405: "Method Not Allowed",
  413: "Request Entity Too Large",
  414: "Request-URI Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

const CHUNK = 64 * 1024;
const enc = new TextEncoder();

export interface ReplyOptions {
  gsoap: GsoapGeneration;
  status: number;
  body: Uint8Array;
  keepAlive: boolean;
  chunked?: boolean;
  /** Content-Encoding: gzip (ZCP compression). */
  gzip?: boolean;
  contentType?: string;
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

export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The status line and headers, up to and including the blank line. */
export function replyHead(o: ReplyOptions, bodyLength: number): string {
  const lines = [
    `HTTP/1.1 ${o.status} ${REASONS[o.status] ?? "Unknown"}`,
    `Server: gSOAP/${o.gsoap}`,
  ];
  if (o.gsoap === "2.8") lines.push("X-Frame-Options: SAMEORIGIN");
  lines.push(`Content-Type: ${o.contentType ?? "text/xml; charset=utf-8"}`);
  if (o.gzip) lines.push("Content-Encoding: gzip");
  if (o.chunked) lines.push("Transfer-Encoding: chunked");
  else lines.push(`Content-Length: ${bodyLength}`);
  lines.push(`Connection: ${o.keepAlive ? "keep-alive" : "close"}`);
  return lines.join("\r\n") + "\r\n\r\n";
}

/** The complete reply bytes. */
export async function buildReply(o: ReplyOptions): Promise<Uint8Array> {
  const body = o.gzip ? await gzip(o.body) : o.body;
  const head = enc.encode(replyHead(o, body.length));
  if (!o.chunked) return concat([head, body]);
  const parts: Uint8Array[] = [head];
  for (let i = 0; i < body.length; i += CHUNK) {
    const piece = body.subarray(i, i + CHUNK);
    parts.push(
      enc.encode(`${piece.length.toString(16).toUpperCase()}\r\n`),
      piece,
      enc.encode("\r\n"),
    );
  }
  parts.push(enc.encode("0\r\n\r\n"));
  return concat(parts);
}
