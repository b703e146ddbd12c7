// A strict JSON reader for the shim's request (docs/protocol.md §2). JSON.parse cannot be used:
// it silently keeps the last of duplicate keys, and the protocol says a duplicate key is an error
// (a request must mean one thing to every reader). Numbers are kept as their source text so that
// `1`, `1.0` and `1e0` stay distinguishable.

export class JsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JsonError";
  }
}

export type JsonValue =
  | { type: "number"; raw: string }
  | { type: "string"; value: string }
  | { type: "bool"; value: boolean }
  | { type: "null" }
  | { type: "array"; items: JsonValue[] }
  | { type: "object"; entries: Map<string, JsonValue> };

const MAX_DEPTH = 8;
const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/**
 * Parses exactly one JSON value. Whitespace is allowed between tokens; after the value only a
 * single newline may follow; nothing may precede it (no BOM, no leading whitespace).
 */
export function parseStrictJson(text: string): JsonValue {
  let i = 0;
  const fail = (why: string): never => {
    throw new JsonError(`${why} at offset ${i}`);
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };

  const str = (): string => {
    i++; // opening quote
    let out = "";
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        break;
      }
      if (c < 0x20) fail("raw control character in string");
      if (c !== 0x5c) {
        out += text[i++];
        continue;
      }
      const e = text[i + 1];
      if (e in ESCAPES) {
        out += ESCAPES[e];
        i += 2;
      } else if (e === "u" && /^[0-9A-Fa-f]{4}$/.test(text.slice(i + 2, i + 6))) {
        out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
        i += 6;
      } else {
        fail("bad escape");
      }
    }
    if (!out.isWellFormed()) fail("lone surrogate in string");
    return out;
  };

  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail("nested too deeply");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const entries = new Map<string, JsonValue>();
      ws();
      if (text[i] === "}") {
        i++;
        return { type: "object", entries };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const key = str();
        if (entries.has(key)) fail(`duplicate key "${key}"`);
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        entries.set(key, value(depth + 1));
        ws();
        const sep = text[i++];
        if (sep === "}") return { type: "object", entries };
        if (sep !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const items: JsonValue[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return { type: "array", items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        const sep = text[i++];
        if (sep === "]") return { type: "array", items };
        if (sep !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return { type: "string", value: str() };
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 32));
    if (m && m[0] !== "") {
      i += m[0].length;
      return { type: "number", raw: m[0] };
    }
    for (const [word, v] of [["true", true], ["false", false]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return { type: "bool", value: v };
      }
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return { type: "null" };
    }
    return fail("unexpected character");
  };

  if (text === "") throw new JsonError("empty input");
  if (!'{["-0123456789tfn'.includes(text[0])) fail("unexpected character before the value");
  const v = value(0);
  if (i === text.length || (i === text.length - 1 && text[i] === "\n")) return v;
  // Whitespace after the value other than one newline, or anything else.
  return fail("unexpected data after the value");
}
