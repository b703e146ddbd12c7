// Turns a request body into a method call the way a gSOAP-generated KCmd server reads it, with
// the same outcomes for bad input: a SOAP fault (HTTP 500 or 405), or "drop" when the body ends
// early (kopano-server then closes the connection without a reply, fixture d2).
// Order matters and follows gSOAP's streaming reader: envelope, header, body, method element,
// then parameters in document order (the first bad one is reported), then the closing tags.

import { NS_SOAP_ENV, NS_SOAP_ENV_12, NS_ZARAFA } from "./constants.ts";
import { parseXml, type XmlElement } from "./xml.ts";
import type { ServerProfile } from "./version.ts";

export type ParamType = "string" | "uint32" | "uint64" | "base64";
export type ParamValue = string | number | bigint | Uint8Array | null;

export interface SoapFault {
  status: number;
  code: string;
  text: string;
}

export interface Call {
  method: string;
  args: Record<string, ParamValue>;
}

export type Decoded =
  | { kind: "call"; call: Call }
  | { kind: "fault"; fault: SoapFault }
  | { kind: "drop"; reason: string };

/** What the request log shows about the method element, whether or not it could be served. */
export interface CallInfo {
  method: string | null;
  params: Record<string, string>;
  elements: string[];
}

const CLIENT = "SOAP-ENV:Client";

export function clientFault(text: string, status = 500): SoapFault {
  return { status, code: CLIENT, text };
}

const invalidValue = (tag: string) =>
  clientFault(`Validation constraint violation: invalid value in element '${tag}'`);

/** Parameters of the methods the sim serves, per emulated version (unknown ones are ignored). */
export function methodParams(method: string, p: ServerProfile): Record<string, ParamType> | null {
  switch (method) {
    case "logon": {
      const params: Record<string, ParamType> = {
        szUsername: "string",
        szPassword: "string",
        szVersion: "string",
        ulCapabilities: "uint32",
        sLicenseReq: "base64",
        ullSessionGroup: "uint64",
        szClientApp: "string",
      };
      if (p.honoursNoUidAuth) params.ulFlags = "uint32"; // ZCP 7.1.1
      if (p.knowsImpersonation) params.szImpersonateUser = "string"; // ZCP 7.1.4
      if (p.qualifiedResponses) { // ZCP 7.2
        params.szClientAppVersion = "string";
        params.szClientAppMisc = "string";
      }
      return params;
    }
    case "logoff":
      return { ulSessionId: "uint64" };
    case "getUser":
      return { ulSessionId: "uint64", ulUserId: "uint32", sUserId: "base64" };
    case "resolveUsername":
      return { ulSessionId: "uint64", lpszUsername: "string" };
    default:
      return null;
  }
}

/** strtoul-like unsigned parse as gSOAP does it: blanks trimmed, optional sign, "-0" allowed. */
export function parseUnsigned(text: string, bits: 32 | 64): bigint | null {
  const m = /^[ \t\r\n]*([+-]?)(\d+)[ \t\r\n]*$/.exec(text);
  if (!m) return null;
  const v = BigInt(m[2]);
  if (m[1] === "-" && v !== 0n) return null;
  return v > (1n << BigInt(bits)) - 1n ? null : v;
}

function parseBase64(text: string): Uint8Array | null {
  const s = text.replace(/[ \t\r\n]/g, "").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]*$/.test(s) || s.length % 4 === 1) return null;
  const bin = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function isNil(el: XmlElement): boolean {
  return el.attrs.some(([n, v]) =>
    (n === "nil" || n.endsWith(":nil")) && (v === "true" || v === "1")
  );
}

function firstElement(list: XmlElement[], from = 0): XmlElement | undefined {
  return list[from];
}

/** Request-log view of the method element (first element inside the SOAP body). */
export function describe(method: XmlElement | undefined): CallInfo {
  if (!method) return { method: null, params: {}, elements: [] };
  const params: Record<string, string> = {};
  const elements: string[] = [];
  for (const child of method.children) {
    elements.push(child.tag);
    if (!(child.tag in params)) params[child.tag] = child.text;
  }
  return { method: method.local, params, elements };
}

function readArgs(
  method: XmlElement,
  spec: Record<string, ParamType>,
): { args: Record<string, ParamValue> } | { fault: SoapFault } | { drop: string } {
  const args: Record<string, ParamValue> = {};
  for (const [name, type] of Object.entries(spec)) {
    args[name] = type === "uint32" ? 0 : type === "uint64" ? 0n : null;
  }
  const seen = new Set<string>();
  for (const child of method.children) {
    if (!child.closed) return { drop: `body ends inside <${child.tag}>` };
    // Prefixed parameters do not match gSOAP's unqualified field names; the first copy wins.
    const type = child.prefix === "" ? spec[child.tag] : undefined;
    if (!type || seen.has(child.tag)) continue;
    seen.add(child.tag);
    if (isNil(child)) continue;
    switch (type) {
      case "string":
        args[child.tag] = child.text;
        break;
      case "uint32":
      case "uint64": {
        const v = parseUnsigned(child.text, type === "uint32" ? 32 : 64);
        if (v === null) return { fault: invalidValue(child.tag) };
        args[child.tag] = type === "uint32" ? Number(v) : v;
        break;
      }
      case "base64": {
        const v = parseBase64(child.text);
        if (v === null) return { fault: invalidValue(child.tag) };
        args[child.tag] = v;
        break;
      }
    }
  }
  return { args };
}

/**
 * Decodes one request body. `viaHttp` is false for header-less XML: gSOAP then has no HTTP
 * status to report, so a body that never starts an envelope just ends the connection.
 */
export function decodeRequest(
  body: Uint8Array,
  profile: ServerProfile,
  viaHttp: boolean,
): { decoded: Decoded; info: CallInfo } {
  const none: CallInfo = { method: null, params: {}, elements: [] };
  if (body.length === 0) {
    return {
      decoded: { kind: "fault", fault: clientFault("Data required for operation") },
      info: none,
    };
  }
  const doc = parseXml(body);
  const root = doc.root;
  const out = (decoded: Decoded, info = none) => ({ decoded, info });
  if (doc.tooDeep) {
    return out({
      kind: "fault",
      fault: clientFault("Maximum XML nesting depth level exceeded: increase maxlevel"),
    });
  }
  if (!root) {
    return viaHttp
      ? out({ kind: "fault", fault: clientFault("HTTP method error") })
      : out({ kind: "drop", reason: "no XML element" });
  }
  if (root.local !== "Envelope" || root.ns !== NS_SOAP_ENV) {
    if (root.local === "Envelope" && (root.prefix === "" || root.ns === NS_SOAP_ENV_12)) {
      // Unqualified/foreign Envelope (the sim does not speak SOAP 1.2, see mod.ts).
      return out({
        kind: "fault",
        fault: {
          status: 500,
          code: "SOAP-ENV:VersionMismatch",
          text: "Invalid SOAP message or SOAP version mismatch",
        },
      });
    }
    return out({ kind: "fault", fault: clientFault("HTTP method error") });
  }
  let idx = 0;
  const header = firstElement(root.children, idx);
  if (header && header.local === "Header" && header.ns === NS_SOAP_ENV) {
    if (!header.closed) return out({ kind: "drop", reason: "body ends inside the SOAP header" });
    idx++;
  }
  const body_ = firstElement(root.children, idx);
  if (!body_) {
    return root.closed
      ? out({
        kind: "fault",
        fault: clientFault("Validation constraint violation: missing SOAP message"),
      })
      : out({ kind: "drop", reason: "body ends before SOAP-ENV:Body" });
  }
  if (body_.local !== "Body" || body_.ns !== NS_SOAP_ENV) {
    return out({
      kind: "fault",
      fault: clientFault(
        `Validation constraint violation: tag name or namespace mismatch in element '${body_.tag}'`,
      ),
    });
  }
  const method = firstElement(body_.children);
  const info = describe(method);
  if (!method) {
    return body_.closed
      ? out({ kind: "fault", fault: noMethod("") })
      : out({ kind: "drop", reason: "body ends before the method element" });
  }
  const spec = method.ns === NS_ZARAFA ? methodParams(method.local, profile) : null;
  if (!spec) return out({ kind: "fault", fault: noMethod(method.tag) }, info);
  const read = readArgs(method, spec);
  if ("fault" in read) return out({ kind: "fault", fault: read.fault }, info);
  if ("drop" in read) return out({ kind: "drop", reason: read.drop }, info);
  if (!method.closed || !body_.closed || !root.closed) {
    return out({ kind: "drop", reason: "body ends before the envelope is closed" }, info);
  }
  return out({ kind: "call", call: { method: method.local, args: read.args } }, info);
}

export function noMethod(tag: string): SoapFault {
  return clientFault(`Method '${tag}' not implemented: method name or namespace not recognized`);
}
