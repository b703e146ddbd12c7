// The password stays bytes from the request to the SOAP body (issue 18, point 6): the pieces that
// make that possible judge bytes exactly as their string versions judged text, and wipe what
// held the password. (tests/daemon/password_memory_test.ts scans a daemon for what is left.)
import assert from "node:assert/strict";
import { serverText } from "../../src/kopano/attempt.ts";
import { checkCredentials } from "../../src/pam/input.ts";
import { parseStrictJson } from "../../src/pam/json_strict.ts";
import { decodeRequest } from "../../src/pam/protocol.ts";
import { isUtf8 } from "../../src/common/utf8.ts";
import { b64 } from "../lib/helper.ts";

const enc = new TextEncoder();
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const decodes = (b: Uint8Array) => {
  try {
    strict.decode(b);
    return true;
  } catch {
    return false;
  }
};

Deno.test("isUtf8 judges bytes exactly as a strict TextDecoder does", () => {
  const edges = [
    [],
    [0x41],
    [0xc2, 0x80],
    [0xc1, 0xbf], // overlong
    [0xe0, 0x9f, 0xbf], // overlong
    [0xed, 0xa0, 0x80], // a surrogate
    [0xef, 0xbf, 0xbf],
    [0xf0, 0x8f, 0xbf, 0xbf], // overlong
    [0xf4, 0x8f, 0xbf, 0xbf], // U+10FFFF
    [0xf4, 0x90, 0x80, 0x80], // beyond
    [0xf5, 0x80, 0x80, 0x80],
    [0xe2, 0x82], // cut short
    [0x80],
    [0xff],
  ];
  for (const e of edges) {
    assert.equal(isUtf8(new Uint8Array(e)), decodes(new Uint8Array(e)), `${e}`);
  }
  // Random strings of mostly high bytes, where the cases are.
  const picks = [
    0x00,
    0x41,
    0x7f,
    0x80,
    0xbf,
    0xc0,
    0xc2,
    0xdf,
    0xe0,
    0xed,
    0xef,
    0xf0,
    0xf4,
    0xff,
  ];
  for (let n = 0; n < 20_000; n++) {
    const b = Uint8Array.from(
      { length: 1 + (n % 7) },
      () =>
        Math.random() < 0.5 ? picks[Math.floor(Math.random() * picks.length)] : Math.random() * 256,
    );
    assert.equal(isUtf8(b), decodes(b), `${[...b]}`);
  }
});

Deno.test("JSON strings are bytes: escapes decoded to UTF-8, lone surrogates refused", () => {
  const v = parseStrictJson(enc.encode('["a\\u00e9\\ud83d\\ude00\\n\\/", "plain é"]'));
  assert.equal(v.type, "array");
  const [a, b] = (v as { items: { bytes: Uint8Array; value: string }[] }).items;
  assert.deepEqual([...a.bytes], [...enc.encode("aé😀\n/")]);
  assert.equal(a.value, "aé😀\n/");
  assert.equal(b.value, "plain é");
  for (const bad of ['"\\ud83d"', '"\\ude00"', '"\\ud83dx"', '"\\ud83d\\u0041"', '"\\u12"']) {
    assert.throws(() => parseStrictJson(enc.encode(bad)), /surrogate|bad escape/, bad);
  }
  assert.throws(() => parseStrictJson(new Uint8Array([0x22, 0xff, 0x22])), /not valid UTF-8/);
});

Deno.test("the request's base64 of the password is wiped as it is decoded, escaped or not", () => {
  const request = (authtok: string) =>
    `{"v":1,"user":"${b64("alice")}","authtok":"${authtok}","service":"","rhost":"","args":[]}`;
  const plain = b64("s3cret&<€");
  // The same token with every character escaped: a copy the parser makes, also wiped.
  const escaped = [...plain].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .join("");
  for (const token of [plain, escaped]) {
    const bytes = enc.encode(request(token));
    const r = decodeRequest(bytes);
    assert.equal(new TextDecoder().decode(r.authtok), "s3cret&<€");
    const text = new TextDecoder().decode(bytes);
    assert.ok(!text.includes(plain), "the token is gone from the request's bytes");
    assert.ok(text.includes(b64("alice")), "the rest is left as it was");
  }
});

Deno.test("checkCredentials keeps the password's own bytes and judges them as before", () => {
  const pw = enc.encode("pä\tss\r\nword");
  const c = checkCredentials(enc.encode("alice"), pw);
  assert.ok(c.ok);
  assert.equal(c.password, pw, "the very same bytes, no copy");
  const refused = (bytes: number[]) => checkCredentials(enc.encode("a"), new Uint8Array(bytes));
  for (const bad of [[0x61, 0x00], [0x1f], [0x0b], [0xef, 0xbf, 0xbe], [0xef, 0xbf, 0xbf]]) {
    const r = refused(bad);
    assert.ok(!r.ok && /control characters/.test(r.reason), `${bad}`);
  }
  for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff]]) {
    const r = refused(bad);
    assert.ok(!r.ok && /not valid UTF-8/.test(r.reason), `${bad}`);
  }
});

Deno.test("serverText redacts the password wherever it appears, before it changes or cuts anything", () => {
  for (const pw of ["Zq7-Leak", "tab\there", "new\r\nline", "ünï€ode😀"]) {
    const p = enc.encode(pw);
    const t = serverText(`fault: bad password ${pw} for ${pw}!`, p);
    assert.equal(t, "fault: bad password [redacted] for [redacted]!", pw);
  }
  // Across the 160 characters shown: no part of it survives the cut.
  const pw = enc.encode("Straddling-Password-123");
  const t = serverText("x".repeat(150) + "Straddling-Password-123 and more", pw);
  assert.equal(t, "x".repeat(150) + "[redacted]..."); // 160 characters, then the mark
  assert.ok(!t.includes("Straddl"));
  // Control characters are still neutralised, long text still cut; no password, no change.
  assert.equal(serverText("a\u0001b", enc.encode("zz")), "a b");
  assert.equal(serverText("y".repeat(1024 * 1024), enc.encode("zz")), "y".repeat(160) + "...");
});
