// A strict JSON reader for the shim's request (docs/protocol.md §2). JSON.parse cannot be used:
// it silently keeps the last of duplicate keys, and the protocol says a duplicate key is an error
// (a request must mean one thing to every reader). Numbers are kept as their source text so that
// `1`, `1.0` and `1e0` stay distinguishable.
//
// It reads the bytes, not a string: the request carries the password (in base64), and a string
// cannot be wiped. A string value is its bytes (a view into the input when it has no escapes);
// only keys, and values whose `value` is asked for, become strings.
import { isUtf8, putUtf8 } from "../common/utf8.ts";

export class JsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JsonError";
  }
}

export type JsonValue =
  | { type: "number"; raw: string }
  | { type: "string"; bytes: Uint8Array; readonly value: string }
  | { type: "bool"; value: boolean }
  | { type: "null" }
  | { type: "array"; items: JsonValue[] }
  | { type: "object"; entries: Map<string, JsonValue> };

const MAX_DEPTH = 8;
/** The byte each one-character escape stands for. */
const ESCAPES = new Map([
  [0x22, 0x22],
  [0x5c, 0x5c],
  [0x2f, 0x2f],
  [0x62, 0x08],
  [0x66, 0x0c],
  [0x6e, 0x0a],
  [0x72, 0x0d],
  [0x74, 0x09],
]);
const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/;
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
const latin1 = (b: Uint8Array) => String.fromCharCode(...b);

function stringValue(bytes: Uint8Array): JsonValue {
  return {
    type: "string",
    bytes,
    get value() {
      return utf8.decode(bytes);
    },
  };
}

/**
 * Parses exactly one JSON value from UTF-8 bytes. Whitespace is allowed between tokens; after the
 * value only a single newline may follow; nothing may precede it (no BOM, no leading whitespace).
 */
export function parseStrictJson(input: Uint8Array): JsonValue {
  if (!isUtf8(input)) throw new JsonError("not valid UTF-8");
  let i = 0;
  const fail = (why: string): never => {
    throw new JsonError(`${why} at offset ${i}`);
  };
  const ws = () => {
    while (input[i] === 0x20 || input[i] === 0x09 || input[i] === 0x0a || input[i] === 0x0d) i++;
  };
  const hex4 = (at: number): number => {
    const h = latin1(input.subarray(at, at + 4));
    return /^[0-9A-Fa-f]{4}$/.test(h) ? parseInt(h, 16) : -1;
  };

  /** A string's bytes: a view of the input when it has no escapes, else a decoded copy. */
  const str = (): Uint8Array => {
    const start = ++i; // after the opening quote
    let escapes = false;
    for (;;) {
      if (i >= input.length) fail("unterminated string");
      const c = input[i];
      if (c === 0x22) break;
      if (c < 0x20) fail("raw control character in string");
      if (c === 0x5c) {
        escapes = true;
        i++;
      }
      i++;
    }
    const end = i++;
    return escapes ? unescape(start, end) : input.subarray(start, end);
  };

  /** The bytes of input[start, end) with escapes decoded (never longer than the source). */
  const unescape = (start: number, end: number): Uint8Array => {
    const out = new Uint8Array(end - start);
    let o = 0;
    for (i = start; i < end;) {
      if (input[i] !== 0x5c) {
        out[o++] = input[i++];
        continue;
      }
      const e = input[i + 1];
      const one = ESCAPES.get(e);
      if (one !== undefined) {
        out[o++] = one;
        i += 2;
        continue;
      }
      let cp = e === 0x75 ? hex4(i + 2) : -1;
      if (cp < 0) fail("bad escape");
      i += 6;
      if (cp >= 0xdc00 && cp <= 0xdfff) fail("lone surrogate in string");
      if (cp >= 0xd800 && cp <= 0xdbff) {
        const low = input[i] === 0x5c && input[i + 1] === 0x75 ? hex4(i + 2) : -1;
        if (low < 0xdc00 || low > 0xdfff) fail("lone surrogate in string");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i += 6;
      }
      o = putUtf8(out, o, cp);
    }
    i = end + 1;
    return out.subarray(0, o);
  };

  const literal = (word: string): boolean => {
    for (let k = 0; k < word.length; k++) if (input[i + k] !== word.charCodeAt(k)) return false;
    i += word.length;
    return true;
  };

  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail("nested too deeply");
    ws();
    const c = input[i];
    if (c === 0x7b) { // {
      i++;
      const entries = new Map<string, JsonValue>();
      ws();
      if (input[i] === 0x7d) {
        i++;
        return { type: "object", entries };
      }
      for (;;) {
        ws();
        if (input[i] !== 0x22) fail("expected a key");
        const key = utf8.decode(str());
        if (entries.has(key)) fail(`duplicate key "${key}"`);
        ws();
        if (input[i++] !== 0x3a) fail("expected ':'");
        entries.set(key, value(depth + 1));
        ws();
        const sep = input[i++];
        if (sep === 0x7d) return { type: "object", entries };
        if (sep !== 0x2c) fail("expected ',' or '}'");
      }
    }
    if (c === 0x5b) { // [
      i++;
      const items: JsonValue[] = [];
      ws();
      if (input[i] === 0x5d) {
        i++;
        return { type: "array", items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        const sep = input[i++];
        if (sep === 0x5d) return { type: "array", items };
        if (sep !== 0x2c) fail("expected ',' or ']'");
      }
    }
    if (c === 0x22) return stringValue(str());
    // A number: only the bytes a number can hold are looked at (never what follows it).
    let n = i;
    while (n < i + 32 && /[-+.eE0-9]/.test(String.fromCharCode(input[n] ?? 0))) n++;
    const m = NUMBER.exec(latin1(input.subarray(i, n)));
    if (m && m[0] !== "") {
      i += m[0].length;
      return { type: "number", raw: m[0] };
    }
    if (literal("true")) return { type: "bool", value: true };
    if (literal("false")) return { type: "bool", value: false };
    if (literal("null")) return { type: "null" };
    return fail("unexpected character");
  };

  if (input.length === 0) throw new JsonError("empty input");
  if (!'{["-0123456789tfn'.includes(String.fromCharCode(input[0]))) {
    fail("unexpected character before the value");
  }
  const v = value(0);
  if (i === input.length || (i === input.length - 1 && input[i] === 0x0a)) return v;
  // Whitespace after the value other than one newline, or anything else.
  return fail("unexpected data after the value");
}
