// `--pam` end to end (the helper as a real process) against genuine kopano-server replies of both
// generations in tests/fixtures/ (Kopano 11.0.2 and 8.7.85): the same situation gives the same PAM
// result and log line from either, and every session is logged off. Kopano 8.7 answers a logon
// without the UNICODE capability with an HTTP 500 fault where 11.0.2 answers er BAD_CHARWIDTH:
// both are "no answer", never a success.
import assert from "node:assert/strict";
import { type FixtureReplies, startFixtureServer } from "../lib/fixture_server.ts";
import { everyGeneration, repliesOf } from "../lib/captured_replies.ts";
import { capturedReply } from "../lib/captures.ts";
import { Reply, runPam } from "../lib/helper.ts";

const PW = "Fixture-Pw-7b1e";

function only(reply: Reply) {
  assert.equal(reply.log.length, 1, JSON.stringify(reply.log));
  assert.ok(!JSON.stringify(reply).includes(PW));
  return reply.log[0];
}

/** One login as alice through --pam against fixture servers, tried in order. */
async function pamWithServers(
  servers: FixtureReplies[],
  extraArgs: string[] = [],
  transport: "tcp" | "unix" = "tcp",
) {
  const running = [];
  try {
    for (const replies of servers) running.push(await startFixtureServer(replies, { transport }));
    const r = await runPam({
      user: "alice",
      password: PW,
      rhost: "192.0.2.7",
      args: [...running.map((s) => `socket=${s.url}`), "timeout=5", ...extraArgs],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    for (const s of running) assert.equal(s.openSessions(), 0, "every session logged off");
    return {
      reply: r.reply,
      calls: running.map((s) => s.calls()),
      urls: running.map((s) => s.url),
      requests: running[0].requests,
    };
  } finally {
    for (const s of running) await s.close();
  }
}

async function pamWith(
  replies: FixtureReplies,
  extraArgs: string[] = [],
  transport: "tcp" | "unix" = "tcp",
) {
  const r = await pamWithServers([replies], extraArgs, transport);
  return { ...r, calls: r.calls[0], url: r.urls[0] };
}

for (const g of everyGeneration()) {
  const { generation } = g;
  const named = (what: string) => `Kopano ${generation}: ${what}`;

  Deno.test(named("accepted logon -> PAM_SUCCESS, one info line, then logoff"), async () => {
    const { reply, calls, url } = await pamWith({ generation });
    assert.equal(reply.result, "PAM_SUCCESS");
    assert.deepEqual(only(reply), {
      priority: "info",
      message:
        `authentication success; user=alice rhost=192.0.2.7 socket=${url} result=PAM_SUCCESS reason="logon accepted"`,
    });
    assert.deepEqual(calls, ["logon", "logoff"]);
  });

  Deno.test(
    named("wrong password, unknown user -> PAM_AUTH_ERR at notice; quiet drops it"),
    async () => {
      for (const logon of [g.logonWrongPassword, g.logonUnknownUser]) {
        const { reply, calls, url } = await pamWith({ generation, logon });
        assert.equal(reply.result, "PAM_AUTH_ERR");
        assert.deepEqual(only(reply), {
          priority: "notice",
          message:
            `authentication failure; user=alice rhost=192.0.2.7 socket=${url} result=PAM_AUTH_ERR reason="logon refused"`,
        });
        assert.deepEqual(calls, ["logon"]); // no session, nothing to log off
        const quiet = await pamWith({ generation, logon }, ["quiet"]);
        assert.equal(quiet.reply.result, "PAM_AUTH_ERR");
        assert.deepEqual(quiet.reply.log, []);
      }
    },
  );

  Deno.test(named("a refusal ends the search: the next server is not asked"), async () => {
    const { reply, calls } = await pamWithServers([
      { generation, logon: g.logonWrongPassword },
      { generation },
    ]);
    assert.equal(reply.result, "PAM_AUTH_ERR");
    assert.deepEqual(calls, [["logon"], []]);
  });

  Deno.test(
    named(
      "BAD_CHARWIDTH is no answer -> PAM_AUTHINFO_UNAVAIL at err, named; the next server is asked",
    ),
    async () => {
      const { reply, calls, url } = await pamWith({ generation, logon: g.logonNoUnicode }, [
        "quiet",
      ]);
      assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL");
      assert.deepEqual(calls, ["logon"]);
      const line = only(reply);
      assert.equal(line.priority, "err");
      // 11.0.2: HTTP 200 and er KCERR_BAD_CHARWIDTH; 8.7: an HTTP 500 fault with the MAPI code.
      const detail = generation === "8.7.85"
        ? "HTTP status 500, SOAP fault SOAP-ENV:Client: Error -2147221245 = MAPI_E_BAD_CHARWIDTH (0x80040103)"
        : "unexpected answer KCERR_BAD_CHARWIDTH (0x80000031)";
      const tail =
        `result=PAM_AUTHINFO_UNAVAIL reason="server unavailable" detail="${url}: logon: ${detail}"`;
      assert.ok(line.message.endsWith(tail), line.message);
      const next = await pamWithServers([{ generation, logon: g.logonNoUnicode }, { generation }]);
      assert.equal(next.reply.result, "PAM_SUCCESS");
      assert.deepEqual(next.calls, [["logon"], ["logon", "logoff"]]);
      assert.match(only(next.reply).message, new RegExp(`socket=${next.urls[1]} `));
    },
  );

  Deno.test(
    named("a SOAP fault (unknown method, HTTP 500) is no answer; the next server is asked"),
    async () => {
      const { reply, url } = await pamWith({ generation, logon: g.unknownMethod });
      assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL");
      const fault =
        "Method 'ns:logonBogus' not implemented: method name or namespace not recognized";
      const tail = `detail="${url}: logon: HTTP status 500, SOAP fault SOAP-ENV:Client: ${fault}"`;
      assert.ok(only(reply).message.endsWith(tail), only(reply).message);
      // The same fault body with HTTP 200 is no answer either.
      const ok200 = await pamWith({ generation, logon: g.unknownMethod.body });
      assert.equal(ok200.reply.result, "PAM_AUTHINFO_UNAVAIL");
      const next = await pamWithServers([{ generation, logon: g.unknownMethod }, { generation }]);
      assert.equal(next.reply.result, "PAM_SUCCESS");
      assert.deepEqual(next.calls, [["logon"], ["logon", "logoff"]]);
    },
  );

  Deno.test(
    named("ignore_authinfo_unavail turns no answer into PAM_IGNORE, nothing else"),
    async () => {
      for (const logon of [g.unknownMethod, g.logonNoUnicode]) {
        const { reply } = await pamWith({ generation, logon }, ["ignore_authinfo_unavail"]);
        assert.equal(reply.result, "PAM_IGNORE");
        assert.match(only(reply).message, /result=PAM_IGNORE reason="server unavailable"/);
      }
      const refused = await pamWith({ generation, logon: g.logonWrongPassword }, [
        "ignore_authinfo_unavail",
      ]);
      assert.equal(refused.reply.result, "PAM_AUTH_ERR");
    },
  );

  Deno.test(
    named("alice (imap, mobile disabled): service= OR semantics, case-insensitive"),
    async () => {
      const cases: [string, string][] = [
        ["service=pop3", "PAM_SUCCESS"],
        ["service=imap", "PAM_AUTH_ERR"],
        ["service=imap|pop3", "PAM_SUCCESS"],
        ["service=IMAP|Mobile", "PAM_AUTH_ERR"],
        ["service=WebApp", "PAM_SUCCESS"],
      ];
      for (const [arg, result] of cases) {
        const { reply, calls } = await pamWith({ generation, getUser: g.getUserAlice }, [arg]);
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
    },
  );

  Deno.test(named("bob (pop3, mobile disabled, imap enabled for him)"), async () => {
    const bob = { generation, getUser: g.getUserBob };
    assert.equal((await pamWith(bob, ["service=imap"])).reply.result, "PAM_SUCCESS");
    assert.equal((await pamWith(bob, ["service=pop3"])).reply.result, "PAM_AUTH_ERR");
    assert.equal((await pamWith(bob, ["service=pop3|mobile"])).reply.result, "PAM_AUTH_ERR");
  });

  Deno.test(
    named("getUser END_OF_SESSION fails closed, and the session is still logged off"),
    async () => {
      const { reply, calls } = await pamWith({ generation, getUser: g.getUserDeadSession }, [
        "service=pop3",
      ]);
      assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL");
      assert.match(only(reply).message, /getUser: KCERR_END_OF_SESSION/);
      assert.deepEqual(calls, ["logon", "getUser", "logoff"]);
    },
  );

  Deno.test(
    named("file://: a server reporting its version is trusted; one without trips the guard"),
    async () => {
      const ok = await pamWith({ generation, logon: g.unixLogonAccepted }, [], "unix");
      assert.equal(ok.reply.result, "PAM_SUCCESS");
      const noVersion = g.logonAccepted.body.replace(
        `<lpszVersion>${g.serverVersion}</lpszVersion>`,
        "",
      );
      assert.notEqual(noVersion, g.logonAccepted.body);
      for (
        const logon of [
          noVersion,
          noVersion.replace("<er>0</er>", "<er>0</er><lpszVersion>0,7,1,0,1</lpszVersion>"),
        ]
      ) {
        const { reply, calls } = await pamWith({ generation, logon }, [], "unix");
        assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL");
        const line = only(reply);
        assert.equal(line.priority, "err");
        assert.match(line.message, /reason="server too old to verify the password over file:\/\/"/);
        assert.deepEqual(calls, ["logon", "logoff"]); // logged off at once
      }
      // The same version-less reply over TCP is fine: peer credentials do not exist there.
      assert.equal((await pamWith({ generation, logon: noVersion })).reply.result, "PAM_SUCCESS");
    },
  );

  Deno.test(
    named("debug adds one line per step, never the password, the outcome last"),
    async () => {
      const { reply, url } = await pamWith({ generation }, ["debug", "service=pop3"]);
      assert.equal(reply.result, "PAM_SUCCESS");
      assert.ok(!JSON.stringify(reply).includes(PW));
      const debug = reply.log.filter((l) => l.priority === "debug").map((l) => l.message);
      assert.deepEqual(debug, [
        `socket=${url} connect: connected to 127.0.0.1 port ${new URL(url).port}`,
        `socket=${url} logon: logon accepted, session opened`,
        `socket=${url} version: server version ${g.serverVersion}`,
        `socket=${url} features: enabled: outlook pop3 webapp; disabled: imap mobile`,
        `socket=${url} features: feature pop3 is enabled`,
        `socket=${url} logoff: logged off`,
      ]);
      assert.equal(reply.log.at(-1)!.priority, "info");
    },
  );
}

Deno.test("Kopano 11.0.2 d3/d5: faults for a body that is not XML and a bad session id -> PAM_AUTHINFO_UNAVAIL", async () => {
  for (const f of ["d3_body_not_xml", "d5_getUser_sessionid_not_a_number"]) {
    const logon = capturedReply("11.0.2", f);
    assert.equal(logon.status, "500 Internal Server Error");
    const { reply } = await pamWith({ logon });
    assert.equal(reply.result, "PAM_AUTHINFO_UNAVAIL", f);
    assert.match(only(reply).message, /logon: HTTP status 500, SOAP fault SOAP-ENV:Client: /);
  }
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

Deno.test("Kopano 11.0.2 b3: a logoff the server refuses is a warning line; the verdict stands", async () => {
  const server = await startFixtureServer({
    logoff: capturedReply("11.0.2", "b3_logoff_alice_again_dead_session"),
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

// Both generations' readers agree on what they recorded: a guard against mixing the roles up.
Deno.test("the two generations' captured replies are the same situations", () => {
  const [a, b] = [repliesOf("11.0.2"), repliesOf("8.7.85")];
  assert.equal(a.logonWrongPassword.body, a.logonUnknownUser.body);
  assert.equal(b.logonWrongPassword.body, b.logonUnknownUser.body);
  assert.equal(b.logonNoUnicode.status, "500 Internal Server Error");
  assert.equal(a.logonNoUnicode.status, "200 OK");
  for (const g of [a, b]) {
    assert.match(g.logonAccepted.body, /<er>0<\/er><ulSessionId>[1-9]\d*</);
    assert.match(g.logonAccepted.body, new RegExp(`<lpszVersion>${g.serverVersion}<`));
    assert.match(g.getUserAlice.body, /<lpszUsername>alice</);
    assert.match(g.getUserBob.body, /<lpszUsername>bob</);
  }
});
