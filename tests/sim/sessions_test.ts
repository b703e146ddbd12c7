// Session-bound calls: logoff, getUser, resolveUsername, END_OF_SESSION, the session timeout and
// the binding of a session to its origin (docs/kopano.md#4-getuser-the-feature-lists-and-logoff;
// fixtures b1-b4, c1-c6).

import assert from "node:assert/strict";
import { call, openSession, withConn } from "./lib/calls.ts";
import { simEnv, TRANSPORTS } from "./lib/env.ts";
import { header, RawConn, targetOf } from "./lib/raw_http.ts";
import { envelope, field, getUser, logoff, resolveUsername } from "./lib/soap.ts";

const END_OF_SESSION = "2147483664";

function entryIdBytes(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

for (const tr of TRANSPORTS) {
  Deno.test(`sessions ${tr}: logoff ends the session; later calls get END_OF_SESSION`, async () => {
    await using env = await simEnv();
    const { c, sid } = await openSession(env.target[tr]);
    try {
      assert.equal(env.sim.openSessions(), 1);
      const out = await call(c, logoff(sid));
      assert.equal(out.name, "ns:logoffResponse");
      assert.equal(field(out.value, "result"), "0");
      assert.equal(env.sim.openSessions(), 0);
      assert.equal((await call(c, getUser(sid))).er, END_OF_SESSION);
      assert.equal(field((await call(c, logoff(sid))).value, "result"), END_OF_SESSION);
      const r = await call(c, resolveUsername(sid, "bob"));
      assert.equal(r.name, "ns:resolveUserResponse");
      assert.deepEqual([field(r.value, "ulUserId"), field(r.value, "sUserId"), r.er], [
        "0",
        "",
        END_OF_SESSION,
      ]);
      assert.equal((await call(c, getUser("12345"))).er, END_OF_SESSION);
    } finally {
      c.close();
    }
  });
}

Deno.test("sessions: getUser(0) returns the logged-on user", async () => {
  await using env = await simEnv();
  const { c, sid } = await openSession(env.target.tcp);
  try {
    const g = await call(c, getUser(sid));
    assert.equal(g.name, "ns:getUserResponse");
    assert.equal(g.er, "0");
    const u = g.value.lpsUser;
    const got = Object.fromEntries(
      [
        "ulUserId",
        "lpszUsername",
        "lpszPassword",
        "lpszMailAddress",
        "lpszFullName",
        "lpszServername",
        "ulIsNonActive",
        "ulIsAdmin",
        "ulIsABHidden",
        "ulCapacity",
        "ulObjClass",
      ]
        .map((k) => [k, field(u, k)]),
    );
    assert.deepEqual(got, {
      ulUserId: "3",
      lpszUsername: "alice",
      lpszPassword: "",
      lpszMailAddress: "alice@example.com",
      lpszFullName: "Alice Example",
      lpszServername: "",
      ulIsNonActive: "0",
      ulIsAdmin: "0",
      ulIsABHidden: "0",
      ulCapacity: "0",
      ulObjClass: "65537",
    });
    const eid = entryIdBytes(field(u, "sUserId")!);
    const dv = new DataView(eid.buffer);
    assert.equal(eid.length % 4, 0);
    assert.deepEqual([
      dv.getUint32(0, true),
      dv.getUint32(20, true),
      dv.getUint32(24, true),
      dv.getUint32(28, true),
    ], [0, 1, 6, 3]);
    assert.equal(eid[eid.length - 1], 0, "NUL-terminated extern id");
  } finally {
    c.close();
  }
});

Deno.test("sessions: getUser by entry id, by legacy numeric id, and the refusals", async () => {
  await using env = await simEnv();
  const { c, sid } = await openSession(env.target.unix);
  try {
    const r = await call(c, resolveUsername(sid, "BOB")); // case-insensitive
    assert.equal(r.er, "0");
    assert.equal(field(r.value, "ulUserId"), "4");
    const eid = field(r.value, "sUserId")!;
    const bob = await call(c, getUser(sid, 0, eid));
    assert.equal(field(bob.value.lpsUser, "lpszUsername"), "bob");
    assert.equal(field(bob.value.lpsUser, "sUserId"), eid);
    // The entry id wins over a numeric id given with it.
    assert.equal(field((await call(c, getUser(sid, 5, eid))).value.lpsUser, "lpszUsername"), "bob");
    // A plain numeric id with an empty sUserId is refused (fixture c2) ...
    assert.equal((await call(c, getUser(sid, 4))).er, "2147483668");
    // ... but without any sUserId element the server takes the pre-6.20 numeric id.
    const legacy = envelope(
      `<ns:getUser><ulSessionId>${sid}</ulSessionId><ulUserId>4</ulUserId></ns:getUser>`,
    );
    assert.equal(field((await call(c, legacy)).value.lpsUser, "lpszUsername"), "bob");
    const unknownLegacy = legacy.replace("<ulUserId>4<", "<ulUserId>99<");
    assert.equal((await call(c, unknownLegacy)).er, "2147483650");
    // Entry ids: not a Kopano AB entry id -> INVALID_PARAMETER; unknown object -> NOT_FOUND.
    assert.equal((await call(c, getUser(sid, 0, btoa("x".repeat(40))))).er, "2147483668");
    const bytes = entryIdBytes(eid);
    bytes[40] ^= 1; // another extern id
    assert.equal(
      (await call(c, getUser(sid, 0, btoa(String.fromCharCode(...bytes))))).er,
      "2147483650",
    );
    assert.equal((await call(c, resolveUsername(sid, "nobody"))).er, "2147483650");
    const noName = envelope(
      `<ns:resolveUsername><ulSessionId>${sid}</ulSessionId></ns:resolveUsername>`,
    );
    assert.equal((await call(c, noName)).er, "2147483668");
    // The errors reply with er only; getUser(0) still works on the same connection.
    assert.equal((await call(c, getUser(sid))).er, "0");
  } finally {
    c.close();
  }
});

Deno.test("sessions: a session expires after sessionTimeoutMs without calls; calls refresh it", async () => {
  await using env = await simEnv({ sessionTimeoutMs: 600 });
  const { c, sid } = await openSession(env.target.unix);
  try {
    for (let i = 0; i < 4; i++) { // 4 x 200 ms > 600 ms, but never idle for 600 ms
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await call(c, getUser(sid))).er, "0");
    }
    assert.equal(env.sim.openSessions(), 1);
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(env.sim.openSessions(), 0);
    assert.equal((await call(c, getUser(sid))).er, END_OF_SESSION);
    assert.equal(field((await call(c, logoff(sid))).value, "result"), END_OF_SESSION);
  } finally {
    c.close();
  }
});

Deno.test("sessions: bound to the peer IP on TCP/TLS, to the connection on the UNIX socket", async () => {
  await using env = await simEnv();
  const t = env.target;
  // TCP session: any connection from 127.0.0.1 may use it, TLS too (same source address) ...
  const tcp = await openSession(t.tcp);
  try {
    assert.equal((await withConn(t.tcp, (c) => call(c, getUser(tcp.sid)))).er, "0");
    assert.equal((await withConn(t.tls, (c) => call(c, getUser(tcp.sid)))).er, "0");
    // ... but not a UNIX-socket client.
    assert.equal((await withConn(t.unix, (c) => call(c, getUser(tcp.sid)))).er, END_OF_SESSION);
  } finally {
    tcp.c.close();
  }
  // UNIX session: another connection is another client process for the sim.
  const unix = await openSession(t.unix);
  try {
    assert.equal((await withConn(t.unix, (c) => call(c, getUser(unix.sid)))).er, END_OF_SESSION);
    assert.equal((await withConn(t.tcp, (c) => call(c, logoff(unix.sid)))).er, END_OF_SESSION);
    assert.equal((await call(unix.c, logoff(unix.sid))).er, "0");
  } finally {
    unix.c.close();
  }
  assert.deepEqual(env.sim.sessions().map((s) => s.origin), ["ip:127.0.0.1"]);
});

Deno.test("sessions: unixOrigin 'socket' lets every UNIX connection share sessions", async () => {
  await using env = await simEnv({ unixOrigin: "socket" });
  const { c, sid } = await openSession(env.target.unix);
  c.close();
  assert.equal((await withConn(env.target.unix, (c2) => call(c2, logoff(sid)))).er, "0");
});

/** Whether this machine has an IPv6 loopback to listen on. */
function haveIpv6(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

const ipv6 = haveIpv6();

Deno.test({
  name: ipv6
    ? "sessions: a session made over 127.0.0.1 is refused from ::1"
    : "sessions: refused from ::1: SKIPPED, needs IPv6 on the loopback interface (::1)",
  ignore: !ipv6,
  fn: async () => {
    await using env = await simEnv({ listen: ["127.0.0.1:0", "[::1]:0"] });
    const v4 = targetOf(env.sim.urls.http[0]), v6 = targetOf(env.sim.urls.http[1]);
    assert.match(env.sim.urls.http[1], /^http:\/\/\[::1\]:\d+\/kopano$/);
    const { c, sid } = await openSession(v4);
    try {
      assert.equal((await withConn(v6, (c6) => call(c6, getUser(sid)))).er, END_OF_SESSION);
      assert.equal((await call(c, logoff(sid))).er, "0");
    } finally {
      c.close();
    }
  },
});

Deno.test("sessions: replies on an ENHANCED_ICS session are chunked, others and dead ones not", async () => {
  await using env = await simEnv();
  const ics = await openSession(env.target.tcp, { caps: 528 | 0x100 });
  const plain = await openSession(env.target.tcp);
  try {
    const g = await call(ics.c, getUser(ics.sid));
    assert.equal(header(g.res, "Transfer-Encoding"), "chunked");
    assert.equal(
      header((await call(plain.c, getUser(plain.sid))).res, "Transfer-Encoding"),
      undefined,
    );
    assert.equal(
      header((await call(ics.c, resolveUsername(ics.sid, "bob"))).res, "Transfer-Encoding"),
      "chunked",
    );
    assert.equal(header((await call(ics.c, logoff(ics.sid))).res, "Transfer-Encoding"), "chunked");
    const dead = await call(ics.c, getUser(ics.sid));
    assert.equal(dead.er, END_OF_SESSION);
    assert.equal(header(dead.res, "Transfer-Encoding"), undefined);
  } finally {
    ics.c.close();
    plain.c.close();
  }
});

Deno.test("sessions: sessions() describes who is logged on and how", async () => {
  await using env = await simEnv();
  const a = await openSession(env.target.tcp);
  const b = await openSession(env.target.unix, { user: "bob", password: "wrong", flags: 0 }); // peer logon
  try {
    const list = env.sim.sessions().map((s) => [s.user, s.transport, s.method, s.capabilities]);
    assert.deepEqual(list, [["alice", "tcp", "password", 528], ["bob", "unix", "socket", 528]]);
    assert.equal(env.sim.sessions()[0].id, a.sid);
  } finally {
    a.c.close();
    b.c.close();
  }
  await RawConn.open(env.target.tcp).then((c) => c.close()); // a bare connect logs nothing
  assert.equal(env.sim.requests.length, 2);
});
