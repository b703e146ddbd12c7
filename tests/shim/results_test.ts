// Results, logging, arguments, token handling, account and setcred, through the real libpam
// (pam_start_confdir driver) with the fast fake helper; syslog captured from a private /dev/log.
// Every test runs against the plain build and the ASan/UBSan build, each with the helper started per
// login (fork) and through the resident helper's socket (daemon, a fake daemon running the fake
// helper per connection).
import assert from "node:assert/strict";
import {
  build,
  helperDir,
  helperModes,
  helperPids,
  label,
  line,
  LOG_DEBUG,
  LOG_ERR,
  LOG_NOTICE,
  type Mode,
  modeArgs,
  MODES,
  pamConf,
  runDriver,
  type Variant,
  VARIANTS,
} from "./lib.ts";

for (const v of VARIANTS) {
  for (const mode of MODES) registerTests(v, mode);
}

function registerTests(v: Variant, mode: Mode) {
  const name = label(v, mode);
  const setup = async (authArgs: string[], accountArgs: string[] = []) => {
    await build();
    const { dir, helper } = await helperDir();
    // A test about daemon= itself brings its own.
    const [modeArg] = authArgs.some((a) => a.startsWith("daemon="))
      ? [""]
      : await modeArgs(mode, helper);
    const auth = [`helper=${helper}`, ...(modeArg ? [modeArg] : []), ...authArgs];
    const conf = await pamConf(dir, {
      mapi: [line(v, "auth", auth), line(v, "account", accountArgs)],
      // account: IGNORE lets pam_permit decide, any failure of pam_mapi ends in failure.
      mapi_permit: [
        line(v, "auth", auth),
        line(v, "account", accountArgs, "[success=ok ignore=ignore default=die]"),
        "account required pam_permit.so",
      ],
    });
    return { dir, helper, conf, modeArg };
  };

  Deno.test(`${name}: right password -> PAM_SUCCESS; account and setcred follow`, async () => {
    const { dir, conf } = await setup([]);
    const r = await runDriver(v, [
      "--password",
      "pw-alice",
      "--ops",
      "auth,acct,setcred",
      conf,
      "mapi",
    ]);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    assert.equal(r.kv.acct, "PAM_SUCCESS");
    assert.equal(r.kv.setcred, "PAM_SUCCESS");
    assert.equal(r.kv.prompts, "1");
    assert.match(r.stderr, /conv: prompt "Password: "/);
    // Without debug the helper's records are all there is.
    assert.deepEqual(r.logs, [{ priority: LOG_NOTICE, message: "fake: accepted user=alice" }]);
    assert.ok(r.syslog.every((s) => s.facility === 10), "facility authpriv");
    assert.deepEqual(await helperModes(dir), [mode], "served the way the mode says");
  });

  Deno.test(`${name}: wrong password -> PAM_AUTH_ERR; account ignores, setcred replays`, async () => {
    const { conf } = await setup(["debug"], ["debug"]);
    const r = await runDriver(v, [
      "--password",
      "nope",
      "--ops",
      "auth,acct,setcred",
      conf,
      "mapi",
    ]);
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    // pam_mapi alone on the account stack answered PAM_IGNORE, which libpam turns into a denial.
    assert.equal(r.kv.acct, "PAM_PERM_DENIED");
    assert.equal(r.kv.setcred, "PAM_AUTH_ERR");
    assert.ok(
      r.logs.some((l) => l.priority === LOG_NOTICE && l.message === "fake: refused user=alice"),
    );
    assert.ok(r.logs.some((l) =>
      l.priority === LOG_DEBUG &&
      l.message ===
        "debug: account: user=alice was not authenticated by this module in this PAM handle; result=PAM_IGNORE"
    ));
    assert.ok(r.logs.some((l) => l.message === "debug: setcred: replaying result=PAM_AUTH_ERR"));
    const p = await runDriver(v, ["--password", "nope", "--ops", "auth,acct", conf, "mapi_permit"]);
    assert.equal(p.kv.acct, "PAM_SUCCESS", "IGNORE, not a failure: pam_permit decided");
  });

  Deno.test(`${name}: account is PAM_SUCCESS only for the user this module authenticated`, async () => {
    const { conf } = await setup([], ["debug"]);
    // No auth at all in this handle.
    let r = await runDriver(v, ["--ops", "acct", conf, "mapi_permit"]);
    assert.equal(r.kv.acct, "PAM_SUCCESS"); // via pam_permit: pam_mapi ignored
    r = await runDriver(v, ["--ops", "acct", conf, "mapi"]);
    assert.equal(r.kv.acct, "PAM_PERM_DENIED");
    assert.ok(
      r.logs.some((l) => /user=alice was not authenticated .*result=PAM_IGNORE$/.test(l.message)),
    );
    // Authenticated alice, then the application switched the handle to bob.
    r = await runDriver(v, [
      "--password",
      "pw-alice",
      "--ops",
      "auth,user=bob,acct,user=alice,acct",
      conf,
      "mapi",
    ]);
    assert.match(
      r.stdout,
      /auth=PAM_SUCCESS\nset_user=PAM_SUCCESS\nacct=PAM_PERM_DENIED\nset_user=PAM_SUCCESS\nacct=PAM_SUCCESS\n/,
    );
    assert.ok(r.logs.some((l) => /user=bob was not authenticated/.test(l.message)));
    assert.ok(
      r.logs.some((l) =>
        l.message ===
          "debug: account: user=alice was authenticated by this module; result=PAM_SUCCESS"
      ),
    );
    // The last auth decides: success, then a failure in the same handle -> no account success.
    r = await runDriver(v, [
      "--password",
      "pw-alice",
      "--ops",
      "auth,user=mallory,auth,user=alice,acct",
      conf,
      "mapi",
    ]);
    assert.match(r.stdout, /auth=PAM_SUCCESS\n.*\nauth=PAM_AUTH_ERR\n.*\nacct=PAM_PERM_DENIED\n/);
  });

  Deno.test(`${name}: setcred without auth is PAM_IGNORE, and replays each auth result`, async () => {
    const { conf } = await setup(["debug"]);
    let r = await runDriver(v, ["--ops", "setcred", conf, "mapi"]);
    assert.equal(r.kv.setcred, "PAM_PERM_DENIED"); // sole module ignored
    assert.ok(
      r.logs.some((l) => l.message === "debug: setcred: auth did not run; result=PAM_IGNORE"),
    );
    for (
      const [user, result] of [["unavail", "PAM_AUTHINFO_UNAVAIL"], ["svcerr", "PAM_SERVICE_ERR"]]
    ) {
      r = await runDriver(v, [
        "--user",
        user,
        "--password",
        "x",
        "--ops",
        "auth,setcred",
        conf,
        "mapi",
      ]);
      assert.equal(r.kv.auth, result);
      assert.equal(r.kv.setcred, result);
    }
  });

  Deno.test(`${name}: every whitelisted result is relayed`, async () => {
    const { conf } = await setup([]);
    const expect: Array<[string, string, number, string]> = [
      ["unavail", "PAM_AUTHINFO_UNAVAIL", LOG_ERR, "fake: server unavailable"],
      ["ignore", "PAM_IGNORE", LOG_NOTICE, "fake: ignored"],
      ["svcerr", "PAM_SERVICE_ERR", LOG_ERR, "fake: bad arguments"],
    ];
    for (const [user, result, priority, message] of expect) {
      const r = await runDriver(v, ["--user", user, "--password", "x", conf, "mapi"]);
      // A sole auth module answering PAM_IGNORE makes libpam fail the stack.
      assert.equal(r.kv.auth, result === "PAM_IGNORE" ? "PAM_PERM_DENIED" : result, user);
      assert.deepEqual(r.logs, [{ priority, message }], user);
    }
  });

  Deno.test(`${name}: log records keep their priority; control characters become ?`, async () => {
    const { conf } = await setup([]);
    let r = await runDriver(v, ["--user", "loglines", "--password", "x", conf, "mapi"]);
    assert.deepEqual(r.logs, [
      { priority: 3, message: "line err" },
      { priority: 4, message: "line warning" },
      { priority: 5, message: "line notice" },
      { priority: 6, message: "line info" },
      { priority: 7, message: "line debug" },
    ]);
    r = await runDriver(v, ["--user", "ctrl", "--password", "x", conf, "mapi"]);
    // "a\u001b[31mb\tc\u0000d\u007fe\nf": ESC, TAB, NUL, DEL and LF neutralised, nothing cut off.
    assert.deepEqual(r.logs, [{ priority: LOG_NOTICE, message: "a?[31mb?c?d?e?f" }]);
  });

  Deno.test(`${name}: helper log records lose bidi and invisible characters too, one ? each`, async () => {
    // The shim's second line of defence behind the helper's own (src/common/log_text.ts): the same
    // characters its user= and rhost= fields lose, escaped or raw, and visible text kept.
    const { conf } = await setup([]);
    const r = await runDriver(v, ["--user", "bidi", "--password", "x", conf, "mapi"]);
    assert.deepEqual(r.logs, [{
      priority: LOG_NOTICE,
      message: "a?b?c?d?e?f?g?h?i?j?k?l?m jürgen € 😀",
    }]);
  });

  Deno.test(`${name}: debug adds the shim's step lines, never the password`, async () => {
    const { conf, helper, modeArg } = await setup(["debug"]);
    const pw = "pw-alice";
    const r = await runDriver(v, ["--password", pw, "--rhost", "192.0.2.7", conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    const msgs = r.logs.map((l) => l.message);
    assert.equal(msgs[0], "debug: asking for the password");
    const socket = modeArg.slice("daemon=".length);
    assert.equal(
      msgs[1],
      mode === "fork"
        ? `debug: starting helper ${helper} for user=alice rhost=192.0.2.7 (deadline 12 s)`
        : `debug: asking the resident helper ${socket} for user=alice rhost=192.0.2.7 (deadline 12 s)`,
    );
    assert.equal(msgs[2], "fake: accepted user=alice");
    assert.match(
      msgs[3],
      mode === "fork"
        ? /^debug: helper pid \d+ exited with status 0 after \d+ ms; result=PAM_SUCCESS$/
        : new RegExp(
          `^debug: resident helper ${socket} \\(pid \\d+\\) answered after \\d+ ms; result=PAM_SUCCESS$`,
        ),
    );
    assert.equal(msgs.length, 4);
    assert.ok(r.logs.every((l, i) => i === 2 || l.priority === LOG_DEBUG));
    for (const s of r.syslog) assert.ok(!s.text.includes(pw), `password in: ${s.text}`);
  });

  Deno.test(`${name}: unknown or bad arguments fail closed before any prompt`, async () => {
    const bad: Array<[string[], string]> = [
      [["nullok"], 'bad module argument "nullok": unknown argument; result=PAM_SERVICE_ERR'],
      [
        ["servce=imap"],
        'bad module argument "servce=imap": unknown argument; result=PAM_SERVICE_ERR',
      ],
      [
        ["quiet=yes"],
        'bad module argument "quiet=yes": quiet takes no value; result=PAM_SERVICE_ERR',
      ],
      [
        ["timeout=05"],
        'bad module argument "timeout=05": timeout must be a whole number of seconds from 1 to 300, without leading zeros; result=PAM_SERVICE_ERR',
      ],
      [
        ["try_first_pass", "use_first_pass"],
        "conflicting module arguments: try_first_pass and use_first_pass; result=PAM_SERVICE_ERR",
      ],
      [
        ["helper2=/x"],
        'bad module argument "helper2=/x": unknown argument; result=PAM_SERVICE_ERR',
      ],
      [
        ["daemon=run/pam_mapi/helper.sock"],
        'bad module argument "daemon=run/pam_mapi/helper.sock": daemon must be an absolute path or off; result=PAM_SERVICE_ERR',
      ],
      [
        ["daemon=/run/a.sock", "daemon=off"],
        'bad module argument "daemon=off": daemon= given twice; result=PAM_SERVICE_ERR',
      ],
    ];
    for (const [args, message] of bad) {
      const { dir, conf } = await setup(args, args);
      const r = await runDriver(v, ["--password", "pw-alice", "--ops", "auth,acct", conf, "mapi"]);
      assert.equal(r.kv.auth, "PAM_SERVICE_ERR", args.join(" "));
      assert.equal(r.kv.acct, "PAM_SERVICE_ERR", args.join(" "));
      assert.equal(r.kv.prompts, "0", "no password asked for");
      assert.deepEqual(await helperPids(dir), [], "helper not started");
      assert.deepEqual(r.logs, [{ priority: LOG_ERR, message }, { priority: LOG_ERR, message }]);
    }
  });

  Deno.test(`${name}: quiet and the other helper-side arguments pass through verbatim`, async () => {
    const args = [
      "socket=http://127.0.0.1:236/kopano",
      "socket=file:///run/kopano/server.sock",
      "service=imap|pop3",
      "quiet",
      "ignore_authinfo_unavail",
      "cafile=/etc/ssl/ca.pem",
      "timeout=5",
    ];
    const { conf, helper, modeArg } = await setup(args);
    const r = await runDriver(v, [
      "--user",
      "args",
      "--password",
      "x",
      "--rhost",
      "2001:db8::1",
      conf,
      "mapi",
    ]);
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    assert.deepEqual(r.logs, [{
      priority: LOG_NOTICE,
      message: `service=mapi rhost=2001:db8::1 args=helper=${helper}|${modeArg}|${args.join("|")}|`,
    }]);
  });

  Deno.test(`${name}: length guard: user > 256 or password > 512 bytes never reach the helper`, async () => {
    const { dir, conf } = await setup([]);
    const u256 = "u".repeat(256), u257 = "u".repeat(257);
    let r = await runDriver(v, ["--user", u256, "--password", `pw-${u256}`, conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SUCCESS", "256 bytes is allowed");
    r = await runDriver(v, [
      "--user",
      u257,
      "--password",
      `pw-${u257}`,
      "--rhost",
      "192.0.2.9",
      conf,
      "mapi",
    ]);
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    // The helper's own wording for the same check (src/pam/input.ts); the name is cut at 64 characters.
    assert.deepEqual(r.logs, [{
      priority: LOG_NOTICE,
      message: `authentication failure; user=${"u".repeat(64)}... rhost=192.0.2.9 ` +
        'result=PAM_AUTH_ERR reason="invalid user name (longer than 256 bytes)"',
    }]);
    assert.equal(r.kv.prompts, "0", "refused before asking for a password");
    assert.equal((await helperPids(dir)).length, 1, "only the 256-byte run started the helper");

    const p512 = "pw-" + "p".repeat(509), p513 = p512 + "p";
    r = await runDriver(v, ["--password", p512, conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    assert.deepEqual(r.logs, [{ priority: LOG_NOTICE, message: "fake: refused user=alice" }]);
    r = await runDriver(v, ["--password", p513, conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    assert.deepEqual(r.logs, [{
      priority: LOG_NOTICE,
      message: "authentication failure; user=alice result=PAM_AUTH_ERR " +
        'reason="invalid password (longer than 512 bytes)"',
    }]);
    assert.equal((await helperPids(dir)).length, 2);
  });

  Deno.test(`${name}: an empty password goes to the helper, which refuses it`, async () => {
    const { dir, conf } = await setup([]);
    const r = await runDriver(v, ["--password", "", conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    assert.deepEqual(r.logs, [{ priority: LOG_NOTICE, message: "fake: refused user=alice" }]);
    assert.equal((await helperPids(dir)).length, 1);
  });

  Deno.test(`${name}: a conversation that delivers no password -> PAM_AUTHTOK_ERR`, async () => {
    const { dir, conf } = await setup([]);
    const r = await runDriver(v, [conf, "mapi"]); // no --password: the conversation fails
    assert.equal(r.kv.auth, "PAM_AUTHTOK_ERR");
    assert.equal(r.kv.prompts, "1");
    // libpam's pam_prompt logs "conversation failed" itself, under the module's name.
    assert.deepEqual(r.logs, [{ priority: LOG_ERR, message: "conversation failed" }, {
      priority: LOG_ERR,
      message:
        "the conversation did not deliver a password (PAM_CONV_ERR); user=alice result=PAM_AUTHTOK_ERR",
    }]);
    assert.deepEqual(await helperPids(dir), []);
  });

  Deno.test(`${name}: user names cannot pose as other log fields`, async () => {
    const { conf } = await setup(["use_first_pass"]);
    // A shim line (use_first_pass without a token) with a user name built to fool a log scanner.
    const r = await runDriver(v, [
      "--user",
      'alice rhost=203.0.113.9 result=PAM_SUCCESS \u202e"\\',
      "--rhost",
      "192.0.2.3",
      conf,
      "mapi",
    ]);
    assert.equal(r.kv.auth, "PAM_AUTHTOK_RECOVERY_ERR");
    assert.deepEqual(r.logs.map((l) => l.message), [
      'use_first_pass: no password from an earlier module; user="alice rhost=203.0.113.9 ' +
      'result=PAM_SUCCESS ?\\"\\\\" rhost=192.0.2.3 result=PAM_AUTHTOK_RECOVERY_ERR',
    ]);
  });

  Deno.test(`${name}: user names with control characters are logged neutralised`, async () => {
    const { conf } = await setup(["debug"]);
    const r = await runDriver(v, [
      "--user",
      "eve\nx=1\u001b[0m",
      "--password",
      "x",
      "--rhost",
      "h\tost",
      conf,
      "mapi",
    ]);
    assert.equal(r.kv.auth, "PAM_AUTH_ERR");
    assert.ok(
      r.logs.some((l) => l.message.endsWith('for user="eve?x=1?[0m" rhost=h?ost (deadline 12 s)')),
    );
    for (const s of r.syslog) {
      assert.ok(
        ![...s.text].some((c) => c < " " || c === "\x7f"),
        `control character in: ${s.text}`,
      );
    }
  });
}
