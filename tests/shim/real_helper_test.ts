// pam_mapi.so with the real helper (dist/pam_mapi_helper, built by `deno task build`) against the
// Kopano-compatible server (tests/kopano_sim): the outcomes of pam_mapi(8) RETURN VALUES with their
// syslog lines, what quiet and debug change, account after auth, threads and repeated runs; through
// the pam_start_confdir driver (syslog from a private /dev/log) and pamtester under pam_wrapper.
// Each test runs with the helper started per login (daemon=off) and through the real resident
// helper (`pam_mapi_helper serve` on a socket of its own, daemon=SOCKET): the same outcomes and
// lines.
import assert from "node:assert/strict";
import { startDaemon } from "../daemon/lib.ts";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import {
  builtHelperCopy,
  label,
  line as moduleLine,
  LOG_DEBUG,
  LOG_ERR,
  LOG_INFO,
  LOG_NOTICE,
  type Mode,
  MODES,
  pamConf,
  pamtester,
  runDriver,
  type Variant,
  VARIANTS,
} from "./lib.ts";

const UNREACHABLE = "http://127.0.0.1:1/kopano"; // nothing listens on port 1

const threadUsers = Array.from({ length: 8 }, (_, t) => ({
  name: `alice-t${t}`,
  password: `pw-alice-t${t}`,
}));

async function withSim(fn: (url: string, openSessions: () => number) => Promise<void>) {
  await using sim = await startKopanoSim({
    listen: ["127.0.0.1:0"],
    users: [
      { name: "alice", password: "secret" },
      { name: "bob", password: "bobpass", enabled: ["imap"], disabled: ["pop3"] },
      ...threadUsers,
    ],
  });
  await fn(sim.urls.http[0], () => sim.openSessions());
}

for (const v of VARIANTS) {
  for (const mode of MODES) registerTests(v, mode);
}

function registerTests(v: Variant, mode: Mode) {
  const name = label(v, mode);
  // The daemon= argument of the test that is running: set by useMode() at its start.
  let daemonArg = "daemon=off";
  /** The module line, with this mode's daemon= on auth lines. */
  const line = (type: "auth" | "account", args: string[], control?: string) =>
    moduleLine(v, type, type === "auth" ? [...args, daemonArg] : args, control);
  /** In daemon mode, starts the real resident helper (the built one) on a socket of its own. */
  const useMode = async (helper: string): Promise<AsyncDisposable> => {
    if (mode === "fork") {
      daemonArg = "daemon=off";
      return { [Symbol.asyncDispose]: async () => {} };
    }
    const d = await startDaemon({ helper });
    daemonArg = `daemon=${d.socket}`;
    return d;
  };
  const auth = async (helper: string, dir: string, args: string[], driverArgs: string[]) => {
    const conf = await pamConf(dir, {
      mapi: [line("auth", [`helper=${helper}`, ...args]), line("account", [])],
      // IGNORE from pam_mapi lets the next module decide: here pam_permit, i.e. exactly the
      // fail-open combination the documentation warns about for ignore_authinfo_unavail.
      mapi_permit: [
        line("auth", [`helper=${helper}`, ...args], "[success=ok ignore=ignore default=die]"),
        "auth required pam_permit.so",
      ],
    });
    return await runDriver(v, [...driverArgs, conf, "mapi"]);
  };

  Deno.test(`${name}: real helper: success, wrong password, feature, unavailable, arguments`, async () => {
    const { dir, helper } = await builtHelperCopy();
    await using _mode = await useMode(helper);
    await withSim(async (url, openSessions) => {
      const s = `socket=${url}`;
      // Success; account follows for the same user.
      let r = await auth(helper, dir, [s], [
        "--user",
        "alice",
        "--password",
        "secret",
        "--rhost",
        "192.0.2.1",
        "--ops",
        "auth,acct",
      ]);
      assert.equal(r.kv.auth, "PAM_SUCCESS");
      assert.equal(r.kv.acct, "PAM_SUCCESS");
      assert.deepEqual(r.logs, [{
        priority: LOG_INFO,
        message:
          `authentication success; user=alice rhost=192.0.2.1 socket=${url} result=PAM_SUCCESS reason="logon accepted"`,
      }]);
      // Wrong password.
      r = await auth(helper, dir, [s], [
        "--user",
        "alice",
        "--password",
        "wrong",
        "--rhost",
        "192.0.2.1",
      ]);
      assert.equal(r.kv.auth, "PAM_AUTH_ERR");
      assert.deepEqual(r.logs, [{
        priority: LOG_NOTICE,
        message:
          `authentication failure; user=alice rhost=192.0.2.1 socket=${url} result=PAM_AUTH_ERR reason="logon refused"`,
      }]);
      // Logon accepted, feature not enabled.
      r = await auth(helper, dir, [s, "service=pop3"], ["--user", "bob", "--password", "bobpass"]);
      assert.equal(r.kv.auth, "PAM_AUTH_ERR");
      assert.deepEqual(r.logs, [{
        priority: LOG_NOTICE,
        message:
          `authentication failure; user=bob socket=${url} result=PAM_AUTH_ERR reason="feature not enabled" required=pop3`,
      }]);
      r = await auth(helper, dir, [s, "service=pop3|imap"], [
        "--user",
        "bob",
        "--password",
        "bobpass",
      ]);
      assert.equal(r.kv.auth, "PAM_SUCCESS");
      // No server answers.
      const unavailable =
        `authentication failure; user=alice result=PAM_AUTHINFO_UNAVAIL reason="server unavailable" detail="${UNREACHABLE}: connect failed: connection refused"`;
      r = await auth(helper, dir, [`socket=${UNREACHABLE}`], [
        "--user",
        "alice",
        "--password",
        "secret",
      ]);
      assert.equal(r.kv.auth, "PAM_AUTHINFO_UNAVAIL");
      assert.deepEqual(r.logs, [{ priority: LOG_ERR, message: unavailable }]);
      // ... and the next socket is tried when the first gives no answer.
      r = await auth(helper, dir, [`socket=${UNREACHABLE}`, s], [
        "--user",
        "alice",
        "--password",
        "secret",
      ]);
      assert.equal(r.kv.auth, "PAM_SUCCESS");
      // ignore_authinfo_unavail: PAM_IGNORE, so the next module decides (here: pam_permit).
      const ign = [`socket=${UNREACHABLE}`, "ignore_authinfo_unavail"];
      const conf = await pamConf(dir, {
        ign: [
          line("auth", [`helper=${helper}`, ...ign], "[success=ok ignore=ignore default=die]"),
          "auth required pam_permit.so",
        ],
        noign: [
          line(
            "auth",
            [`helper=${helper}`, `socket=${UNREACHABLE}`],
            "[success=ok ignore=ignore default=die]",
          ),
          "auth required pam_permit.so",
        ],
      });
      r = await runDriver(v, ["--password", "secret", conf, "ign"]);
      assert.equal(r.kv.auth, "PAM_SUCCESS", "IGNORE passed the decision on");
      assert.deepEqual(r.logs, [{
        priority: LOG_ERR,
        message: unavailable.replace("PAM_AUTHINFO_UNAVAIL", "PAM_IGNORE"),
      }]);
      r = await runDriver(v, ["--password", "secret", conf, "noign"]);
      assert.equal(r.kv.auth, "PAM_AUTHINFO_UNAVAIL", "without the option the stack fails");
      // Unknown argument: refused by the shim before anything runs.
      r = await auth(helper, dir, [s, "nullok"], ["--user", "alice", "--password", "secret"]);
      assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
      assert.equal(r.kv.prompts, "0");
      assert.deepEqual(r.logs, [{
        priority: LOG_ERR,
        message: 'bad module argument "nullok": unknown argument; result=PAM_SERVICE_ERR',
      }]);
      // A value only the helper checks: its own error line.
      r = await auth(helper, dir, [s, "service=smtp"], ["--user", "alice", "--password", "secret"]);
      assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
      assert.deepEqual(r.logs, [{
        priority: LOG_ERR,
        message:
          'invalid module arguments: service="smtp": unknown feature "smtp" (known: imap, pop3, mobile, outlook, webapp)',
      }]);
      // Empty password: passed on, refused by the helper without asking any server.
      const before = openSessions();
      r = await auth(helper, dir, [s], ["--user", "alice", "--password", ""]);
      assert.equal(r.kv.auth, "PAM_AUTH_ERR");
      assert.deepEqual(r.logs, [{
        priority: LOG_NOTICE,
        message: 'authentication failure; user=alice result=PAM_AUTH_ERR reason="empty password"',
      }]);
      assert.equal(openSessions(), before);
      assert.equal(openSessions(), 0, "every session was logged off");
    });
  });

  Deno.test(`${name}: real helper: quiet drops only the refused-logon line; debug adds steps`, async () => {
    const { dir, helper } = await builtHelperCopy();
    await using _mode = await useMode(helper);
    await withSim(async (url) => {
      const s = `socket=${url}`;
      const outcome = async (args: string[], user: string, pw: string) =>
        await auth(helper, dir, [s, ...args], ["--user", user, "--password", pw]);
      // Refused logons (wrong password, unknown user): no line with quiet.
      for (const [user, pw] of [["alice", "wrong"], ["nosuchuser", "x"]]) {
        const loud = await outcome([], user, pw);
        const quiet = await outcome(["quiet"], user, pw);
        assert.equal(loud.kv.auth, "PAM_AUTH_ERR");
        assert.equal(quiet.kv.auth, "PAM_AUTH_ERR");
        assert.equal(loud.logs.length, 1);
        assert.deepEqual(quiet.logs, []);
      }
      // Everything else is logged as before.
      for (
        const [args, user, pw] of [[[], "alice", "secret"], [
          ["service=pop3"],
          "bob",
          "bobpass",
        ]] as const
      ) {
        const loud = await outcome([...args], user, pw);
        const quiet = await outcome([...args, "quiet"], user, pw);
        assert.deepEqual(quiet.logs, loud.logs);
      }
      // debug: the same outcome line, plus debug lines from shim and helper, never the password.
      const plain = await outcome([], "alice", "wrong");
      const dbg = await outcome(["debug"], "alice", "wrong");
      assert.deepEqual(dbg.logs.filter((l) => l.priority !== LOG_DEBUG), plain.logs);
      const debugLines = dbg.logs.filter((l) => l.priority === LOG_DEBUG).map((l) => l.message);
      assert.equal(debugLines[0], "debug: asking for the password");
      if (mode === "fork") {
        assert.match(debugLines[1], /^debug: starting helper .* for user=alice \(deadline 12 s\)$/);
        assert.match(
          debugLines.at(-1)!,
          /^debug: helper pid \d+ exited with status 0 after \d+ ms; result=PAM_AUTH_ERR$/,
        );
      } else {
        assert.match(
          debugLines[1],
          /^debug: asking the resident helper \S+ for user=alice \(deadline 12 s\)$/,
        );
        assert.match(
          debugLines.at(-1)!,
          /^debug: resident helper \S+ \(pid \d+\) answered after \d+ ms; result=PAM_AUTH_ERR$/,
        );
      }
      assert.ok(debugLines.some((m) => m.includes("logon refused by the server")));
      const secretRun = await outcome(["debug"], "alice", "secret");
      for (const s of [...dbg.syslog, ...secretRun.syslog]) {
        assert.ok(!s.text.includes("secret") && !s.text.includes("wrong"), s.text);
      }
      // debug and quiet together: the refused line stays dropped, the steps stay.
      const both = await outcome(["debug", "quiet"], "alice", "wrong");
      assert.ok(both.logs.every((l) => l.priority === LOG_DEBUG));
    });
  });

  Deno.test(`${name}: real helper: threads, repeated runs, hosts that reap children`, async () => {
    const { dir, helper } = await builtHelperCopy();
    await using _mode = await useMode(helper);
    await withSim(async (url, openSessions) => {
      const conf = await pamConf(dir, {
        mapi: [line("auth", [`helper=${helper}`, `socket=${url}`])],
      });
      // Eight threads at once; even threads know their password, odd ones do not.
      const t = await runDriver(v, [
        "--sigchld",
        "reaper",
        "--user",
        "alice",
        "--threads",
        "8",
        "--iterations",
        "2",
        conf,
        "mapi",
      ], { capture: false });
      const lines = t.stdout.split("\n").filter((l) => l.startsWith("thread="));
      assert.equal(lines.length, 16);
      for (const l of lines) {
        const m = /^thread=(\d+) .* auth=(\S+)$/.exec(l)!;
        assert.equal(m[2], Number(m[1]) % 2 === 0 ? "PAM_SUCCESS" : "PAM_AUTH_ERR", l);
      }
      assert.equal(t.kv.reaped, "0");
      // A smaller loop than with the fake helper: no fd, zombie or memory left behind.
      for (const sigchld of ["ign", "reaper"]) {
        const r = await runDriver(v, [
          "--sigchld",
          sigchld,
          "--loops",
          "40",
          "--user",
          "alice",
          "--password",
          "secret",
          conf,
          "mapi",
        ], {
          capture: false,
        });
        assert.match(r.stdout, /loops=40 success=40 other=0/);
        assert.equal(r.kv.fds_after, r.kv.fds_before);
        assert.equal(r.kv.zombies, "0");
        assert.equal(r.kv.children, "0");
        if (v.name === "plain") {
          assert.ok(Number(r.kv.rss_after_kb) - Number(r.kv.rss_before_kb) < 512, r.stdout);
        }
      }
      assert.equal(openSessions(), 0);
    });
  });

  Deno.test(`${name}: real helper through pamtester under pam_wrapper`, async () => {
    const { dir, helper } = await builtHelperCopy();
    await using _mode = await useMode(helper);
    await withSim(async (url) => {
      const conf = await pamConf(dir, {
        smtp: [line("auth", [`helper=${helper}`, `socket=${url}`]), line("account", [])],
      });
      let r = await pamtester(v, conf, [
        "-I",
        "rhost=198.51.100.4",
        "smtp",
        "alice",
        "authenticate",
        "acct_mgmt",
      ], {
        stdin: "secret\n",
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /successfully authenticated/);
      assert.match(r.stdout, /account management done/);
      assert.deepEqual(r.syslog, [{
        priority: LOG_INFO,
        message:
          `authentication success; user=alice rhost=198.51.100.4 socket=${url} result=PAM_SUCCESS reason="logon accepted"`,
      }]);
      r = await pamtester(v, conf, ["smtp", "alice", "authenticate"], { stdin: "wrong\n" });
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /Authentication failure/);
      assert.deepEqual(r.syslog, [{
        priority: LOG_NOTICE,
        message:
          `authentication failure; user=alice socket=${url} result=PAM_AUTH_ERR reason="logon refused"`,
      }]);
    });
  });
}
