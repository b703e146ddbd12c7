// The shim/helper protocol v1 (docs/protocol.md): strict request decoding and reply encoding.
import { JsonError, JsonValue, parseStrictJson } from "./json_strict.ts";
import { neutralise } from "../common/log_text.ts";
import { isUtf8 } from "../common/utf8.ts";
import type { LogRecord, PamResult } from "./results.ts";

export const MAX_REQUEST = 65536;
export const MAX_REPLY = 65536;
export const MAX_ARGS = 32;
export const MAX_LOG_LINES = 64;
export const MAX_MESSAGE_BYTES = 1024;

/** The request with its byte strings decoded from base64 (still raw bytes: the helper judges them). */
export interface Request {
  user: Uint8Array;
  authtok: Uint8Array;
  service: Uint8Array;
  rhost: Uint8Array;
  args: Uint8Array[];
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

const KEYS = ["v", "user", "authtok", "service", "rhost", "args"];

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** Each byte's value in base64, or -1. */
const B64_VALUE = new Int8Array(256).fill(-1);
for (let v = 0; v < 64; v++) B64_VALUE[B64.charCodeAt(v)] = v;

/**
 * RFC 4648 §4 with padding, no line breaks, canonical (unused bits zero), from and to bytes: the
 * token never becomes a string. By hand, too, because the first atob() in a Deno process costs
 * about 1 ms, paid on every login.
 */
export function decodeBase64(s: Uint8Array, what: string): Uint8Array {
  const pad = s.length >= 2 && s[s.length - 1] === 0x3d ? (s[s.length - 2] === 0x3d ? 2 : 1) : 0;
  if (s.length % 4 !== 0) throw new ProtocolError(`${what} is not valid base64`);
  for (let i = 0; i < s.length - pad; i++) {
    if (B64_VALUE[s[i]] < 0) throw new ProtocolError(`${what} is not valid base64`);
  }
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    // '=' counts as 0 (B64_VALUE is -1 there, & 63 is 63: mask it off by position instead)
    const d = (k: number) => i + k < s.length - pad ? B64_VALUE[s[i + k]] : 0;
    const n = (d(0) << 18) | (d(1) << 12) | (d(2) << 6) | d(3);
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 0xff;
    if (o < out.length) out[o++] = n & 0xff;
  }
  // Non-canonical: padding bits that are not zero would let two spellings mean the same bytes.
  const last = pad === 2
    ? B64_VALUE[s[s.length - 3]] & 0x0f
    : pad === 1
    ? B64_VALUE[s[s.length - 2]] & 0x03
    : 0;
  if (last !== 0) throw new ProtocolError(`${what} is not canonical base64`);
  return out;
}

function b64Field(v: JsonValue | undefined, what: string): Uint8Array {
  if (v?.type !== "string") throw new ProtocolError(`${what} must be a string`);
  return decodeBase64(v.bytes, what);
}

/** Decodes one request; throws ProtocolError for anything docs/protocol.md §2-3 does not allow. */
export function decodeRequest(bytes: Uint8Array): Request {
  if (bytes.length > MAX_REQUEST) throw new ProtocolError("request larger than 65536 bytes");
  if (!isUtf8(bytes)) throw new ProtocolError("request is not valid UTF-8");
  let doc: JsonValue;
  try {
    doc = parseStrictJson(bytes);
  } catch (e) {
    if (e instanceof JsonError) throw new ProtocolError(`request is not valid JSON: ${e.message}`);
    throw e;
  }
  if (doc.type !== "object") throw new ProtocolError("request is not a JSON object");
  for (const k of doc.entries.keys()) {
    if (!KEYS.includes(k)) throw new ProtocolError(`unknown key ${JSON.stringify(k)} in request`);
  }
  for (const k of KEYS) {
    if (!doc.entries.has(k)) throw new ProtocolError(`key "${k}" missing from request`);
  }
  const v = doc.entries.get("v")!;
  if (v.type !== "number" || v.raw !== "1") throw new ProtocolError("unsupported protocol version");
  const args = doc.entries.get("args")!;
  if (args.type !== "array") throw new ProtocolError("args must be an array");
  if (args.items.length > MAX_ARGS) {
    throw new ProtocolError(`more than ${MAX_ARGS} module arguments`);
  }
  const authtok = doc.entries.get("authtok")!;
  try {
    return {
      user: b64Field(doc.entries.get("user"), "user"),
      authtok: b64Field(authtok, "authtok"),
      service: b64Field(doc.entries.get("service"), "service"),
      rhost: b64Field(doc.entries.get("rhost"), "rhost"),
      args: args.items.map((a, n) => b64Field(a, `args[${n}]`)),
    };
  } finally {
    // Its base64 (a view of `bytes`, or a copy when it had escapes) holds the password too.
    if (authtok.type === "string") authtok.bytes.fill(0);
  }
}

const encoder = new TextEncoder();

/** Cuts a string to at most `max` bytes of UTF-8 without splitting a code point. */
export function truncateUtf8(s: string, max: number): string {
  if (s.length * 3 <= max) return s; // cannot exceed: at most 3 bytes per UTF-16 unit
  const bytes = encoder.encode(s);
  if (bytes.length <= max) return s;
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // back up to a code-point start
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes.subarray(0, end));
}

/**
 * Makes a message safe for the reply, the gate every log line passes: well-formed UTF-16
 * (JSON.stringify would emit a lone surrogate as an escape the shim rejects), no control, bidi or
 * invisible characters from whatever source (log_text.ts), at most 1024 bytes.
 */
export function cleanMessage(s: string): string {
  const clean = neutralise(s);
  if (encoder.encode(clean).length <= MAX_MESSAGE_BYTES) return clean;
  return truncateUtf8(clean, MAX_MESSAGE_BYTES - 3) + "...";
}

/**
 * Encodes the reply: JSON.stringify of {v, result, log} in that order. At most 64 lines: when
 * there are more, the last line (the outcome) is kept and debug lines before it are dropped.
 */
export function encodeReply(result: PamResult, log: readonly LogRecord[]): string {
  let lines = log.map((l) => ({ priority: l.priority, message: cleanMessage(l.message) }));
  const dropExcess = () => {
    const dropped = lines.length - (MAX_LOG_LINES - 1);
    lines = [
      ...lines.slice(0, MAX_LOG_LINES - 2),
      { priority: "debug", message: `(${dropped} more log lines dropped)` },
      lines[lines.length - 1],
    ];
  };
  if (lines.length > MAX_LOG_LINES) dropExcess();
  let out = JSON.stringify({ v: 1, result, log: lines });
  // 64 lines of 1024 bytes plus escapes could pass 64 KiB: shed lines until it fits.
  while (encoder.encode(out).length > MAX_REPLY && lines.length > 1) {
    lines = lines.slice(1);
    out = JSON.stringify({ v: 1, result, log: lines });
  }
  return out;
}
