// `pam_mapi_helper check`: the same code path as the module, readable output, --json, exit codes.
import assert from "node:assert/strict";
import { startFixtureServer } from "../lib/fixture_server.ts";
import { everyGeneration, repliesOf } from "../lib/captured_replies.ts";
import { DENO_FLAGS, MAIN, runHelper } from "../lib/helper.ts";

const PW = "Check-Secret-9f3";

for (const { generation, serverVersion } of everyGeneration()) {
  Deno.test(`check: success prints every step and exits 0 (Kopano ${generation}'s replies)`, async () => {
    const server = await startFixtureServer({ generation });
    try {
      const r = await runHelper(["check", "alice", `socket=${server.url}`, "service=imap|pop3"], {
        stdin: `${PW}\nignored\n`,
      });
      assert.equal(r.code, 0, r.stderr);
      const port = new URL(server.url).port;
      assert.equal(
        r.stdout,
        [
          'checking user "alice"',
          `  sockets: ${server.url}`,
          "  timeout: 10 s per server",
          "  features required: imap or pop3",
          `socket ${server.url}`,
          `  ok   connect  connected to 127.0.0.1 port ${port}`,
          "  ok   logon    logon accepted, session opened",
          `  ok   version  server version ${serverVersion}`,
          "  ok   features enabled: outlook pop3 webapp; disabled: imap mobile",
          "  ok   features feature pop3 is enabled",
          "  ok   logoff   logged off",
          "decision: logon accepted (feature pop3)",
          `answered by: ${server.url}`,
          "result: PAM_SUCCESS (exit 0)",
          `syslog info: authentication success; user=alice socket=${server.url} result=PAM_SUCCESS reason="logon accepted" feature=pop3`,
          "",
        ].join("\n"),
      );
      // The first line of stdin is the password, byte for byte.
      assert.ok(server.requests[0].body.includes(`<szPassword>${PW}</szPassword>`));
      assert.equal(server.openSessions(), 0);
    } finally {
      await server.close();
    }
  });
}

Deno.test("check: exit 1 for a refused logon and for a disabled feature", async () => {
  const refusing = await startFixtureServer({
    logon: repliesOf("11.0.2").logonWrongPassword,
  });
  const alice = await startFixtureServer({});
  try {
    const r = await runHelper(["check", "alice", `socket=${refusing.url}`], { stdin: PW });
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      / FAIL logon {4}logon refused by the server \(KCERR_LOGON_FAILED \(0x80000009\)\)\n/,
    );
    assert.match(r.stdout, /result: PAM_AUTH_ERR \(exit 1\)/);
    const f = await runHelper(["check", "alice", `socket=${alice.url}`, "service=imap"], {
      stdin: PW,
    });
    assert.equal(f.code, 1);
    assert.match(f.stdout, / FAIL features none of imap is enabled\n/);
    assert.match(f.stdout, /decision: feature not enabled\n/);
  } finally {
    await refusing.close();
    await alice.close();
  }
});

Deno.test("check: exit 2 when no server answers, 3 for bad arguments or usage", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}/`;
  l.close();
  const r = await runHelper(["check", "alice", `socket=${dead}`], { stdin: PW });
  assert.equal(r.code, 2);
  assert.match(r.stdout, / FAIL connect {2}connect failed: connection refused\n/);
  assert.match(r.stdout, /result: PAM_AUTHINFO_UNAVAIL \(exit 2\)/);
  const bad = await runHelper(["check", "alice", "servce=imap"], { stdin: PW });
  assert.equal(bad.code, 3);
  assert.match(bad.stderr, /invalid module arguments: unknown module argument "servce=imap"/);
  const ignore = await runHelper(["check", "alice", `socket=${dead}`, "ignore_authinfo_unavail"], {
    stdin: PW,
  });
  assert.equal(ignore.code, 3);
  assert.match(ignore.stdout, /result: PAM_IGNORE \(exit 3\)/);
  for (const argv of [["check"], ["check", "--bogus", "alice"]]) {
    const u = await runHelper(argv, { stdin: PW });
    assert.equal(u.code, 3);
    assert.match(u.stderr, /Usage: pam_mapi_helper check/);
  }
});

Deno.test("check --json: one object with steps, decision, result, exit and log", async () => {
  const server = await startFixtureServer({
    getUser: repliesOf("11.0.2").getUserBob,
  });
  try {
    const r = await runHelper([
      "check",
      "--json",
      "bob",
      `socket=${server.url}`,
      "service=pop3",
      "quiet",
    ], {
      stdin: PW + "\r\n",
    });
    assert.equal(r.code, 1);
    const j = JSON.parse(r.stdout);
    assert.equal(r.stdout.trim().split("\n").length, 1);
    assert.equal(j.user, "bob");
    assert.deepEqual(j.args, [`socket=${server.url}`, "service=pop3", "quiet"]);
    assert.deepEqual(j.services, ["pop3"]);
    assert.equal(j.result, "PAM_AUTH_ERR");
    assert.equal(j.exit, 1);
    assert.equal(j.decision.reason, "feature not enabled");
    assert.deepEqual(j.steps.map((s: { step: string }) => s.step), [
      "connect",
      "logon",
      "version",
      "features",
      "features",
      "logoff",
    ]);
    assert.equal(j.log.length, 1);
    // The CRLF line ending is not part of the password.
    assert.ok(server.requests[0].body.includes(`<szPassword>${PW}</szPassword>`));
    const bad = await runHelper(["check", "--json", "bob", "timeout=5s"], { stdin: PW });
    assert.equal(bad.code, 3);
    assert.equal(JSON.parse(bad.stdout).result, "PAM_SERVICE_ERR");
  } finally {
    await server.close();
  }
});

Deno.test("check --help documents every module argument and the exit codes", async () => {
  const r = await runHelper(["--help"]);
  assert.equal(r.code, 0);
  for (
    const word of [
      "socket=URL",
      "service=NAME",
      "timeout=SECONDS",
      "cafile=PATH",
      "quiet",
      "debug",
      "ignore_authinfo_unavail",
      "try_first_pass",
      "use_first_pass",
      "helper=PATH",
      "--json",
      "--pam",
      "0 PAM_SUCCESS",
      "1 PAM_AUTH_ERR",
      "2 PAM_AUTHINFO_UNAVAIL",
      "3 anything else",
      "http://localhost:236/kopano",
    ]
  ) {
    assert.ok(r.stdout.includes(word), word);
  }
});

const haveScript = await Deno.stat("/usr/bin/script").then(() => true, () => false);

Deno.test({
  name: haveScript
    ? "check on a terminal: no echo, backspace edits, the password reaches the server intact"
    : "check on a terminal: SKIPPED, needs script(1) (util-linux)",
  ignore: !haveScript,
  fn: async () => {
    const server = await startFixtureServer({});
    try {
      // script(1) gives the helper a pseudo-terminal; the typed keys arrive after the prompt.
      const cmd = [Deno.execPath(), ...DENO_FLAGS, MAIN, "check", "alice", `socket=${server.url}`]
        .join(" ");
      const child = new Deno.Command("script", {
        args: ["-qec", cmd, "/dev/null"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await new Promise((r) => setTimeout(r, 1500));
      await w.write(new TextEncoder().encode(`${PW}X\x7f\r`));
      const out = await child.output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, text);
      assert.match(text, /Password for "alice": /);
      assert.ok(!text.includes(PW), "typed password must not be echoed");
      assert.match(text, /result: PAM_SUCCESS \(exit 0\)/);
      assert.ok(server.requests[0].body.includes(`<szPassword>${PW}</szPassword>`));
      await w.close().catch(() => {});
    } finally {
      await server.close();
    }
  },
});
