// The shim's request encoder, reply parser and argument checks against the shared vectors
// (tests/protocol/cases.json, tests/protocol/args-cases.json), through a small C program linked
// with the shim's own sources (plain and ASan/UBSan builds).
import assert from "node:assert/strict";
import { build, ROOT, run, TEST_BUILD } from "./lib.ts";

interface Cases {
  requests: Array<{
    name: string;
    fields: {
      user_b64: string;
      authtok_b64: string;
      service_b64: string;
      rhost_b64: string;
      args_b64: string[];
    };
    raw: string;
  }>;
  replies: Array<{
    name: string;
    raw?: string;
    raw_b64?: string;
    expect: string;
    logs?: Array<{ priority: string; message: string }>;
  }>;
}

interface ArgsCases {
  cases: Array<{ args: string[]; shim: "ok" | "error"; helper: string; why: string }>;
}

const cases: Cases = JSON.parse(await Deno.readTextFile(`${ROOT}/tests/protocol/cases.json`));
const argsCases: ArgsCases = JSON.parse(
  await Deno.readTextFile(`${ROOT}/tests/protocol/args-cases.json`),
);

function b64bytes(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function utf8hex(s: string): string {
  return hex(new TextEncoder().encode(s));
}

for (const prog of ["vectors", "vectors-asan"]) {
  Deno.test(`${prog}: request encoder produces every raw request exactly`, async () => {
    await build();
    assert.ok(cases.requests.length >= 6);
    for (const c of cases.requests) {
      const f = c.fields;
      const r = await run(`${TEST_BUILD}/${prog}`, [
        "request",
        hex(b64bytes(f.user_b64)),
        hex(b64bytes(f.authtok_b64)),
        hex(b64bytes(f.service_b64)),
        hex(b64bytes(f.rhost_b64)),
        ...f.args_b64.map((a) => hex(b64bytes(a))),
      ]);
      assert.equal(r.code, 0, `${c.name}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, c.raw, c.name);
    }
  });

  Deno.test(`${prog}: reply parser returns expect and exactly the logs of every case`, async () => {
    await build();
    const dir = await Deno.makeTempDir({ prefix: "pam_mapi_vectors_" });
    try {
      assert.ok(cases.replies.length >= 50);
      let malformed = 0;
      for (const [i, c] of cases.replies.entries()) {
        const bytes = c.raw_b64 !== undefined
          ? b64bytes(c.raw_b64)
          : new TextEncoder().encode(c.raw ?? "");
        const file = `${dir}/reply-${i}`;
        await Deno.writeFile(file, bytes);
        const r = await run(`${TEST_BUILD}/${prog}`, ["reply", file]);
        assert.equal(r.code, 0, `${c.name}: ${r.stderr}`);
        const lines = r.stdout.trimEnd().split("\n");
        if (c.expect === "malformed") {
          malformed++;
          assert.match(lines[0], /^malformed /, `${c.name}: expected malformed, got ${r.stdout}`);
          continue;
        }
        assert.equal(lines[0], c.expect, c.name);
        const got = lines.slice(1).map((l) => {
          const [priority, msgHex] = l.split(" ");
          return { priority, message: msgHex ?? "" };
        });
        assert.deepEqual(
          got,
          (c.logs ?? []).map((l) => ({ priority: l.priority, message: utf8hex(l.message) })),
          c.name,
        );
      }
      assert.ok(malformed >= 30, "the vectors cover many malformed replies");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`${prog}: argument checks reach the shim verdict of every args case`, async () => {
    await build();
    for (const c of argsCases.cases) {
      const r = await run(`${TEST_BUILD}/${prog}`, ["args", ...c.args]);
      assert.equal(r.code, 0, r.stderr);
      const verdict = r.stdout.startsWith("ok ") ? "ok" : "error";
      assert.equal(verdict, c.shim, `${JSON.stringify(c.args)} (${c.why}): ${r.stdout}`);
    }
  });
}

Deno.test("argument values the shim reads: timeout, sockets, helper, deadline", async () => {
  await build();
  const parse = async (...args: string[]) =>
    (await run(`${TEST_BUILD}/vectors`, ["args", ...args])).stdout.trim();
  assert.match(await parse(), /^ok timeout=10 sockets=0 .* deadline=12$/);
  assert.match(await parse("timeout=1"), /timeout=1 sockets=0 .*deadline=3$/);
  assert.match(
    await parse("timeout=7", "socket=http://a/", "socket=http://b/", "socket=http://c/"),
    /timeout=7 sockets=3 .*deadline=23$/,
  );
  assert.match(await parse("timeout=300"), /deadline=302$/);
  assert.match(await parse("helper=/opt/x/helper"), /helper=\/opt\/x\/helper /);
  assert.match(await parse("use_first_pass", "debug"), /try=0 use=1 debug=1/);
  // Beyond the shared vectors: the request may carry at most 32 arguments.
  const many = Array.from({ length: 33 }, () => "debug");
  assert.match(await parse(...many), /^error too many module arguments/);
  assert.match(await parse(...many.slice(1)), /^ok /);
  assert.match(await parse("socket"), /^error .*needs a value/);
  assert.match(await parse("timeout=1x"), /^error .*timeout must be/);
});

Deno.test("request encoder refuses a request over 65536 bytes", async () => {
  await build();
  const big = "a".repeat(40000);
  const r = await run(`${TEST_BUILD}/vectors`, [
    "request",
    utf8hex("alice"),
    utf8hex("pw"),
    utf8hex("smtp"),
    "",
    utf8hex(big),
    utf8hex(big),
  ]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout.trim(), "error -2");
});

Deno.test("log fields: untrusted values are neutralised, cut and quoted like the helper's", async () => {
  await build();
  const field = async (bytes: Uint8Array | string, max = 64) =>
    (await run(`${TEST_BUILD}/vectors-asan`, [
      "logvalue",
      typeof bytes === "string" ? utf8hex(bytes) : hex(bytes),
      String(max),
    ])).stdout.replace(/\n$/, "");
  assert.equal(await field("alice"), "alice");
  assert.equal(await field("alice@example.com"), "alice@example.com");
  assert.equal(await field("jürgen"), "jürgen");
  assert.equal(await field(""), '""');
  assert.equal(await field("a b"), '"a b"');
  assert.equal(await field("x=1"), '"x=1"');
  assert.equal(await field('q"b\\s'), '"q\\"b\\\\s"');
  assert.equal(await field("tab\there"), "tab?here");
  assert.equal(await field("nbsp\u00a0x"), '"nbsp\u00a0x"');
  // Bidi override, line separator, C1 control, zero-width space, BOM: all "?".
  assert.equal(await field("a\u202eb\u2028c\u0085d\u200be\ufefff"), "a?b?c?d?e?f");
  // Invalid UTF-8: overlong, surrogate, truncated, stray continuation byte.
  assert.equal(await field(new Uint8Array([0x61, 0xc0, 0xaf, 0x62])), "a??b");
  assert.equal(await field(new Uint8Array([0x61, 0xed, 0xa0, 0x80])), "a???");
  assert.equal(await field(new Uint8Array([0x61, 0xe2, 0x82])), "a??");
  assert.equal(await field(new Uint8Array([0x80, 0x61])), "?a");
  // Cut after 64 characters (not bytes), marked.
  assert.equal(await field("ü".repeat(70)), "ü".repeat(64) + "...");
  assert.equal(await field("u".repeat(64)), "u".repeat(64));
  assert.equal(await field("a b".repeat(30), 5), '"a ba ..."');
});
