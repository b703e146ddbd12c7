// Replaying a captured request to the sim and making its reply comparable with the recorded one:
// the request with live ids put in, the per-server values of a reply masked. The captures
// themselves are read through tests/lib/captures.ts.
import type { HttpMessage } from "../../lib/captures.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * The request bytes with `rewrite` applied to the body, `headers` replacing header lines of the
 * same name, and Content-Length recomputed.
 */
export function requestBytes(
  x: HttpMessage,
  rewrite: Map<string, string>,
  headers: string[] = [],
): Uint8Array {
  let body = dec.decode(x.body);
  for (const [from, to] of rewrite) body = body.split(from).join(to);
  const bodyBytes = enc.encode(body);
  const name = (l: string) => l.slice(0, l.indexOf(":")).toLowerCase();
  const head = x.head.map((l) => {
    if (/^content-length:/i.test(l)) return `Content-Length: ${bodyBytes.length}`;
    return headers.find((h) => name(h) === name(l)) ?? l;
  });
  const h = enc.encode(head.join("\r\n") + "\r\n\r\n");
  const out = new Uint8Array(h.length + bodyBytes.length);
  out.set(h);
  out.set(bodyBytes, h.length);
  return out;
}

/** Text of the first <tag>…</tag> in xml, or undefined. */
export function elementText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m?.[1];
}

/**
 * The values that legitimately differ between runs (session ids, server GUID, entry ids, the
 * license blob) replaced by placeholders, when present and non-empty/non-zero.
 */
export function maskVolatile(xml: string): string {
  return xml
    .replace(/<ulSessionId>([1-9]\d*)<\/ulSessionId>/g, "<ulSessionId>#SESSION</ulSessionId>")
    .replace(/<sServerGuid>([^<]+)<\/sServerGuid>/g, "<sServerGuid>#GUID</sServerGuid>")
    .replace(/<sUserId>([^<]+)<\/sUserId>/g, "<sUserId>#ENTRYID</sUserId>")
    .replace(
      /<sLicenseResponse>([^<]+)<\/sLicenseResponse>/g,
      "<sLicenseResponse>#LICENSE</sLicenseResponse>",
    );
}
