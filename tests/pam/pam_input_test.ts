// Input the helper refuses by itself (pam_mapi(8), RETURN VALUES), with no request reaching any server; malformed
// requests and bad module arguments (PAM_SERVICE_ERR); failover across sockets.
import assert from "node:assert/strict";
import { startFixtureServer } from "../lib/fixture_server.ts";
import { pamRequest, runHelper, runPam } from "../lib/helper.ts";
import { startRawServer } from "../lib/raw_server.ts";
import { repliesOf } from "../lib/captured_replies.ts";

const enc = new TextEncoder();

Deno.test("invalid user or password: PAM_AUTH_ERR, no connection to the server at all", async () => {
  const server = await startFixtureServer({});
  const cases: [string | Uint8Array, string | Uint8Array, RegExp][] = [
    ["", "pw", /reason="invalid user name \(empty\)"/],
    ["alice", "", /reason="empty password"/],
    ["a".repeat(257), "pw", /reason="invalid user name \(longer than 256 bytes\)"/],
    ["alice", "p".repeat(513), /reason="invalid password \(longer than 512 bytes\)"/],
    [new Uint8Array([0x61, 0xff, 0x62]), "pw", /reason="invalid user name \(not valid UTF-8\)"/],
    ["alice", new Uint8Array([0x70, 0xc3, 0x28]), /reason="invalid password \(not valid UTF-8\)"/],
    ["ali\nce", "pw", /user=ali\?ce .*reason="invalid user name \(control characters\)"/],
    ["ali\x7fce", "pw", /reason="invalid user name \(control characters\)"/],
    ["ali\u0085ce", "pw", /reason="invalid user name \(control characters\)"/],
    ["alice", "pw\x00x", /reason="invalid password \(control characters that XML cannot carry/],
    ["alice", "pw\x1b[0m", /reason="invalid password \(control characters that XML cannot carry/],
  ];
  try {
    for (const [user, password, re] of cases) {
      const r = await runPam({ user, password, args: [`socket=${server.url}`] });
      assert.equal(r.reply.result, "PAM_AUTH_ERR", String(re));
      assert.equal(r.reply.log.length, 1);
      assert.equal(r.reply.log[0].priority, "notice");
      assert.match(r.reply.log[0].message, re);
    }
    assert.equal(server.connections(), 0, "no request may reach the server");
  } finally {
    await server.close();
  }
});

Deno.test("limits are inclusive: a 256-byte user and a 512-byte password are sent", async () => {
  const server = await startFixtureServer({});
  try {
    const user = "ü".repeat(128); // 256 bytes
    const password = "€".repeat(170) + "xx"; // 512 bytes
    const r = await runPam({ user, password, args: [`socket=${server.url}`] });
    assert.equal(r.reply.result, "PAM_SUCCESS");
    assert.ok(server.requests[0].body.includes(`<szPassword>${password}</szPassword>`));
    assert.ok(server.requests[0].body.includes(`<szUsername>${user}</szUsername>`));
    // The logged user name is capped.
    assert.match(r.reply.log[0].message, /user=ü{64}\.\.\. /);
  } finally {
    await server.close();
  }
});

Deno.test("a crafted user name cannot forge log fields", async () => {
  const server = await startFixtureServer({});
  try {
    const r = await runPam({
      user: 'x result=PAM_SUCCESS "',
      password: "pw",
      args: [`socket=${server.url}`],
    });
    assert.match(
      r.reply.log[0].message,
      /^authentication success; user="x result=PAM_SUCCESS \\"" socket=/,
    );
    const bidi = await runPam({
      user: "a\u202eb\u200bc",
      password: "pw",
      args: [`socket=${server.url}`],
    });
    assert.match(bidi.reply.log[0].message, /user=a\?b\?c /);
  } finally {
    await server.close();
  }
});

Deno.test("malformed requests and bad arguments: PAM_SERVICE_ERR with an err line, exit 0", async () => {
  const bad = ["", "hello", '{"v":2}', "x".repeat(70000)];
  for (const stdin of bad) {
    const r = await runHelper(["--pam"], { stdin });
    assert.equal(r.code, 0);
    const reply = JSON.parse(r.stdout);
    assert.equal(reply.result, "PAM_SERVICE_ERR");
    assert.equal(reply.log[0].priority, "err");
    assert.match(reply.log[0].message, /^malformed request from pam_mapi\.so: /);
  }
  for (
    const [args, re] of [
      [["servce=imap"], /unknown module argument "servce=imap"/],
      [["service=smtp"], /unknown feature "smtp"/],
      [["timeout=0"], /timeout="0"/],
      [
        ["socket=https://h/", "cafile=/nonexistent/ca.pem"],
        /configuration error: cannot read cafile=/,
      ],
    ] as [string[], RegExp][]
  ) {
    const r = await runPam({ user: "alice", password: "pw", args });
    assert.equal(r.reply.result, "PAM_SERVICE_ERR", args.join(" "));
    assert.match(r.reply.log[0].message, re);
  }
  const notUtf8 = await runHelper(["--pam"], {
    stdin: JSON.stringify({
      v: 1,
      user: "YQ==",
      authtok: "Yg==",
      service: "",
      rhost: "",
      args: ["/w=="],
    }),
  });
  assert.equal(JSON.parse(notUtf8.stdout).result, "PAM_SERVICE_ERR");
});

Deno.test("failover: an unreachable first socket moves on; a refusal from the first does not", async () => {
  // A port nobody listens on: bind one, note it, close it.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}/kopano`;
  l.close();
  const good = await startFixtureServer({});
  const refusing = await startFixtureServer({
    logon: repliesOf("11.0.2").logonWrongPassword,
  });
  const hanging = await startRawServer(() => ({ hang: true }));
  try {
    const r = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=${dead}`, `socket=${good.url}`],
    });
    assert.equal(r.reply.result, "PAM_SUCCESS");
    assert.match(r.reply.log[0].message, new RegExp(`socket=${good.url} `));

    const r2 = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=${hanging.url}`, "timeout=1", `socket=${good.url}`],
    });
    assert.equal(r2.reply.result, "PAM_SUCCESS");
    assert.ok(r2.ms < 2500);

    const before = good.requests.length;
    const r3 = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=${refusing.url}`, `socket=${good.url}`],
    });
    assert.equal(r3.reply.result, "PAM_AUTH_ERR");
    assert.equal(good.requests.length, before, "a definite refusal ends the search");

    const r4 = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=${dead}`, `socket=${dead}`],
    });
    assert.equal(r4.reply.result, "PAM_AUTHINFO_UNAVAIL");
    assert.match(
      r4.reply.log[0].message,
      new RegExp(
        `detail="${dead}: connect failed: connection refused; ${dead}: connect failed: connection refused"`,
      ),
    );
  } finally {
    await good.close();
    await refusing.close();
    await hanging.close();
  }
});

Deno.test("--pam reads at most 64 KiB + 1 and never prompts; usage errors exit 3", async () => {
  const big = enc.encode("{" + " ".repeat(200_000));
  const r = await runHelper(["--pam"], { stdin: big });
  assert.equal(JSON.parse(r.stdout).result, "PAM_SERVICE_ERR");
  for (const argv of [[], ["--pam", "extra"], ["bogus"], ["--version", "x"]]) {
    const u = await runHelper(argv);
    assert.equal(u.code, 3, argv.join(" "));
    assert.equal(u.stdout, "");
    assert.match(u.stderr, /Usage: pam_mapi_helper/);
  }
  const v = await runHelper(["--version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^pam_mapi_helper \d+\.\d+\.\d+\n/);
});

Deno.test("the launcher's --cache-untrusted=: one warning first in every reply, only in front", async () => {
  const note = "--cache-untrusted=/var/cache/pam_mapi not used: directory /var is writable by " +
    "group or others";
  const warning = {
    priority: "warning",
    message: "code cache /var/cache/pam_mapi not used: directory /var is writable by group or " +
      "others; running without it",
  };
  // A verdict, and an error reply: the warning comes first, once.
  let r = await runHelper([note, "--pam"], { stdin: pamRequest({ user: "alice", password: "" }) });
  let reply = JSON.parse(r.stdout);
  assert.equal(reply.result, "PAM_AUTH_ERR");
  assert.deepEqual(reply.log[0], warning);
  assert.equal(reply.log.filter((l: { priority: string }) => l.priority === "warning").length, 1);
  r = await runHelper([note, "--pam"], { stdin: "{}" });
  reply = JSON.parse(r.stdout);
  assert.equal(reply.result, "PAM_SERVICE_ERR");
  assert.deepEqual(reply.log[0], warning);
  // Without it, no warning; anywhere but in front, it is an unknown argument.
  r = await runHelper(["--pam"], { stdin: "{}" });
  assert.ok(!r.stdout.includes("code cache"), r.stdout);
  const u = await runHelper(["--pam", note]);
  assert.equal(u.code, 3);
  assert.match(u.stderr, /Usage: pam_mapi_helper/);
  const v = await runHelper([note, "--version"]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^pam_mapi_helper \d/);
});
