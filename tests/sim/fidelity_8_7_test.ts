// Replays the genuine kopano-server 8.7.85 captures (tests/fixtures/kopano-8.7.85) against the sim
// started as 8.7.85 with the recorded server's users and disabled_features, over TCP, TLS and the
// UNIX socket, and compares each reply with the recorded one byte for byte once session ids, the
// server GUID and entry ids are masked (tests/sim/lib/replay.ts). Where 8.7 differs from 11.0.2 on
// the wire (its README): the version string, the HTTP 500 fault for a logon without the UNICODE
// capability, the extern ids inside entry ids (masked: they differ per server).
// The http_ captures are replayed over every transport; https_ ones over TLS, unix_ ones over the
// UNIX socket, as root (an admin peer) like the recording: every http_ request sets ulFlags 1, so
// root's password is checked too, and only unix_..._flags0_empty_imp gets the peer-credential logon.

import assert from "node:assert/strict";
import { CAPTURED_USERS, type KopanoSimOptions, startKopanoSim } from "../kopano_sim/mod.ts";
import { captureDir, exchange, recordedResponse } from "../lib/captures.ts";
import { makeTestPki } from "../lib/pki.ts";
import { elementText, requestBytes } from "./lib/fixtures.ts";
import { RawConn, targetOf } from "./lib/raw_http.ts";
import { compare, type Live, newLive, replay } from "./lib/replay.ts";

const G = "8.7.85";
const dec = new TextDecoder();

const RECORDED_SERVER: KopanoSimOptions = {
  version: G,
  users: CAPTURED_USERS,
  disabledFeatures: "imap mobile",
  unixPeer: "admin",
  // Each capture is a connection of its own (Connection: close); on the UNIX socket the real
  // server binds a session to the client process, which "socket" stands for.
  unixOrigin: "socket",
};

/** The recorded session id a request uses. */
const sessionIn = (name: string) =>
  elementText(dec.decode(exchange(G, name).request.body), "ulSessionId")!;
/** The session id a recorded logon reply granted. */
const sessionOf = (name: string) =>
  elementText(dec.decode(recordedResponse(G, name).body), "ulSessionId")!;

/**
 * The getUser/logoff captures used sessions of logons that were not recorded: they stand for the
 * live session of the recorded logon of the same user.
 */
function adoptSessions(live: Live, logon: string, captures: string[]): void {
  const session = live.rewrite.get(sessionOf(logon));
  assert.ok(session, `${logon}: no live session`);
  for (const c of captures) live.rewrite.set(sessionIn(c), session);
}

const HTTP_CAPTURES = [
  "http_logon_alice_right_flags1",
  "http_logon_alice_wrong_flags1",
  "http_logon_unknown_user_flags1",
  "http_logon_alice_no_unicode_cap", // HTTP 500 "Error -2147221245" (MAPI_E_BAD_CHARWIDTH)
  "http_logon_bob_right_flags1",
  "http_logon_kadmin_right_flags1",
  "http_logon_carol_right_flags1", // p&<ss>"'w]]>rd
  "http_logon_dave_right_flags1", // pässwörd€ ok
  "http_logon_erin_right_flags1", // erin@example.com
  "http_getUser_self_alice",
  "http_getUser_self_bob",
  "http_logoff_alice",
  "http_logoff_bob",
  "http_getUser_bogus_session",
  "http_unknown_method",
];
const OWN_CAPTURES = {
  tcp: [],
  tls: [
    "https_logon_alice_right_flags1",
    "https_logon_alice_wrong_flags1",
    "https_logon_unknown_user_flags1",
  ],
  unix: [
    "unix_logon_alice_right_flags1",
    "unix_logon_alice_wrong_flags1",
    "unix_logon_unknown_user_flags1",
    "unix_logon_alice_wrong_flags0_empty_imp", // root, flags 0: a session whatever the password
    "unix_logon_alice_wrong_flags0_no_imp", // without the element the password is checked
  ],
};

Deno.test("fidelity 8.7.85: every captured request is replayed", () => {
  const recorded = [...Deno.readDirSync(captureDir(G))]
    .map((e) => /^(.*)\.request\.http$/.exec(e.name)?.[1])
    .filter((n) => n !== undefined);
  const replayed = [...HTTP_CAPTURES, ...OWN_CAPTURES.tls, ...OWN_CAPTURES.unix];
  assert.deepEqual([...replayed].sort(), recorded.sort());
  // The one capture without a request: both replies of the keep-alive test below.
  assert.ok(recordedResponse(G, "http_keepalive_two_logons", 2));
});

async function simOn(transport: "tcp" | "tls" | "unix") {
  const dir = await Deno.makeTempDir({ prefix: "sim_fidelity87_" });
  const pki = transport === "tls" ? await makeTestPki() : null;
  const sim = await startKopanoSim({
    ...RECORDED_SERVER,
    listen: transport === "tcp" ? ["127.0.0.1:0"] : [],
    tls: pki ? { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile } : undefined,
    unix: transport === "unix" ? `${dir}/server.sock` : undefined,
  });
  const url = { tcp: sim.urls.http, tls: sim.urls.https, unix: sim.urls.unix }[transport][0];
  return {
    sim,
    target: targetOf(url, pki ? [await Deno.readTextFile(pki.caFile)] : []),
    async [Symbol.asyncDispose]() {
      await sim.close();
      await Deno.remove(dir, { recursive: true });
      if (pki) await Deno.remove(pki.dir, { recursive: true });
    },
  };
}

for (const transport of ["tcp", "tls", "unix"] as const) {
  Deno.test(`fidelity 8.7.85: the http_ captures and the ${transport} ones replayed over ${transport}`, async (t) => {
    await using env = await simOn(transport);
    const live = newLive();
    for (const name of [...HTTP_CAPTURES, ...OWN_CAPTURES[transport]]) {
      await t.step(name, () => replay(env.target, G, name, live));
      if (name === "http_logon_bob_right_flags1") {
        adoptSessions(live, "http_logon_alice_right_flags1", [
          "http_getUser_self_alice",
          "http_logoff_alice",
        ]);
        adoptSessions(live, "http_logon_bob_right_flags1", [
          "http_getUser_self_bob",
          "http_logoff_bob",
        ]);
      }
    }
    assert.deepEqual(live.guids.size, 1, "one server GUID for every logon");
    // alice's and bob's sessions were logged off; the others stay, each made by its password,
    // except the UNIX peer-credential logon of unix_logon_alice_wrong_flags0_empty_imp.
    const sessions = env.sim.sessions().map((s) => `${s.user}/${s.method}`).sort();
    const expected = ["carol/password", "dave/password", "erin@example.com/password"];
    expected.push("kadmin/password");
    if (transport === "tls") expected.push("alice/password");
    if (transport === "unix") expected.push("alice/password", "alice/socket");
    assert.deepEqual(sessions, expected.sort());
  });
}

for (const transport of ["tcp", "tls", "unix"] as const) {
  Deno.test(`fidelity 8.7.85: keep-alive, two logons on one ${transport} connection`, async () => {
    await using env = await simOn(transport);
    const c = await RawConn.open(env.target);
    try {
      const live = newLive();
      const logons = ["http_logon_alice_right_flags1", "http_logon_alice_wrong_flags1"];
      for (const [i, name] of logons.entries()) {
        // The capture kept the connection: the same requests without "Connection: close".
        const req = requestBytes(exchange(G, name).request, live.rewrite, [
          "Connection: keep-alive",
        ]);
        await c.write(req);
        const res = await c.response();
        assert(res, `logon ${i + 1}: no reply`);
        compare(
          `keep-alive #${i + 1}`,
          res,
          recordedResponse(G, "http_keepalive_two_logons", i + 1),
          live,
        );
        assert.ok(await c.quietFor(150), `logon ${i + 1}: connection kept open`);
      }
      const [conn] = env.sim.connections();
      assert.deepEqual([env.sim.connections().length, conn.requests], [1, 2]);
    } finally {
      c.close();
    }
  });
}

Deno.test("fidelity 8.7.85: the faults its README says it shares with 11.0.2 (d1, d3, d5)", async (t) => {
  await using env = await simOn("tcp");
  const live = newLive();
  for (
    const name of [
      "d1_unknown_method_logonBogus",
      "d3_body_not_xml",
      "d5_getUser_sessionid_not_a_number",
    ]
  ) {
    await t.step(name, () => replay(env.target, "11.0.2", name, live));
  }
});
