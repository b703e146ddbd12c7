// Request builders and a reply reader for the sim's tests. Replies are read with
// fast-xml-parser, not with the sim's own XML code, so the two check each other.

import { XMLParser } from "fast-xml-parser";

export const NS_DECLS = 'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" ' +
  'xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" ' +
  'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" ' +
  'xmlns:xop="http://www.w3.org/2004/08/xop/include" xmlns:xmlmime="http://www.w3.org/2004/11/xmlmime" ' +
  'xmlns:ns="urn:zarafa"';

/** A request envelope around `inner` (e.g. "<ns:logon>…</ns:logon>"), gSOAP style. */
export function envelope(inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope ${NS_DECLS}>` +
    `<SOAP-ENV:Body SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">${inner}` +
    `</SOAP-ENV:Body></SOAP-ENV:Envelope>`;
}

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export interface LogonArgs {
  user?: string | null;
  password?: string | null;
  /** null: element omitted; "": empty element present. Default "" (KC client style). */
  impersonate?: string | null;
  caps?: number;
  flags?: number | null;
  version?: string;
  license?: string;
}

/** ns:logon. Defaults: caps 528 (UNICODE|LARGE_SESSIONID), ulFlags 1 (NO_UID_AUTH). */
export function logon(a: LogonArgs = {}): string {
  const parts: string[] = [];
  const user = a.user === undefined ? "alice" : a.user;
  const pass = a.password === undefined ? "secret" : a.password;
  if (user !== null) parts.push(`<szUsername>${esc(user)}</szUsername>`);
  if (pass !== null) parts.push(`<szPassword>${esc(pass)}</szPassword>`);
  const imp = a.impersonate === undefined ? "" : a.impersonate;
  if (imp !== null) {
    parts.push(
      imp === "" ? "<szImpersonateUser/>" : `<szImpersonateUser>${esc(imp)}</szImpersonateUser>`,
    );
  }
  parts.push(`<szVersion>${a.version ?? "11.0.2"}</szVersion>`);
  parts.push(`<ulCapabilities>${a.caps ?? 528}</ulCapabilities>`);
  if (a.flags !== null) parts.push(`<ulFlags>${a.flags ?? 1}</ulFlags>`);
  parts.push(`<sLicenseReq>${a.license ?? ""}</sLicenseReq><ullSessionGroup>0</ullSessionGroup>`);
  parts.push("<szClientApp>sim-test</szClientApp><szClientAppVersion>1.0</szClientAppVersion>");
  parts.push("<szClientAppMisc>test</szClientAppMisc>");
  return envelope(`<ns:logon>${parts.join("")}</ns:logon>`);
}

export function getUser(sid: string, userId = 0, entryId = ""): string {
  return envelope(
    `<ns:getUser><ulSessionId>${sid}</ulSessionId><ulUserId>${userId}</ulUserId><sUserId>${entryId}</sUserId></ns:getUser>`,
  );
}

export function logoff(sid: string): string {
  return envelope(`<ns:logoff><ulSessionId>${sid}</ulSessionId></ns:logoff>`);
}

export function resolveUsername(sid: string, name: string): string {
  return envelope(
    `<ns:resolveUsername><ulSessionId>${sid}</ulSessionId><lpszUsername>${
      esc(name)
    }</lpszUsername></ns:resolveUsername>`,
  );
}

/** An HTTP/1.1 POST carrying `body`; extra headers override the defaults. */
export function post(
  body: string | Uint8Array,
  opts: { close?: boolean; headers?: string[]; path?: string } = {},
) {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const head = [
    `POST ${opts.path ?? "/kopano"} HTTP/1.1`,
    "Host: localhost",
    "Content-Type: text/xml; charset=utf-8",
    `Content-Length: ${bytes.length}`,
    ...(opts.close ? ["Connection: close"] : []),
    ...(opts.headers ?? []),
  ].join("\r\n") + "\r\n\r\n";
  const h = new TextEncoder().encode(head);
  const out = new Uint8Array(h.length + bytes.length);
  out.set(h);
  out.set(bytes, h.length);
  return out;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  isArray: (name) => name === "item",
});

// deno-lint-ignore no-explicit-any
export type Xml = any;

/** The element inside SOAP-ENV:Body as a plain object ({name, value}). */
export function bodyElement(xml: string | Uint8Array): { name: string; value: Xml } {
  const text = typeof xml === "string" ? xml : new TextDecoder().decode(xml);
  const doc = parser.parse(text);
  const env = doc["SOAP-ENV:Envelope"];
  if (!env) throw new Error(`no SOAP envelope in ${text.slice(0, 200)}`);
  const body = env["SOAP-ENV:Body"];
  const names = Object.keys(body).filter((k) => !k.startsWith("@"));
  if (names.length !== 1) throw new Error(`expected one element in Body, got ${names.join(",")}`);
  return { name: names[0], value: body[names[0]] };
}

/** The text of a simple child element, "" for an empty one, undefined if absent. */
export function field(v: Xml, name: string): string | undefined {
  const x = v?.[name];
  if (x === undefined) return undefined;
  if (typeof x === "string") return x;
  return typeof x === "object" && x !== null ? (x["#text"] ?? "") : String(x);
}

export interface FeatureLists {
  enabled: string[] | undefined;
  disabled: string[] | undefined;
}

/** Reads the merged feature lists out of a getUser reply's lpsUser. */
export function features(lpsUser: Xml): FeatureLists {
  const items: Xml[] = lpsUser?.lpsMVPropmap?.item ?? [];
  const list = (id: string) => {
    const it = items.find((i) => field(i, "ulPropId") === id);
    if (!it) return undefined;
    const vals = it.sValues?.item ?? [];
    return vals.map((x: Xml) => (typeof x === "string" ? x : x["#text"] ?? ""));
  };
  return { enabled: list("1739788318"), disabled: list("1739853854") };
}
