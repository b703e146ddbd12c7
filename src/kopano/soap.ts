// SOAP envelopes for the three calls pam_mapi makes (logon, getUser, logoff) and the readers for
// their replies. Requests are built as strings in the style gSOAP itself produces (docs/kopano.md §2);
// replies are read by local element name, attributes ignored (docs/kopano.md §1).
import { child, parseXml, XmlElement, XmlError } from "./xml.ts";
import { VERSION } from "../common/version.ts";
import { kcerrName } from "./kcerr.ts";

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"' +
  ' xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"' +
  ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' +
  ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"' +
  ' xmlns:xop="http://www.w3.org/2004/08/xop/include"' +
  ' xmlns:xmlmime="http://www.w3.org/2004/11/xmlmime" xmlns:ns="urn:zarafa">' +
  '<SOAP-ENV:Body SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">';
const TAIL = "</SOAP-ENV:Body></SOAP-ENV:Envelope>";

/** KOPANO_CAP_UNICODE (0x200) | KOPANO_CAP_LARGE_SESSIONID (0x10). Never COMPRESSION/ENHANCED_ICS. */
export const LOGON_CAPABILITIES = 528;
/** KOPANO_LOGON_NO_UID_AUTH: the server must check the password even over a UNIX socket. */
export const LOGON_FLAGS = 1;
/** A Kopano-style client version; servers refuse general versions below 6. */
export const CLIENT_VERSION = "11.0.2";

/** Escapes element content. CR is written as a character reference: XML parsers turn a raw CR into LF. */
export function xmlEscape(s: string): string {
  return s.replace(
    /[&<>\r]/g,
    (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&#13;",
  );
}

const encoder = new TextEncoder();
/** `&`, `<`, `>` and CR, as xmlEscape writes them. */
const ESCAPED = new Map<number, Uint8Array>([
  [0x26, encoder.encode("&amp;")],
  [0x3c, encoder.encode("&lt;")],
  [0x3e, encoder.encode("&gt;")],
  [0x0d, encoder.encode("&#13;")],
]);

/** `bytes` (UTF-8) escaped like xmlEscape, into `out` at `o`; returns the new offset. */
function xmlEscapeInto(bytes: Uint8Array, out: Uint8Array, o: number): number {
  for (const c of bytes) {
    const e = ESCAPED.get(c);
    if (e === undefined) {
      out[o++] = c;
    } else {
      out.set(e, o);
      o += e.length;
    }
  }
  return o;
}

/**
 * The logon request, as bytes. The password goes from the request's bytes straight into these,
 * never through a string, which could not be wiped (Channel.post wipes these). szImpersonateUser
 * is deliberately absent (pam_mapi(8), SECURITY): with the element present a Kopano server may grant a session
 * on the caller's UNIX identity alone.
 */
export function logonEnvelope(
  user: string,
  password: Uint8Array,
  clientMisc: string | null,
): Uint8Array {
  const before = encoder.encode(
    HEAD + "<ns:logon>" + `<szUsername>${xmlEscape(user)}</szUsername>` + "<szPassword>",
  );
  const after = encoder.encode(
    "</szPassword>" +
      `<szVersion>${CLIENT_VERSION}</szVersion>` +
      `<ulCapabilities>${LOGON_CAPABILITIES}</ulCapabilities>` +
      `<ulFlags>${LOGON_FLAGS}</ulFlags>` +
      "<sLicenseReq></sLicenseReq><ullSessionGroup>0</ullSessionGroup>" +
      "<szClientApp>pam_mapi</szClientApp>" +
      `<szClientAppVersion>${xmlEscape(VERSION)}</szClientAppVersion>` +
      (clientMisc === null ? "" : `<szClientAppMisc>${xmlEscape(clientMisc)}</szClientAppMisc>`) +
      "</ns:logon>" + TAIL,
  );
  let escaped = 0;
  for (const c of password) escaped += ESCAPED.get(c)?.length ?? 1;
  const out = new Uint8Array(before.length + escaped + after.length);
  out.set(before);
  out.set(after, xmlEscapeInto(password, out, before.length));
  return out;
}

/** getUser with user id 0 and an empty entry id: the session's own user. */
export function getUserEnvelope(sessionId: string): string {
  return HEAD + `<ns:getUser><ulSessionId>${sessionId}</ulSessionId><ulUserId>0</ulUserId>` +
    "<sUserId></sUserId></ns:getUser>" + TAIL;
}

export function logoffEnvelope(sessionId: string): string {
  return HEAD + `<ns:logoff><ulSessionId>${sessionId}</ulSessionId></ns:logoff>` + TAIL;
}

/** A reply that is not a usable answer: malformed, a fault, or the wrong shape. */
export class SoapError extends Error {
  constructor(message: string, readonly fault = false) {
    super(message);
    this.name = "SoapError";
  }
}

/** First element of the SOAP Body; a Fault becomes a SoapError naming faultcode and faultstring. */
function responseElement(body: string, expected: string): XmlElement {
  // Cheap early refusal before any parsing work: SOAP forbids DTDs (and entity bombs need one).
  if (/<!DOCTYPE|<!ENTITY/i.test(body)) throw new SoapError("reply contains a DTD");
  if (body === "") throw new SoapError("reply has no body");
  let envelope: XmlElement;
  try {
    envelope = parseXml(body);
  } catch (e) {
    if (e instanceof XmlError) throw new SoapError(`reply is not well-formed XML: ${e.message}`);
    throw e;
  }
  if (envelope.name !== "Envelope") throw new SoapError("reply is not a SOAP envelope");
  const [first, ...more] = single(envelope, "Body")?.children ?? [];
  if (!first) throw new SoapError("reply has an empty SOAP body");
  // gSOAP answers with one element (SOAP_XML_TREE: no multi-reference parts after it).
  if (more.length > 0) throw new SoapError("reply has more than one element in the SOAP body");
  if (first.name === "Fault") {
    const code = child(first, "faultcode")?.text.trim() ?? "";
    const text = child(first, "faultstring")?.text.trim() ?? "";
    throw new SoapError(
      `SOAP fault ${code || "(no code)"}: ${faultText(text) || "(no text)"}`,
      true,
    );
  }
  if (first.name !== expected) throw new SoapError(`unexpected reply element ${first.name}`);
  return first;
}

/**
 * A fault text with the error code in it named: kopano-server 8.7 turns an error code returned by
 * a call into gSOAP's "Error -2147221245" (a logon without the UNICODE capability), which says
 * nothing to an administrator until it reads "= MAPI_E_BAD_CHARWIDTH (0x80040103)".
 */
function faultText(text: string): string {
  const m = /^Error (-?\d{1,10})$/.exec(text);
  const n = m ? Number(m[1]) : 0;
  if (n === 0 || n < -(2 ** 31) || n >= 2 ** 32) return text;
  const name = kcerrName(n >>> 0);
  return name.startsWith("unknown") ? text : `${text} = ${name}`;
}

/**
 * The element holding the result fields. ZCP <= 7.1 built with gSOAP 2.8 may wrap the struct one
 * level deeper (docs/kopano.md §1, §5): descend when the field is missing but a lone child has it.
 */
function fields(resp: XmlElement, key: string): XmlElement {
  if (!child(resp, key) && resp.children.length === 1 && child(resp.children[0], key)) {
    return resp.children[0];
  }
  return resp;
}

/**
 * The child element with this local name, if any. A second one makes the reply malformed: which
 * one counts would be a guess (gSOAP's own reader takes the first, a proxy might take the last).
 */
function single(el: XmlElement, name: string): XmlElement | undefined {
  const found = el.children.filter((c) => c.name === name);
  if (found.length > 1) throw new SoapError(`reply has more than one ${name}`);
  return found[0];
}

/** The text of a field that holds a value, never elements (gSOAP would refuse them too). */
function scalar(el: XmlElement): string {
  if (el.children.length > 0) throw new SoapError(`reply has elements inside ${el.name}`);
  return el.text;
}

const UINT32_MAX = 0xffffffff;
const UINT64_MAX = (1n << 64n) - 1n;

function uint32(el: XmlElement | undefined, what: string): number {
  const s = el && scalar(el).trim();
  if (s === undefined) throw new SoapError(`reply has no ${what}`);
  if (!/^[0-9]{1,10}$/.test(s) || Number(s) > UINT32_MAX) {
    throw new SoapError(`reply has an invalid ${what}`);
  }
  return Number(s);
}

/** 64-bit session ids stay strings (a JS number would lose digits); canonical decimal, no zeros. */
function uint64(el: XmlElement | undefined, what: string): string {
  const s = el && scalar(el).trim();
  if (s === undefined) throw new SoapError(`reply has no ${what}`);
  if (!/^[0-9]{1,20}$/.test(s) || BigInt(s) > UINT64_MAX) {
    throw new SoapError(`reply has an invalid ${what}`);
  }
  return BigInt(s).toString();
}

export interface LogonReply {
  er: number;
  /** Decimal session id; "0" when none was given. */
  sessionId: string;
  /** lpszVersion as sent (e.g. "0,11,0,2"), or null when absent. */
  serverVersion: string | null;
}

export function parseLogonReply(body: string): LogonReply {
  const r = fields(responseElement(body, "logonResponse"), "er");
  const er = uint32(single(r, "er"), "error code (er)");
  const sid = single(r, "ulSessionId");
  const sessionId = sid ? uint64(sid, "session id") : "0";
  const v = single(r, "lpszVersion");
  return { er, sessionId, serverVersion: v ? scalar(v) : null };
}

export interface UserReply {
  er: number;
  /** Whether the reply carried the user object (lpsUser). */
  hasUser: boolean;
  /** Effective enabled / disabled feature lists as the server sent them (null: not sent). */
  enabled: string[] | null;
  disabled: string[] | null;
}

// PR_EC_ENABLED_FEATURES / PR_EC_DISABLED_FEATURES, _A (on the wire) and _W variants.
const ENABLED_PROPS = new Set([1739788318, 1739788319]);
const DISABLED_PROPS = new Set([1739853854, 1739853855]);

/**
 * A server sends one user object with one property map holding each list once; anything more is
 * not a reply we understand (reading only the first, or merging, could turn it into a success).
 */
export function parseGetUserReply(body: string): UserReply {
  const r = fields(responseElement(body, "getUserResponse"), "er");
  const er = uint32(single(r, "er"), "error code (er)");
  const user = single(r, "lpsUser");
  let enabled: string[] | null = null;
  let disabled: string[] | null = null;
  const mv = user && single(user, "lpsMVPropmap");
  for (const item of mv?.children ?? []) {
    if (item.name !== "item") continue;
    const prop = uint32(single(item, "ulPropId"), "property id");
    const which = ENABLED_PROPS.has(prop)
      ? "enabled"
      : DISABLED_PROPS.has(prop)
      ? "disabled"
      : null;
    if (which === null) continue;
    if ((which === "enabled" ? enabled : disabled) !== null) {
      throw new SoapError(`reply has more than one ${which} feature list`);
    }
    const values = (single(item, "sValues")?.children ?? [])
      .filter((v) => v.name === "item").map(scalar);
    if (which === "enabled") enabled = values;
    else disabled = values;
  }
  return { er, hasUser: user !== undefined, enabled, disabled };
}

/** logoff answers in an element named `result`, not `er` (docs/kopano.md §4). */
export function parseLogoffReply(body: string): number {
  const r = fields(responseElement(body, "logoffResponse"), "result");
  return uint32(single(r, "result"), "logoff result");
}

/**
 * lpszVersion "0,G,M,m[,rev]" (or without the leading "0,") as [G, M, m]; null if unparsable.
 * Dotted forms are accepted too, for servers that report a package version.
 */
export function parseServerVersion(v: string | null): [number, number, number] | null {
  if (v === null) return null;
  const parts = v.trim().split(/[,.]/);
  if (parts.length >= 4 && parts[0] === "0") parts.shift();
  if (parts.length < 3 || !parts.every((p) => /^[0-9]{1,6}$/.test(p))) return null;
  return [Number(parts[0]), Number(parts[1]), Number(parts[2])];
}

/** True when the version is at least Zarafa 7.1.1, the first to honour NO_UID_AUTH. */
export function honoursNoUidAuth(v: [number, number, number] | null): boolean {
  if (!v) return false;
  const [g, m, n] = v;
  return g > 7 || (g === 7 && (m > 1 || (m === 1 && n >= 1)));
}
