// The UNIX socket's peer-credential logon (fixtures e1-e5,
// docs/kopano.md#6-the-unix-socket-and-its-peer-credential-logon): who is logged in whatever the
// password, and what stops it, per assumed peer and per emulated version.

import assert from "node:assert/strict";
import type { UnixPeer } from "../kopano_sim/mod.ts";
import { parse } from "./lib/calls.ts";
import { simEnv } from "./lib/env.ts";
import { exchange, type Target } from "./lib/raw_http.ts";
import { field, logon, type LogonArgs, post } from "./lib/soap.ts";

const OK = "0", FAILED = "2147483657";

async function er(t: Target, a: LogonArgs): Promise<string> {
  return parse((await exchange(t, post(logon(a), { close: true })))!).er!;
}

Deno.test("unix peer admin (root): logged in with a wrong password unless NO_UID_AUTH", async () => {
  await using env = await simEnv({ unixPeer: "admin" });
  const u = env.target.unix;
  // e1: ulFlags 0 and an empty szImpersonateUser element: any password, even empty.
  for (const password of ["wrongpass", "", "secret"]) {
    assert.equal(await er(u, { password, flags: 0 }), OK, password);
  }
  assert.equal(await er(u, { password: null, flags: 0 }), OK, "even without a password element");
  assert.equal(await er(u, { user: "bob", password: "x", flags: 0, impersonate: "" }), OK);
  // e2: the user must exist.
  assert.equal(await er(u, { user: "nosuchuser", password: "x", flags: 0 }), FAILED);
  // e4: NO_UID_AUTH (bit 0x1, also with other bits) -> the password is checked.
  for (const flags of [1, 3, 0xFF]) {
    assert.equal(await er(u, { password: "wrongpass", flags }), FAILED, `flags ${flags}`);
  }
  // Without the szImpersonateUser element (NULL) the server skips socket logon.
  assert.equal(await er(u, { password: "wrongpass", flags: 0, impersonate: null }), FAILED);
  // A missing ulFlags element is 0.
  assert.equal(await er(u, { password: "wrongpass", flags: null }), OK);
  // Never over TCP or TLS.
  for (const tr of ["tcp", "tls"] as const) {
    assert.equal(await er(env.target[tr], { password: "wrongpass", flags: 0 }), FAILED, tr);
  }
  // Socket logon is tried first, so even the right password made a "socket" session.
  assert.deepEqual(env.sim.sessions().map((s) => s.method), Array(6).fill("socket"));
});

Deno.test("unix peer admin: even inactive users and SYSTEM get a session (socket logon needs no password)", async () => {
  await using env = await simEnv({
    unixPeer: "admin",
    users: [{ name: "alice", password: "secret" }, {
      name: "carol",
      password: "pw",
      active: false,
    }],
  });
  assert.equal(await er(env.target.unix, { user: "carol", password: "x", flags: 0 }), OK);
  assert.equal(await er(env.target.unix, { user: "SYSTEM", password: "x", flags: 0 }), OK);
  assert.equal(await er(env.target.unix, { user: "SYSTEM", password: "x", flags: 1 }), FAILED);
  assert.deepEqual(env.sim.sessions().map((s) => [s.user, s.method]), [["carol", "socket"], [
    "SYSTEM",
    "socket",
  ]]);
});

Deno.test("unix peer user (daemon): the password is always checked (e3, e5)", async () => {
  await using env = await simEnv({ unixPeer: "user" });
  assert.equal(await er(env.target.unix, { password: "wrongpass", flags: 0 }), FAILED);
  assert.equal(await er(env.target.unix, { password: "secret", flags: 0 }), OK);
  assert.equal(await er(env.target.unix, { password: "secret", flags: 1 }), OK);
});

Deno.test("unix peer local:alice: only the Kopano user of the caller's own name", async () => {
  await using env = await simEnv({ unixPeer: "local:alice" });
  assert.equal(await er(env.target.unix, { user: "alice", password: "wrong", flags: 0 }), OK);
  assert.equal(
    await er(env.target.unix, { user: "Alice", password: "wrong", flags: 0 }),
    FAILED,
    "getpwnam is exact",
  );
  assert.equal(await er(env.target.unix, { user: "bob", password: "wrong", flags: 0 }), FAILED);
  assert.equal(await er(env.target.unix, { user: "alice", password: "wrong", flags: 1 }), FAILED);
});

Deno.test("unix peer: a socket-logon admin can impersonate; the session belongs to the target", async () => {
  await using env = await simEnv({ unixPeer: "local:kadmin" });
  assert.equal(
    await er(env.target.unix, { user: "kadmin", password: "x", flags: 0, impersonate: "bob" }),
    OK,
  );
  assert.deepEqual(env.sim.sessions().map((s) => s.user), ["bob"]);
});

const GENERATIONS: Array<[string, { flagHonoured: boolean; needsElement: boolean }]> = [
  ["7.1.0", { flagHonoured: false, needsElement: false }], // socket auth unconditionally
  ["7.1.1", { flagHonoured: true, needsElement: false }],
  ["7.1.3", { flagHonoured: true, needsElement: false }],
  ["7.1.4", { flagHonoured: true, needsElement: true }],
  ["7.1.11", { flagHonoured: true, needsElement: true }],
  ["8.7.0", { flagHonoured: true, needsElement: true }],
  ["11.0.2", { flagHonoured: true, needsElement: true }],
];

for (const [version, g] of GENERATIONS) {
  Deno.test(`unix peer admin on ${version}: NO_UID_AUTH ${g.flagHonoured ? "honoured" : "IGNORED"}, element ${g.needsElement ? "required" : "not needed"}`, async () => {
    await using env = await simEnv({ version, unixPeer: "admin" });
    const u = env.target.unix;
    const want = (peerLogon: boolean) => peerLogon ? OK : FAILED;
    assert.equal(await er(u, { password: "wrong", flags: 0 }), OK);
    assert.equal(await er(u, { password: "wrong", flags: 1 }), want(!g.flagHonoured));
    assert.equal(
      await er(u, { password: "wrong", flags: 0, impersonate: null }),
      want(!g.needsElement),
    );
    // The helper's request (flags 1, no element) is only safe where the flag is honoured.
    assert.equal(
      await er(u, { password: "wrong", flags: 1, impersonate: null }),
      want(!g.flagHonoured),
    );
    assert.equal(await er(u, { password: "secret", flags: 1, impersonate: null }), OK);
    assert.equal(await er(env.target.tcp, { password: "wrong", flags: 0 }), FAILED);
    // A successful logon names the version the client must check (lpszVersion).
    const r = parse(
      (await exchange(u, post(logon({ password: "wrong", flags: 1 }), { close: true })))!,
    );
    if (!g.flagHonoured) assert.equal(field(r.value, "lpszVersion"), "0,7,1,0,0");
  });
}

Deno.test("unix peer: the option is validated", async () => {
  await assert.rejects(() => simEnv({ unixPeer: "root" as UnixPeer }), /unixPeer/);
});
