// Zarafa/Kopano generations selected by `version` (docs/kopano.md §2, §5): reply shapes, HTTP
// headers, capabilities, lpszVersion, the non-Unicode rejection and compression.

import assert from "node:assert/strict";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { call, openSession, parse } from "./lib/calls.ts";
import { simEnv } from "./lib/env.ts";
import { exchange, header, RawConn, type RawResponse, type Target, text } from "./lib/raw_http.ts";
import {
  bodyElement,
  field,
  getUser,
  logoff,
  logon,
  type LogonArgs,
  post,
  resolveUsername,
} from "./lib/soap.ts";

async function logonRes(t: Target, a: LogonArgs = {}): Promise<RawResponse> {
  return (await exchange(t, post(logon(a), { close: true })))!;
}

async function gunzip(b: Uint8Array): Promise<string> {
  const s = new Blob([b as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return await new Response(s).text();
}

Deno.test("versions: ZCP 7.1 answers like gSOAP 2.7 with unqualified response structs", async () => {
  await using env = await simEnv({ version: "7.1.11.47767" });
  const { c, sid, r } = await openSession(env.target.tcp);
  try {
    assert.equal(r.name, "logonResponse");
    assert.equal(header(r.res, "Server"), "gSOAP/2.7");
    assert.equal(header(r.res, "X-Frame-Options"), undefined);
    assert.deepEqual(r.res.headers.map(([k]) => k), [
      "Server",
      "Content-Type",
      "Content-Length",
      "Connection",
    ]);
    assert.ok(text(r.res).endsWith("</SOAP-ENV:Envelope>"), "no CRLF after the envelope");
    assert.equal(field(r.value, "lpszVersion"), "0,7,1,11,47767");
    assert.equal(field(r.value, "ulCapabilities"), String(0x18A8 | 0x200));
    const g = await call(c, getUser(sid));
    assert.equal(g.name, "getUserResponse");
    const xml = text(g.res);
    assert.ok(xml.includes("<lpszPassword></lpszPassword>"), "empty strings as start + end tag");
    // Stock disabled_features "imap pop3" disables everything ZCP knows.
    assert.ok(
      xml.includes(
        '<sValues xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="xsd:string[0]"></sValues>',
      ),
    );
    assert.ok(xml.includes(
      '<sValues xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="xsd:string[2]"><item>imap</item><item>pop3</item></sValues>',
    ));
    assert.equal((await call(c, resolveUsername(sid, "bob"))).name, "resolveUserResponse");
    assert.equal((await call(c, logoff(sid))).name, "ns:logoffResponse", "logoff stayed qualified");
  } finally {
    c.close();
  }
  // Faults too come from gSOAP 2.7.
  const f = (await exchange(env.target.tcp, "GET / HTTP/1.1\r\n\r\n"))!;
  assert.equal(header(f, "Server"), "gSOAP/2.7");
  assert.ok(text(f).endsWith("</SOAP-ENV:Envelope>"));
});

Deno.test("versions: ZCP failed logons carry no lpszVersion and caps 0; KC ones do", async () => {
  for (
    const [version, shape] of [["7.1.11", "zcp"], ["7.2.0", "zcp"], ["8.0.0", "kc"], [
      "11.0.2",
      "kc",
    ]]
  ) {
    await using env = await simEnv({ version });
    const r = parse(await logonRes(env.target.tcp, { password: "x" }));
    assert.equal(r.er, "2147483657");
    if (shape === "zcp") {
      assert.equal(field(r.value, "lpszVersion"), undefined, version);
      assert.equal(field(r.value, "ulCapabilities"), "0", version);
    } else {
      assert.notEqual(field(r.value, "lpszVersion"), undefined, version);
      assert.notEqual(field(r.value, "ulCapabilities"), "0", version);
    }
  }
});

Deno.test("versions: ZCP 7.2 uses gSOAP 2.8 and qualified responses", async () => {
  await using env = await simEnv({ version: "7.2.0" });
  const { c, sid, r } = await openSession(env.target.tcp);
  try {
    assert.equal(r.name, "ns:logonResponse");
    assert.equal(header(r.res, "Server"), "gSOAP/2.8");
    assert.equal(header(r.res, "X-Frame-Options"), "SAMEORIGIN");
    assert.equal((await call(c, getUser(sid))).name, "ns:getUserResponse");
  } finally {
    c.close();
  }
});

Deno.test("versions: lpszVersion format and the server's capability bits per release", async () => {
  const cases: Array<[string, string, number]> = [
    ["7.1.0", "0,7,1,0,0", 0x00A8],
    ["7.1.2", "0,7,1,2,0", 0x08A8],
    ["7.1.4", "0,7,1,4,0", 0x18A8],
    ["8.0.0.1234", "0,8,0,0,1234", 0x18A8],
    ["8.4.2", "0,8,4,2,0", 0x18A8],
    ["8.5.0", "0,8,5,0", 0x18A8],
    ["8.5.6", "0,8,5,6", 0x98A8],
    ["8.6.0", "0,8,6,0", 0x18A8],
    ["8.6.1", "0,8,6,1", 0x98A8],
    ["8.7.0", "0,8,7,0", 0x98A8],
    ["11.0.2", "0,11,0,2", 0x98A8],
  ];
  for (const [version, lpsz, caps] of cases) {
    await using env = await simEnv({ version });
    const r = parse(await logonRes(env.target.tcp));
    assert.equal(field(r.value, "lpszVersion"), lpsz, version);
    assert.equal(field(r.value, "ulCapabilities"), String(caps | 0x200), version);
  }
});

Deno.test("versions: clients without the UNICODE capability, per release", async () => {
  const cases: Array<[string, string]> = [
    ["11.0.2", "2147483697"],
    ["12.0.0", "2147483697"],
    ["11.0.1", "2147746051"],
    ["10.0.3", "2147746051"],
    ["10.0.2", "fault"],
    ["10.0.0", "fault"],
    ["8.7.81", "fault"],
    ["8.7.80", "0"],
    ["8.0.0", "0"],
    ["7.1.11", "0"],
  ];
  for (const [version, want] of cases) {
    await using env = await simEnv({ version });
    const res = await logonRes(env.target.tcp, { caps: 0x10 });
    if (want === "fault") {
      assert.equal(res.status, 500, version);
      assert.equal(bodyElement(res.body).value.faultstring, "Error -2147221245");
      assert.equal(bodyElement(res.body).value.faultcode, "SOAP-ENV:Client");
      assert.equal(env.sim.openSessions(), 0);
      continue;
    }
    const r = parse(res);
    assert.equal(r.er, want, version);
    if (want !== "0") { // the a4 shape: no lpszVersion, caps 0
      assert.equal(field(r.value, "lpszVersion"), undefined);
      assert.equal(field(r.value, "ulCapabilities"), "0");
    }
  }
});

Deno.test("versions: ZCP grants compression when asked (gzip + chunked, even on the UNIX socket)", async () => {
  await using env = await simEnv({ version: "7.1.11" });
  for (const tr of ["tcp", "unix"] as const) {
    const c = await RawConn.open(env.target[tr]);
    try {
      await c.write(post(logon({ caps: 528 | 0x1 })));
      const res = (await c.response())!;
      assert.equal(header(res, "Content-Encoding"), "gzip");
      assert.equal(header(res, "Transfer-Encoding"), "chunked");
      const l = bodyElement(await gunzip(res.body));
      assert.equal(field(l.value, "ulCapabilities"), String(0x18A8 | 0x200 | 0x1));
      // Every later reply of that session is compressed too.
      await c.write(post(getUser(field(l.value, "ulSessionId")!)));
      const g = (await c.response())!;
      assert.equal(header(g, "Content-Encoding"), "gzip");
      assert.equal(field(bodyElement(await gunzip(g.body)).value, "er"), "0");
    } finally {
      c.close();
    }
  }
  // KC never compresses (it judges every peer "local").
  await using kc = await simEnv({ version: "11.0.2" });
  const res = await logonRes(kc.target.tcp, { caps: 528 | 0x1 });
  assert.equal(header(res, "Content-Encoding"), undefined);
  assert.equal(field(parse(res).value, "ulCapabilities"), String(0x98A8 | 0x200));
});

Deno.test("versions: a bad version string is refused at start", async () => {
  for (const v of ["11", "11.0", "eleven", "11.0.2-beta", ""]) {
    await assert.rejects(() => startKopanoSim({ version: v }), /invalid server version/, v);
  }
});
