// The shim/helper protocol vectors (tests/protocol/cases.json): the TS decoder decodes every request
// and rejects every invalid one; the TS encoder reproduces every canonical reply byte for byte.
import assert from "node:assert/strict";
import {
  cleanMessage,
  decodeRequest,
  encodeReply,
  MAX_REPLY,
  ProtocolError,
  truncateUtf8,
} from "../../src/pam/protocol.ts";
import type { LogRecord, PamResult } from "../../src/pam/results.ts";
import { b64, ROOT } from "../lib/helper.ts";

const cases = JSON.parse(await Deno.readTextFile(`${ROOT}/tests/protocol/cases.json`));
const enc = new TextEncoder();

function rawBytes(c: { raw?: string; raw_b64?: string }): Uint8Array {
  if (c.raw_b64 !== undefined) return Uint8Array.from(atob(c.raw_b64), (ch) => ch.charCodeAt(0));
  return enc.encode(c.raw!);
}

Deno.test("requests: every vector decodes to its fields", () => {
  assert.ok(cases.requests.length >= 6);
  for (const c of cases.requests) {
    const r = decodeRequest(rawBytes(c));
    assert.deepEqual(
      {
        user_b64: b64(r.user),
        authtok_b64: b64(r.authtok),
        service_b64: b64(r.service),
        rhost_b64: b64(r.rhost),
        args_b64: r.args.map(b64),
      },
      c.fields,
      c.name,
    );
  }
});

Deno.test("requests: every invalid vector is rejected", () => {
  assert.ok(cases.invalid_requests.length >= 10);
  for (const c of cases.invalid_requests) {
    assert.throws(() => decodeRequest(rawBytes(c)), ProtocolError, c.name);
  }
});

Deno.test("requests: more strictness than the vectors show", () => {
  const ok = '{"v":1,"user":"YQ==","authtok":"Yg==","service":"cw==","rhost":"","args":[]}';
  decodeRequest(enc.encode(ok));
  decodeRequest(enc.encode(ok + "\n"));
  for (
    const bad of [
      ok + "\n\n",
      ok + " ",
      " " + ok,
      "\ufeff" + ok,
      ok.replace('"v":1', '"v":1.0'),
      ok.replace('"v":1', '"v":true'),
      ok.replace('"YQ=="', '"YQ"'), // missing padding
      ok.replace('"YQ=="', '"YR=="'), // non-canonical trailing bits
      ok.replace('"YQ=="', '"Y Q=="'),
      ok.replace('"args":[]', `"args":[${Array(33).fill('"YQ=="').join(",")}]`),
      ok.replace('"args":[]', '"args":[1]'),
      ok.replace('"rhost":""', '"rhost":null'),
      ok.replace('"user"', '"us\\u0065r"').replace("}", ',"user":"YQ=="}'), // escaped duplicate
      '{"v":1,"user":"' + "A".repeat(70000) + '"}',
    ]
  ) {
    assert.throws(() => decodeRequest(enc.encode(bad)), ProtocolError, bad.slice(0, 80));
  }
  assert.throws(() => decodeRequest(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
});

Deno.test("replies: the encoder produces every canonical vector byte for byte", () => {
  let n = 0;
  for (const c of cases.replies) {
    if (!c.canonical) continue;
    n++;
    const out = encodeReply(c.expect as PamResult, c.logs as LogRecord[]);
    assert.equal(out, new TextDecoder().decode(rawBytes(c)), c.name);
  }
  assert.ok(n >= 10);
});

Deno.test("replies: messages are cut at 1024 bytes on a code-point boundary", () => {
  const long = "é".repeat(600) + "😀".repeat(10); // 1200 + 40 bytes
  const m = cleanMessage(long);
  assert.ok(enc.encode(m).length <= 1024);
  assert.ok(m.endsWith("..."));
  assert.ok(m.isWellFormed());
  assert.equal(truncateUtf8("a😀", 4), "a"); // never half an emoji
  assert.equal(truncateUtf8("a😀", 5), "a😀");
  assert.equal(cleanMessage("a\nb\u0000c\ud800"), "a?b?c\ufffd");
});

Deno.test("replies: at most 64 lines, the outcome line kept, never over 64 KiB", () => {
  const log: LogRecord[] = Array.from({ length: 100 }, (_, i) => ({
    priority: "debug",
    message: `step ${i} ` + '"'.repeat(1000),
  }));
  log.push({ priority: "notice", message: "authentication failure; outcome" });
  const out = encodeReply("PAM_AUTH_ERR", log);
  assert.ok(enc.encode(out).length <= MAX_REPLY);
  const parsed = JSON.parse(out);
  assert.ok(parsed.log.length <= 64);
  assert.equal(parsed.log.at(-1).message, "authentication failure; outcome");
  for (const l of parsed.log) assert.ok(enc.encode(l.message).length <= 1024);
});
