// Replays every request of the genuine kopano-server 11.0.2 captures (tests/fixtures/kopano-11.0.2,
// a-e, and f1) against the sim, configured like the recorded server (disabled_features = imap
// mobile), and compares each reply with the recorded one (tests/sim/lib/replay.ts). Requests
// referring to recorded session/entry ids are rewritten to the live ones from earlier replies of
// the chain (c0 -> c1..c4 -> b1..b3, c3 -> c4, c5 -> c6).
// The a-d captures were made over TCP; they are also replayed over TLS and the UNIX socket (with
// a non-admin peer, else the UNIX peer-credential logon would change a2/a3).
// The 8.7.85 generation: fidelity_8_7_test.ts.

import assert from "node:assert/strict";
import { startKopanoSim, type UnixPeer } from "../kopano_sim/mod.ts";
import { makeTestPki } from "../lib/pki.ts";
import { exchange } from "../lib/captures.ts";
import { requestBytes } from "./lib/fixtures.ts";
import { RawConn, targetOf } from "./lib/raw_http.ts";
import { compare, newLive, replay } from "./lib/replay.ts";

const dec = new TextDecoder();

const TCP_CAPTURES = [
  "a1_logon_alice_correct_password",
  "a2_logon_alice_wrong_password",
  "a3_logon_unknown_user",
  "a4_logon_alice_no_unicode_cap",
  "a5_logon_bob_correct_password",
  "a6_logon_alice_after_password_revert",
  "c0_logon_alice_for_feature_query",
  "c1_getUser_self_alice",
  "c2_getUser_bob_by_id4_as_alice",
  "c3_resolveUsername_bob_as_alice",
  "c4_getUser_bob_by_entryid_as_alice",
  "b1_logoff_alice", // the c0 session
  "b2_getUser_self_alice_after_logoff",
  "b3_logoff_alice_again_dead_session",
  "b4_getUser_bogus_session_id",
  "c5_logon_bob_for_feature_query",
  "c6_getUser_self_bob",
  "d1_unknown_method_logonBogus",
  "d2_malformed_truncated_xml",
  "d3_body_not_xml",
  "d4_mismatched_tags",
  "d5_getUser_sessionid_not_a_number",
  "f1_kopano-admin_tcp_as_SYSTEM",
];

const LIVE_SERVER = { disabledFeatures: "imap mobile", version: "11.0.2" };

for (const transport of ["tcp", "tls", "unix"] as const) {
  Deno.test(`fidelity: captures a-d and f1 replayed over ${transport}`, async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "sim_fidelity_" });
    const pki = transport === "tls" ? await makeTestPki() : null;
    const sim = await startKopanoSim({
      ...LIVE_SERVER,
      listen: transport === "tcp" ? ["127.0.0.1:0"] : [],
      tls: pki
        ? { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile }
        : undefined,
      unix: transport === "unix" ? `${dir}/server.sock` : undefined,
      unixPeer: "user",
      // The captures send each call on its own connection (curl, Connection: close). On the UNIX
      // socket the real server binds sessions to the client pid, the sim by default to the
      // connection: "socket" stands for one client process using several connections.
      unixOrigin: "socket",
    });
    try {
      const url = { tcp: sim.urls.http, tls: sim.urls.https, unix: sim.urls.unix }[transport][0];
      const target = targetOf(url, pki ? [await Deno.readTextFile(pki.caFile)] : []);
      const live = newLive();
      for (const name of TCP_CAPTURES) {
        await t.step(name, () => replay(target, "11.0.2", name, live));
      }
      assert.deepEqual(live.guids.size, 1, "one server GUID for every logon");
    } finally {
      await sim.close();
      await Deno.remove(dir, { recursive: true });
      if (pki) await Deno.remove(pki.dir, { recursive: true });
    }
  });
}

const UNIX_CAPTURES: Array<[string, UnixPeer]> = [
  ["e1_unix_root_alice_wrong_password", "admin"],
  ["e2_unix_root_unknown_user_wrong_password", "admin"],
  ["e4_unix_root_alice_wrong_password_NO_UID_AUTH_flag", "admin"],
  ["e3_unix_uid1_daemon_alice_wrong_password", "user"],
  ["e5_unix_uid1_daemon_alice_correct_password", "user"],
];

Deno.test("fidelity: UNIX-socket captures e1-e5 (root = admin peer, daemon = user peer)", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sim_fidelity_e_" });
  const admin = await startKopanoSim({
    ...LIVE_SERVER,
    unix: `${dir}/root.sock`,
    unixPeer: "admin",
  });
  const user = await startKopanoSim({
    ...LIVE_SERVER,
    unix: `${dir}/daemon.sock`,
    unixPeer: "user",
  });
  try {
    const live = newLive();
    for (const [name, peer] of UNIX_CAPTURES) {
      const sim = peer === "admin" ? admin : user;
      await t.step(
        name,
        () => replay(targetOf(sim.urls.unix[0]), "11.0.2", name, live),
      );
    }
    // e1 is the peer-credential logon with a wrong password: it made a real session for alice.
    assert.deepEqual(admin.sessions().map((s) => [s.user, s.method]), [["alice", "socket"]]);
    assert.deepEqual(user.sessions().map((s) => [s.user, s.method]), [["alice", "password"]]);
  } finally {
    await admin.close();
    await user.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fidelity: the real client's logon -> getUser(0) -> logoff of f3 on one keep-alive connection", async () => {
  const sim = await startKopanoSim(LIVE_SERVER);
  const name = "f3_kopano-passwd_alice_change_password_with_store";
  const c = await RawConn.open(targetOf(sim.urls.http[0]));
  try {
    const live = newLive();
    for (const n of [1, 3, 9]) {
      const rec = exchange("11.0.2", name, n);
      await c.write(requestBytes(rec.request, live.rewrite));
      const res = await c.response();
      assert(res, `exchange ${n}: no reply`);
      compare(`${name} #${n}`, res, rec.response!, live);
      // The real client asks for ENHANCED_ICS: replies come as one chunk, then the last chunk.
      assert.deepEqual(res.chunks, [res.body.length], `exchange ${n}: one chunk`);
      const tail = dec.decode(res.raw.subarray(res.raw.length - 7));
      assert.deepEqual(tail, "\r\n0\r\n\r\n");
      assert.match(
        dec.decode(res.raw),
        new RegExp(`\r\n\r\n${res.body.length.toString(16).toUpperCase()}\r\n<\\?xml`),
      );
      if (n === 1) assert.deepEqual(sim.openSessions(), 1);
    }
    assert.deepEqual(sim.openSessions(), 0, "logoff ended the session");
    assert(await c.quietFor(200), "keep-alive connection still open after logoff");
    // The same requests, unchanged, reached the sim: keep-alive, gzip offered, no SOAPAction.
    assert.deepEqual(sim.requests.map((r) => r.method), ["logon", "getUser", "logoff"]);
    assert.deepEqual(new Set(sim.requests.map((r) => r.connection)).size, 1);
    assert.deepEqual(sim.requests[0].headers["accept-encoding"], "gzip,deflate");
  } finally {
    c.close();
    await sim.close();
  }
});
