// logon semantics (docs/kopano.md §2, §3, §5 and the fixtures a1-a6, f1) and the gSOAP-lenient
// reading of requests (docs/kopano.md#1-endpoint-and-http-framing).

import assert from "node:assert/strict";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { call, parse, withConn } from "./lib/calls.ts";
import { simEnv, TRANSPORTS } from "./lib/env.ts";
import { exchange, header, type Target, targetOf, text } from "./lib/raw_http.ts";
import { bodyElement, envelope, field, getUser, logon, type LogonArgs, post } from "./lib/soap.ts";

const LOGON_FAILED = "2147483657";

async function logonReply(t: Target, a: LogonArgs = {}) {
  return parse((await exchange(t, post(logon(a), { close: true })))!);
}

async function rawLogon(t: Target, inner: string) {
  return (await exchange(t, post(envelope(inner), { close: true })))!;
}

Deno.test("logon: session ids are random 64-bit decimals, 32-bit without LARGE_SESSIONID", async () => {
  await using env = await simEnv();
  const large: bigint[] = [], small: bigint[] = [];
  for (let i = 0; i < 20; i++) {
    large.push(
      BigInt(field((await logonReply(env.target.tcp, { flags: 3 })).value, "ulSessionId")!),
    );
    small.push(
      BigInt(
        field((await logonReply(env.target.tcp, { flags: 3, caps: 0x200 })).value, "ulSessionId")!,
      ),
    );
  }
  assert.equal(new Set(large).size, 20);
  assert.ok(large.every((x) => x > 0n && x < 1n << 64n));
  assert.ok(large.some((x) => x >= 1n << 32n), "some id needs more than 32 bits");
  assert.ok(small.every((x) => x > 0n && x < 1n << 32n));
});

for (const tr of TRANSPORTS) {
  Deno.test(`logon ${tr}: wrong password and unknown user get byte-identical replies`, async () => {
    await using env = await simEnv();
    const wrong = await exchange(
      env.target[tr],
      post(logon({ password: "nope" }), { close: true }),
    );
    const unknown = await exchange(
      env.target[tr],
      post(logon({ user: "nosuchuser" }), { close: true }),
    );
    assert.equal(parse(wrong!).er, LOGON_FAILED);
    assert.deepEqual(wrong!.raw, unknown!.raw);
    const ok = await logonReply(env.target[tr]);
    assert.equal(ok.er, "0");
    assert.equal(field(ok.value, "lpszVersion"), "0,11,0,2");
    assert.equal(field(ok.value, "ulCapabilities"), "39592"); // 0x98A8 | UNICODE
  });
}

Deno.test("logon: inactive users cannot log on, even with the right password", async () => {
  await using env = await simEnv({
    users: [{ name: "alice", password: "secret" }, {
      name: "carol",
      password: "pw",
      active: false,
    }],
  });
  assert.equal(
    (await logonReply(env.target.tcp, { user: "carol", password: "pw" })).er,
    LOGON_FAILED,
  );
  // Still a user: alice can look carol up, as a non-active one.
  await withConn(env.target.tcp, async (c) => {
    const sid = field((await call(c, logon())).value, "ulSessionId")!;
    const r = await call(
      c,
      envelope(
        `<ns:resolveUsername><ulSessionId>${sid}</ulSessionId><lpszUsername>carol</lpszUsername></ns:resolveUsername>`,
      ),
    );
    const g = await call(c, getUser(sid, 0, field(r.value, "sUserId")!));
    assert.equal(field(g.value.lpsUser, "ulObjClass"), "65538");
  });
});

Deno.test("logon: SYSTEM never logs on with a password; user names match case-insensitively", async () => {
  await using env = await simEnv();
  for (const user of ["SYSTEM", "system", "System"]) {
    for (const password of ["", "SYSTEM", "secret"]) {
      assert.equal((await logonReply(env.target.tcp, { user, password })).er, LOGON_FAILED);
    }
  }
  await withConn(env.target.tcp, async (c) => {
    const sid = field((await call(c, logon({ user: "ALICE" }))).value, "ulSessionId")!;
    assert.equal(field((await call(c, getUser(sid))).value.lpsUser, "lpszUsername"), "alice");
  });
});

Deno.test("logon: missing user name or password fails", async () => {
  await using env = await simEnv();
  assert.equal((await logonReply(env.target.tcp, { user: null })).er, LOGON_FAILED);
  assert.equal((await logonReply(env.target.tcp, { password: null })).er, LOGON_FAILED);
  assert.equal(env.sim.openSessions(), 0);
});

Deno.test("logon: capabilities echoed on success; failed logons carry version and latest caps", async () => {
  await using env = await simEnv();
  const ok = await logonReply(env.target.tcp, { caps: 0xE753 }); // the KC 11 client, with COMPRESSION
  assert.equal(
    field(ok.value, "ulCapabilities"),
    String(0x9FE8),
    "compression never granted by KC",
  );
  assert.equal(header(ok.res, "Content-Encoding"), undefined);
  const failed = await logonReply(env.target.tcp, { caps: 0xE753, password: "x" });
  assert.equal(field(failed.value, "lpszVersion"), "0,11,0,2");
  assert.equal(field(failed.value, "ulCapabilities"), String(0x98A8));
  assert.equal(field(failed.value, "sServerGuid"), "");
  assert.equal(field(failed.value, "ulSessionId"), "0");
});

Deno.test("logon: ENHANCED_ICS makes the logon reply chunked, a failed one is not", async () => {
  await using env = await simEnv();
  const ok = await logonReply(env.target.tcp, { caps: 528 | 0x100 });
  assert.equal(header(ok.res, "Transfer-Encoding"), "chunked");
  assert.equal(header(ok.res, "Content-Length"), undefined);
  const failed = await logonReply(env.target.tcp, { caps: 528 | 0x100, password: "x" });
  assert.equal(header(failed.res, "Transfer-Encoding"), undefined);
  assert.equal(Number(header(failed.res, "Content-Length")), failed.res.body.length);
});

Deno.test("logon: sServerGuid is 16 bytes, the same for every logon of one server, new per server", async () => {
  await using env = await simEnv();
  const g1 = field((await logonReply(env.target.tcp)).value, "sServerGuid")!;
  const g2 = field((await logonReply(env.target.unix)).value, "sServerGuid")!;
  assert.equal(atob(g1).length, 16);
  assert.equal(g1, g2);
  assert.equal(g1, btoa(String.fromCharCode(...env.sim.serverGuid)));
  await using other = await simEnv();
  assert.notEqual(field((await logonReply(other.target.tcp)).value, "sServerGuid"), g1);
});

Deno.test("logon: a license request gets a non-empty base64 license response", async () => {
  await using env = await simEnv();
  const req = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(200))));
  const withLic = await logonReply(env.target.tcp, { license: req });
  const lic = field(withLic.value, "sLicenseResponse")!;
  assert.ok(atob(lic).length > 0);
  assert.equal(atob(lic).slice(0, 7), atob(req).slice(0, 7), "licstream header echoed");
  assert.equal(field((await logonReply(env.target.tcp)).value, "sLicenseResponse"), "");
  assert.equal(
    field(
      (await logonReply(env.target.tcp, { license: req, password: "x" })).value,
      "sLicenseResponse",
    ),
    "",
  );
});

Deno.test("logon: client version gate: a parsable version below 6 is INVALID_VERSION, the session stays", async () => {
  await using env = await simEnv();
  for (const version of ["5,0,0", "0,5,1,2", " 5,9,9,100"]) {
    const r = await logonReply(env.target.tcp, { version });
    assert.equal(r.er, "2147483681", version);
    assert.equal(field(r.value, "ulSessionId"), "0");
    assert.equal(field(r.value, "lpszVersion"), "0,11,0,2");
  }
  assert.equal(env.sim.openSessions(), 3, "KC creates the session before the version check");
  // Dotted versions do not parse (= unknown = accepted), nor do short ones.
  for (const version of ["6,0,0", "0,11,0,2", "11.0.2", "5.0.0", "5,0", "", "garbage"]) {
    assert.equal((await logonReply(env.target.tcp, { version, flags: 3 })).er, "0", version);
  }
  // NO_REGISTER_SESSION makes no session, so there is nothing to check the version on.
  assert.equal((await logonReply(env.target.tcp, { version: "5,0,0", flags: 3 })).er, "0");
});

Deno.test("logon: NO_REGISTER_SESSION (0x2) checks the password only, from 8.5.0 on", async () => {
  await using env = await simEnv();
  const r = await logonReply(env.target.tcp, { flags: 3 });
  assert.equal(r.er, "0");
  const sid = field(r.value, "ulSessionId")!;
  assert.notEqual(sid, "0");
  assert.equal(env.sim.openSessions(), 0);
  assert.equal(
    parse((await exchange(env.target.tcp, post(getUser(sid), { close: true })))!).er,
    "2147483664",
  );
  await using old = await simEnv({ version: "8.4.0" });
  assert.equal((await logonReply(old.target.tcp, { flags: 3 })).er, "0");
  assert.equal(old.sim.openSessions(), 1, "8.4 ignores the flag and registers the session");
});

Deno.test("logon: impersonation: an admin may, others may not", async () => {
  await using env = await simEnv();
  assert.equal(
    (await logonReply(env.target.tcp, {
      user: "kadmin",
      password: "adminpass",
      impersonate: "alice",
    })).er,
    "0",
  );
  assert.deepEqual(env.sim.sessions().map((s) => s.user), ["alice"]);
  assert.equal((await logonReply(env.target.tcp, { impersonate: "bob" })).er, LOGON_FAILED);
  assert.equal(
    (await logonReply(env.target.tcp, {
      user: "kadmin",
      password: "adminpass",
      impersonate: "nobody",
    })).er,
    LOGON_FAILED,
  );
  assert.equal(env.sim.openSessions(), 1);
});

Deno.test("logon: gSOAP leniency: order, unknown and duplicate elements, prefixes, namespaces", async () => {
  await using env = await simEnv();
  const t = env.target.tcp;
  const er = async (inner: string) => parse(await rawLogon(t, inner)).er;
  const tail = "<ulCapabilities>528</ulCapabilities><ulFlags>1</ulFlags>";
  // Any order, unknown elements ignored (kcc-go sends <clientVersion>).
  assert.equal(
    await er(
      `<ns:logon>${tail}<clientVersion>9</clientVersion><szPassword>secret</szPassword><szUsername>alice</szUsername></ns:logon>`,
    ),
    "0",
  );
  // The first of duplicate parameters wins.
  assert.equal(
    await er(
      `<ns:logon><szUsername>alice</szUsername><szPassword>secret</szPassword><szPassword>x</szPassword>${tail}</ns:logon>`,
    ),
    "0",
  );
  assert.equal(
    await er(
      `<ns:logon><szUsername>alice</szUsername><szPassword>x</szPassword><szPassword>secret</szPassword>${tail}</ns:logon>`,
    ),
    LOGON_FAILED,
  );
  // Prefixed parameters are not recognised.
  assert.equal(
    await er(
      `<ns:logon><szUsername>alice</szUsername><ns:szPassword>secret</ns:szPassword>${tail}</ns:logon>`,
    ),
    LOGON_FAILED,
  );
  // Another prefix or a default namespace bound to urn:zarafa.
  assert.equal(
    await er(
      `<k:logon xmlns:k="urn:zarafa"><szUsername>alice</szUsername><szPassword>secret</szPassword>${tail}</k:logon>`,
    ),
    "0",
  );
  assert.equal(
    await er(
      `<logon xmlns="urn:zarafa"><szUsername>alice</szUsername><szPassword>secret</szPassword>${tail}</logon>`,
    ),
    "0",
  );
  // xsi:type ignored; xsi:nil makes a NULL password; comments, CDATA and entities in values.
  assert.equal(
    await er(
      `<ns:logon><szUsername xsi:type="xsd:string">alice</szUsername><szPassword>sec<!-- c -->ret</szPassword>${tail}</ns:logon>`,
    ),
    "0",
  );
  assert.equal(
    await er(
      `<ns:logon><szUsername>alice</szUsername><szPassword xsi:nil="true"/>${tail}</ns:logon>`,
    ),
    LOGON_FAILED,
  );
  assert.equal(
    await er(
      `<ns:logon><szUsername>al<![CDATA[ice]]></szUsername><szPassword>&#115;ecret</szPassword>${tail}</ns:logon>`,
    ),
    "0",
  );
  // Mismatched end tags close the current element (fixture d4).
  assert.equal(
    await er(`<ns:logon><szUsername>alice</x><szPassword>secret</szUsername>${tail}</ns:logon>`),
    "0",
  );
  // A SOAP header is skipped.
  const withHeader = (await exchange(
    t,
    post(
      envelope("").replace(
        "<SOAP-ENV:Body",
        "<SOAP-ENV:Header><x>1</x></SOAP-ENV:Header><SOAP-ENV:Body",
      ).replace(
        "</SOAP-ENV:Body>",
        `<ns:logon><szUsername>alice</szUsername><szPassword>secret</szPassword>${tail}</ns:logon></SOAP-ENV:Body>`,
      ),
      { close: true },
    ),
  ))!;
  assert.equal(parse(withHeader).er, "0");
});

Deno.test("logon: passwords with XML specials arrive unescaped", async () => {
  await using env = await simEnv({ users: [{ name: "dave", password: "s3cr&t<\"'>é" }] });
  assert.equal(
    (await logonReply(env.target.tcp, { user: "dave", password: "s3cr&t<\"'>é" })).er,
    "0",
  );
  assert.equal(env.sim.requests[0].params.szPassword, "s3cr&t<\"'>é");
});

Deno.test("logon: a leading U+FEFF in a value is text, kept as sent (gSOAP does not strip it)", async () => {
  await using env = await simEnv({ users: [{ name: "erin", password: "\ufeffpw" }] });
  const er = async (password: string) =>
    (await logonReply(env.target.tcp, { user: "erin", password })).er;
  assert.equal(await er("\ufeffpw"), "0");
  assert.equal(env.sim.requests[0].params.szPassword, "\ufeffpw");
  assert.equal(await er("pw"), LOGON_FAILED);
  assert.equal(await er("\ufeff\ufeffpw"), LOGON_FAILED);
  // Also where the text starts after a comment or a character reference.
  const body = logon({ user: "erin", password: "" }).replace(
    "<szPassword></szPassword>",
    "<szPassword><!-- c -->\ufeffpw</szPassword>",
  );
  assert.equal(parse((await exchange(env.target.tcp, post(body, { close: true })))!).er, "0");
});

Deno.test("logon: malformed numbers are HTTP 500 validation faults; blanks, + and -0 are fine", async () => {
  await using env = await simEnv();
  const fault = async (el: string, value: string) => {
    const body = logon({ flags: 3 }).replace(
      new RegExp(`<${el}>[^<]*</${el}>`),
      `<${el}>${value}</${el}>`,
    );
    const res = (await exchange(env.target.tcp, post(body, { close: true })))!;
    return res.status === 200 ? parse(res).er : bodyElement(res.body).value.faultstring;
  };
  for (const v of ["abc", "-1", "0x210", "4294967296", "", "5 28"]) {
    assert.equal(
      await fault("ulCapabilities", v),
      "Validation constraint violation: invalid value in element 'ulCapabilities'",
      v,
    );
  }
  assert.equal(
    await fault("ullSessionGroup", "1".repeat(23)),
    "Validation constraint violation: invalid value in element 'ullSessionGroup'",
  );
  assert.equal(
    await fault("sLicenseReq", "not base64!"),
    "Validation constraint violation: invalid value in element 'sLicenseReq'",
  );
  for (const v of [" 528 ", "+528", "0528"]) assert.equal(await fault("ulCapabilities", v), "0", v);
  assert.equal(await fault("ulFlags", "-0"), "0");
  assert.equal(await fault("ullSessionGroup", "18446744073709551615"), "0");
});

Deno.test("logon: request structure faults (method, namespace, envelope, depth)", async () => {
  await using env = await simEnv();
  const faultOf = async (body: string) => {
    const res = (await exchange(env.target.tcp, post(body, { close: true })))!;
    assert.equal(res.status, 500);
    assert.equal(header(res, "Connection"), "close");
    const v = bodyElement(res.body).value;
    return `${v.faultcode}|${v.faultstring}`;
  };
  assert.equal(
    await faultOf(
      envelope(`<k:logon xmlns:k="urn:kopano"><szUsername>alice</szUsername></k:logon>`),
    ),
    "SOAP-ENV:Client|Method 'k:logon' not implemented: method name or namespace not recognized",
  );
  assert.equal(
    await faultOf(envelope(`<ns:getStore><ulSessionId>1</ulSessionId></ns:getStore>`)),
    "SOAP-ENV:Client|Method 'ns:getStore' not implemented: method name or namespace not recognized",
  );
  assert.equal(
    await faultOf(envelope("")),
    "SOAP-ENV:Client|Method '' not implemented: method name or namespace not recognized",
  );
  assert.equal(
    await faultOf(`<Envelope><Body><ns:logon xmlns:ns="urn:zarafa"/></Body></Envelope>`),
    "SOAP-ENV:VersionMismatch|Invalid SOAP message or SOAP version mismatch",
  );
  assert.equal(await faultOf(`<html><body>hi</body></html>`), "SOAP-ENV:Client|HTTP method error");
  const deep = "<a>".repeat(10_001) + "</a>".repeat(10_001);
  assert.equal(
    await faultOf(logon().replace("<szClientApp>", `<szClientApp>${deep}`)),
    "SOAP-ENV:Client|Maximum XML nesting depth level exceeded: increase maxlevel",
  );
});

Deno.test("logon: the request log shows what the client sent, absent elements included", async () => {
  await using env = await simEnv();
  await logonReply(env.target.tcp, { impersonate: null, flags: 1 });
  const r = env.sim.requests[0];
  assert.equal(r.method, "logon");
  assert.equal(r.httpMethod, "POST");
  assert.equal(r.params.ulFlags, "1");
  assert.equal(r.params.szPassword, "secret");
  assert.ok(!r.elements.includes("szImpersonateUser"));
  assert.deepEqual(r.elements.slice(0, 3), ["szUsername", "szPassword", "szVersion"]);
  assert.equal(r.status, 200);
  assert.equal(r.outcome, "reply");
  assert.equal(r.headers["content-type"], "text/xml; charset=utf-8");
  assert.ok(new TextDecoder().decode(r.rawBody).startsWith("<?xml"));
});

Deno.test("logon: default users are the fixtures' (alice 3, bob 4, kadmin 5 admin)", async () => {
  const sim = await startKopanoSim();
  try {
    const t = targetOf(sim.urls.http[0]);
    await withConn(t, async (c) => {
      const sid = field(
        (await call(c, logon({ user: "kadmin", password: "adminpass" }))).value,
        "ulSessionId",
      )!;
      const me = (await call(c, getUser(sid))).value.lpsUser;
      assert.equal(field(me, "ulUserId"), "5");
      assert.equal(field(me, "ulIsAdmin"), "1");
    });
    assert.equal((await logonReply(t, { user: "bob", password: "bobpass" })).er, "0");
    assert.equal((await logonReply(t, { user: "alice", password: "secret" })).er, "0");
    assert.ok(text((await exchange(t, post(logon(), { close: true })))!).includes("<er>0</er>"));
  } finally {
    await sim.close();
  }
});
