// Access to the genuine kopano-server 11.0.2 captures in ../shared/fixtures/kopano-11.0.2.

export const FIXTURES =
  new URL("../../../../shared/fixtures/kopano-11.0.2/", import.meta.url).pathname;

const enc = new TextEncoder();
const dec = new TextDecoder();

function read(name: string): Uint8Array | null {
  try {
    return Deno.readFileSync(FIXTURES + name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

export interface Exchange {
  /** Request header lines (request line first), without line ends. */
  requestHead: string[];
  requestBody: Uint8Array;
  /** null: the server sent nothing at all (fixture d2). */
  responseHead: string[] | null;
  responseBody: Uint8Array | null;
}

function lines(b: Uint8Array): string[] {
  return dec.decode(b).split(/\r?\n/).filter((l) => l !== "");
}

/**
 * One recorded exchange. `n` selects the n-th exchange of a keep-alive capture (2, 3, ...).
 * Request bodies are "NAME.request.body.xml" (hand-written captures) or "NAME.request.body".
 */
export function exchange(name: string, n = 1): Exchange {
  const sfx = n === 1 ? "" : `.${n}`;
  const reqHead = read(`${name}.request${sfx}.headers`);
  const reqBody = read(`${name}.request${sfx}.body.xml`) ?? read(`${name}.request${sfx}.body`);
  if (!reqHead || !reqBody) throw new Error(`fixture ${name} #${n} not found in ${FIXTURES}`);
  const resHead = read(`${name}.response${sfx}.headers`);
  const resBody = read(`${name}.response${sfx}.body`);
  return {
    requestHead: lines(reqHead),
    requestBody: reqBody,
    responseHead: resHead ? lines(resHead) : null,
    responseBody: resBody,
  };
}

/** The request bytes with `rewrite` applied to the body and Content-Length recomputed. */
export function requestBytes(x: Exchange, rewrite: Map<string, string>): Uint8Array {
  let body = dec.decode(x.requestBody);
  for (const [from, to] of rewrite) body = body.split(from).join(to);
  const bodyBytes = enc.encode(body);
  const head = x.requestHead.map((l) =>
    /^content-length:/i.test(l) ? `Content-Length: ${bodyBytes.length}` : l
  );
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
