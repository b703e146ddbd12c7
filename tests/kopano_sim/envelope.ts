// Writes SOAP envelopes byte-for-byte the way gSOAP does (compare the fixtures' *.response.body):
// XML declaration + "\n", the seven namespaces on the Envelope in a fixed order, encodingStyle on
// normal bodies but not on fault bodies, unqualified child elements, "\r\n" after the envelope
// (gSOAP 2.8 only). gSOAP 2.7 (ZCP <= 7.1) differs in small ways noted below.

import { ENVELOPE_NAMESPACES, NS_SOAP_ENC } from "./constants.ts";

export type GsoapGeneration = "2.7" | "2.8";

const NS_DECLS = ENVELOPE_NAMESPACES.map(([p, uri]) => ` xmlns:${p}="${uri}"`).join("");
const PROLOG = `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope${NS_DECLS}>`;

/** Escapes element content like gSOAP's soap_string_out (quotes stay, LF becomes &#xA;). */
export function escapeText(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[&<>\n\x00-\x08\x0B-\x1F\x7F]/g, (c) => {
    switch (c) {
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      case "\n":
        return "&#xA;";
      case "\x7F":
        return "&#x7F;";
      default:
        return `&#${c.charCodeAt(0)};`;
    }
  });
}

export function base64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Builds the inside of a SOAP body; each method appends fields in the struct's order. */
export class XmlOut {
  #parts: string[] = [];
  constructor(readonly gsoap: GsoapGeneration) {}

  /** A char* field: omitted when null; "" is <x/> in gSOAP 2.8 but <x></x> in 2.7. */
  str(name: string, value: string | null | undefined): this {
    if (value === null || value === undefined) return this;
    if (value === "" && this.gsoap === "2.8") this.#parts.push(`<${name}/>`);
    else this.#parts.push(`<${name}>${escapeText(value)}</${name}>`);
    return this;
  }

  /** An unsigned number field (unsignedInt / unsignedLong), decimal. */
  num(name: string, value: number | bigint | string): this {
    this.#parts.push(`<${name}>${value}</${name}>`);
    return this;
  }

  /** An xsd:base64Binary field; an empty one is always start + end tag. */
  b64(name: string, bytes: Uint8Array): this {
    this.#parts.push(`<${name}>${base64(bytes)}</${name}>`);
    return this;
  }

  open(name: string): this {
    this.#parts.push(`<${name}>`);
    return this;
  }

  close(name: string): this {
    this.#parts.push(`</${name}>`);
    return this;
  }

  /** A SOAP-encoded string array (mv_string8): gSOAP 2.7 also wrote xsi:type. */
  strArray(name: string, items: readonly string[]): this {
    const type = this.gsoap === "2.7" ? ` xsi:type="SOAP-ENC:Array"` : "";
    this.#parts.push(`<${name}${type} SOAP-ENC:arrayType="xsd:string[${items.length}]">`);
    for (const item of items) this.str("item", item);
    this.#parts.push(`</${name}>`);
    return this;
  }

  toString(): string {
    return this.#parts.join("");
  }
}

function epilog(gsoap: GsoapGeneration): string {
  // gSOAP 2.8 always ends the envelope with CRLF; the bundled 2.7.13 did not.
  return gsoap === "2.8" ? "</SOAP-ENV:Envelope>\r\n" : "</SOAP-ENV:Envelope>";
}

/** A normal (non-fault) reply envelope around `inner`. */
export function envelope(gsoap: GsoapGeneration, inner: string): string {
  return `${PROLOG}<SOAP-ENV:Body SOAP-ENV:encodingStyle="${NS_SOAP_ENC}">${inner}</SOAP-ENV:Body>${
    epilog(gsoap)
  }`;
}

/** A SOAP 1.1 fault envelope: no encodingStyle on the Body, no detail. */
export function faultEnvelope(gsoap: GsoapGeneration, code: string, text: string): string {
  return `${PROLOG}<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>${code}</faultcode><faultstring>${
    escapeText(text)
  }</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body>${epilog(gsoap)}`;
}
