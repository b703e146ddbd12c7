// The bytes sent for injected faults that replace the server's answer.

import { ENVELOPE_NAMESPACES } from "./constants.ts";
import { faultEnvelope, type GsoapGeneration } from "./envelope.ts";
import type { RawReply } from "./faults.ts";
import { buildReply, concat, REASONS, replyHead } from "./http_response.ts";

const enc = new TextEncoder();

function bytesOf(x: string | Uint8Array | undefined): Uint8Array {
  return x === undefined ? new Uint8Array(0) : typeof x === "string" ? enc.encode(x) : x;
}

/** 200 text/xml whose body is not XML: binary junk and stray markup. */
export function garbageReply(gsoap: GsoapGeneration): Promise<Uint8Array> {
  const body = concat([
    Uint8Array.from([0x00, 0xFF, 0xFE, 0x07]),
    enc.encode("\u00e9garbage <not-xml <<< & ]]> \r\n"),
    Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xFF),
  ]);
  return buildReply({ gsoap, status: 200, body, keepAlive: false });
}

/** 500 with a SOAP-ENV:Server fault, as a server-side failure would produce. */
export function http500Reply(gsoap: GsoapGeneration): Promise<Uint8Array> {
  const body = enc.encode(faultEnvelope(gsoap, "SOAP-ENV:Server", "Injected server fault"));
  return buildReply({ gsoap, status: 500, body, keepAlive: false });
}

/** 503 with an HTML page, as an HTTP proxy in front of the server would answer. */
export function http503Reply(): Uint8Array {
  const body = "<html><head><title>503 Service Unavailable</title></head>" +
    "<body><h1>Service Unavailable</h1></body></html>\n";
  return enc.encode(
    `HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

/** A custom reply: verbatim bytes, or status line + headers (+ Content-Length) + body. */
export function rawReply(r: RawReply): Uint8Array {
  if (r.bytes !== undefined) return bytesOf(r.bytes);
  const status = r.status ?? 200;
  const body = bytesOf(r.body);
  const headers: Array<[string, string]> = Array.isArray(r.headers)
    ? r.headers
    : Object.entries(r.headers ?? {});
  const has = (n: string) => headers.some(([k]) => k.toLowerCase() === n);
  if (!has("content-length") && !has("transfer-encoding")) {
    headers.push(["Content-Length", String(body.length)]);
  }
  if (!has("connection")) headers.push(["Connection", "close"]);
  const head = `HTTP/1.1 ${status} ${r.reason ?? REASONS[status] ?? "Unknown"}\r\n` +
    headers.map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
  return concat([enc.encode(head), body]);
}

/**
 * An endless logon reply of `total` body bytes, produced piece by piece so that even 100 MiB
 * never sits in memory: a valid envelope start, then one string element that never ends.
 */
export function* oversizedReply(gsoap: GsoapGeneration, total: number): Generator<Uint8Array> {
  yield enc.encode(
    replyHead({ gsoap, status: 200, body: new Uint8Array(0), keepAlive: false }, total),
  );
  const ns = ENVELOPE_NAMESPACES.map(([p, u]) => ` xmlns:${p}="${u}"`).join("");
  const start = enc.encode(
    `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope${ns}><SOAP-ENV:Body>` +
      `<ns:logonResponse><er>0</er><lpszVersion>`,
  );
  let left = total;
  const first = start.subarray(0, Math.min(start.length, left));
  yield first;
  left -= first.length;
  const filler = new Uint8Array(64 * 1024).fill(0x41); // "AAAA..."
  while (left > 0) {
    const piece = filler.subarray(0, Math.min(filler.length, left));
    yield piece;
    left -= piece.length;
  }
}
