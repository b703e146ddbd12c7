// `--pam` end to end (the helper as a real process) against genuine kopano-server replies: every
// fixture reply leads to the right PAM result and log line, and every session is logged off.
import assert from "node:assert/strict";
import { startFixtureServer } from "./lib/fixture_server.ts";
import { captureText } from "../lib/captures.ts";
import { Reply, runPam } from "./lib/helper.ts";

const PW = "Fixture-Pw-7b1e";
const fixture11 = (name: string) => captureText("11.0.2", name);

function only(reply: Reply) {
  assert.equal(reply.log.length, 1, JSON.stringify(reply.log));
  assert.ok(!JSON.stringify(reply).includes(PW));
  return reply.log[0];
}

async function pamWith(
  replies: Parameters<typeof startFixtureServer>[0],
  extraArgs: string[] = [],
  transport: "tcp" | "unix" = "tcp",
) {
  const server = await startFixtureServer(replies, { transport });
  try {
    const r = await runPam({
      user: "alice",
      password: PW,
      rhost: "192.0.2.7",
      args: [`socket=${server.url}`, "timeout=5", ...extraArgs],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(server.openSessions(), 0, "every session logged off");
    return { reply: r.reply, calls: server.calls(), url: server.url, requests: server.requests };
  } finally {
    await server.close();
  }
}

Deno.test("a1: accepted logon -> PAM_SUCCESS, one info line, then logoff", async () => {
  const { reply, calls, url } = await pamWith({});
  assert.equal(reply.result, "PAM_SUCCESS");
  assert.deepEqual(only(reply), {
    priority: "info",
    message:
      `authentication success; user=alice rhost=192.0.2.7 socket=${url} result=PAM_SUCCESS reason="logon accepted"`,
  });
  assert.deepEqual(calls, ["logon", "logoff"]);
});

Deno.test("a2/a3: refused logon -> PAM_AUTH_ERR at notice; quiet drops the line", async () => {
  for (const f of ["a2_logon_alice_wrong_password", "a3_logon_unknown_user"]) {
    const { reply, calls, url } = await pamWith({ logon: fixture11(`${f}.response.body`) });
    assert.equal(reply.result, "PAM_AUTH_ERR");
    assert.deepEqual(only(reply), {
      priority: "notice",
      message:
        `authentication failure; user=alice rhost=192.0.2.7 socket=${url} result=PAM_AUTH_ERR reason="logon refused"`,
    });
    assert.deepEqual(calls, ["logon"]); // no session, nothing to log off
    const quiet = await pamWith({ logon: fixture11(`${f}.response.body`) }, ["quiet"]);
    assert.equal(quiet.reply.result, "PAM_AUTH_ERR");
    assert.deepEqual(quiet.reply.log, []);
  }
});

Deno.test("a4: BAD_CHARWIDTH is not an answer -> PAM_AUTHINFO_UNAVAIL at err, named", async () => {
  const { reply } = await pamWith(
    { logon: fixture11("a4_logon_alice_no_unicode_cap.response.body") },
    ["quiet"],
  );
  assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL");
  const line = only(reply);
  assert.equal(line.priority, "err");
  assert.match(
    line.message,
    /result=PAM_AUTHINFO_UNAVAIL reason="server unavailable" detail=".*KCERR_BAD_CHARWIDTH \(0x80000031\)"/,
  );
});

Deno.test("c1 alice (imap, mobile disabled): service= OR semantics, case-insensitive", async () => {
  const cases: [string, string][] = [
    ["service=pop3", "PAM_SUCCESS"],
    ["service=imap", "PAM_AUTH_ERR"],
    ["service=imap|pop3", "PAM_SUCCESS"],
    ["service=IMAP|Mobile", "PAM_AUTH_ERR"],
    ["service=WebApp", "PAM_SUCCESS"],
  ];
  for (const [arg, result] of cases) {
    const { reply, calls } = await pamWith({}, [arg]);
    assert.equal(reply.result, result, arg);
    assert.deepEqual(calls, ["logon", "getUser", "logoff"]);
    const line = only(reply);
    if (result === "PAM_SUCCESS") {
      assert.match(line.message, /reason="logon accepted" feature=(pop3|webapp)$/);
    } else {
      assert.equal(line.priority, "notice");
      assert.match(line.message, /reason="feature not enabled" required=/);
    }
  }
});

Deno.test("c6 bob (pop3, mobile disabled, imap enabled for him)", async () => {
  const bob = { getUser: fixture11("c6_getUser_self_bob.response.body") };
  assert.equal((await pamWith(bob, ["service=imap"])).reply.result, "PAM_SUCCESS");
  assert.equal((await pamWith(bob, ["service=pop3"])).reply.result, "PAM_AUTH_ERR");
  assert.equal((await pamWith(bob, ["service=pop3|mobile"])).reply.result, "PAM_AUTH_ERR");
});

Deno.test("b2: getUser END_OF_SESSION fails closed, and the session is still logged off", async () => {
  const { reply, calls } = await pamWith({
    getUser: fixture11("b2_getUser_self_alice_after_logoff.response.body"),
  }, [
    "service=pop3",
  ]);
  assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL");
  assert.match(only(reply).message, /getUser: KCERR_END_OF_SESSION/);
  assert.deepEqual(calls, ["logon", "getUser", "logoff"]);
});

Deno.test("d1/d3/d5: SOAP faults (HTTP 500) -> PAM_AUTHINFO_UNAVAIL, the fault named", async () => {
  for (
    const f of [
      "d1_unknown_method_logonBogus",
      "d3_body_not_xml",
      "d5_getUser_sessionid_not_a_number",
    ]
  ) {
    const { reply } = await pamWith({
      logon: fixture11(`${f}.response.body`),
      status: "500 Internal Server Error",
    });
    assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL", f);
    assert.match(only(reply).message, /logon: HTTP status 500, SOAP fault SOAP-ENV:Client: /);
  }
  // A fault with HTTP 200 is no answer either.
  const { reply } = await pamWith({
    logon: fixture11("d1_unknown_method_logonBogus.response.body"),
  });
  assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL");
});

Deno.test("ignore_authinfo_unavail turns no answer into PAM_IGNORE, nothing else", async () => {
  const fault = { logon: fixture11("d1_unknown_method_logonBogus.response.body") };
  const { reply } = await pamWith(fault, ["ignore_authinfo_unavail"]);
  assert.equal(reply.result, "PAM_IGNORE");
  assert.match(only(reply).message, /result=PAM_IGNORE reason="server unavailable"/);
  const refused = await pamWith(
    { logon: fixture11("a2_logon_alice_wrong_password.response.body") },
    [
      "ignore_authinfo_unavail",
    ],
  );
  assert.equal(refused.reply.result, "PAM_AUTH_ERR");
});

Deno.test("file://: a server reporting 11.0.2 is trusted; one without a version trips the guard", async () => {
  const ok = await pamWith(
    { logon: fixture11("e5_unix_uid1_daemon_alice_correct_password.response.body") },
    [],
    "unix",
  );
  assert.equal(ok.reply.result, "PAM_SUCCESS");
  const noVersion = fixture11("a1_logon_alice_correct_password.response.body")
    .replace("<lpszVersion>0,11,0,2</lpszVersion>", "");
  for (
    const logon of [
      noVersion,
      noVersion.replace("<er>0</er>", "<er>0</er><lpszVersion>0,7,1,0,1</lpszVersion>"),
    ]
  ) {
    const { reply, calls } = await pamWith({ logon }, [], "unix");
    assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL");
    const line = only(reply);
    assert.equal(line.priority, "err");
    assert.match(line.message, /reason="server too old to verify the password over file:\/\/"/);
    assert.deepEqual(calls, ["logon", "logoff"]); // logged off at once
  }
  // The same version-less reply over TCP is fine: peer credentials do not exist there.
  assert.equal((await pamWith({ logon: noVersion })).reply.result, "PAM_SUCCESS");
});

Deno.test("debug adds one line per step, never the password, the outcome last", async () => {
  const { reply, url } = await pamWith({}, ["debug", "service=pop3"]);
  assert.equal(reply.result, "PAM_SUCCESS");
  assert.ok(!JSON.stringify(reply).includes(PW));
  const debug = reply.log.filter((l) => l.priority === "debug").map((l) => l.message);
  assert.deepEqual(debug, [
    `socket=${url} connect: connected to 127.0.0.1 port ${new URL(url).port}`,
    `socket=${url} logon: logon accepted, session opened`,
    `socket=${url} version: server version 0,11,0,2`,
    `socket=${url} features: enabled: outlook pop3 webapp; disabled: imap mobile`,
    `socket=${url} features: feature pop3 is enabled`,
    `socket=${url} logoff: logged off`,
  ]);
  assert.equal(reply.log.at(-1)!.priority, "info");
});

Deno.test("the logon request: flags 1, capabilities 528, no szImpersonateUser, client app", async () => {
  const { requests } = await pamWith({}, [], "tcp");
  const logon = requests[0].body;
  assert.match(logon, /<ulFlags>1<\/ulFlags>/);
  assert.match(logon, /<ulCapabilities>528<\/ulCapabilities>/);
  assert.doesNotMatch(logon, /szImpersonateUser/);
  assert.match(logon, /<szVersion>11\.0\.2<\/szVersion>/);
  assert.match(logon, /<szClientApp>pam_mapi<\/szClientApp>/);
  assert.match(logon, /<szClientAppMisc>smtp<\/szClientAppMisc>/);
  assert.match(logon, new RegExp(`<szPassword>${PW}</szPassword>`));
});

Deno.test("b3: a logoff the server refuses is a warning line; the verdict stands", async () => {
  const server = await startFixtureServer({
    logoff: fixture11("b3_logoff_alice_again_dead_session.response.body"),
  });
  try {
    const r = await runPam({ user: "alice", password: PW, args: [`socket=${server.url}`] });
    assert.equal(r.reply.result, "PAM_SUCCESS");
    assert.deepEqual(r.reply.log.map((l) => l.priority), ["warning", "info"]);
    assert.equal(
      r.reply.log[0].message,
      `session not logged off; socket=${server.url} logoff: KCERR_END_OF_SESSION (0x80000010)`,
    );
  } finally {
    await server.close();
  }
});
