// SMTP AUTH end to end: a real Postfix smtpd on loopback ports, Cyrus SASL with
// pwcheck_method saslauthd, real saslauthd -a pam, pam_mapi.so, the Kopano-compatible server, and
// swaks as the mail client, with the module starting the helper and, on one listener, asking the
// resident helper (daemon=). Whatever goes wrong on the way must end in 535 and a refused relay.
// Runs as root only (skipped otherwise); Postfix, saslauthd and their files live in a Sandbox
// (scripts/lib/sandbox.ts) and are gone when the test ends.
import assert from "node:assert/strict";
import { disposableSocketDir } from "../lib/socket_dir.ts";
import { processesIn, Sandbox, type SyslogRecord } from "../../scripts/lib/sandbox.ts";
import { run } from "../../scripts/lib/run.ts";
import {
  assertOnlySandboxLeft,
  countersRose,
  installBuilt,
  LINE,
  logged,
  mountTable,
  NOT_ROOT,
  pamMapiLines,
  type Saslauthd,
  setServerDown,
  showSyslog,
  startResidentHelper,
  startSaslauthd,
  startSim,
  waitFor,
} from "./lib.ts";

/** Free loopback ports (probed: bound and released). */
function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

interface Postfix {
  stop(): Promise<void>;
}

/**
 * A Postfix instance of its own: config directory, queue and data directory in the sandbox, one
 * smtpd per listener. smtpd reads its Cyrus SASL file NAME.conf, NAME being smtpd_sasl_path, from
 * cyrus_sasl_config_path: Debian's main.cf sets /etc/postfix/sasl, but the built-in default is
 * empty, which Debian 13's smtpd leaves to the Cyrus library's own search path (no smtpdN.conf
 * there: sasldb, and 454 for every AUTH); Debian 12's was patched to read CONFIG_DIR/sasl.
 */
async function startPostfix(
  sb: Sandbox,
  listeners: Array<{ port: number; saslauthd: Saslauthd; options?: string[] }>,
): Promise<Postfix> {
  const conf = `${sb.dir}/postfix`;
  const queue = `${sb.dir}/postfix-queue`;
  const data = `${sb.dir}/postfix-data`;
  for (const d of [conf, `${conf}/sasl`, queue, data]) await Deno.mkdir(d, { mode: 0o755 });
  await run("chown", ["postfix", data]);
  await Deno.writeTextFile(
    `${conf}/main.cf`,
    [
      "compatibility_level = 3.6",
      `queue_directory = ${queue}`,
      `data_directory = ${data}`,
      "meta_directory = /etc/postfix",
      `cyrus_sasl_config_path = ${conf}/sasl`,
      "myhostname = relay.pam-mapi.test",
      "mydestination =",
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      // Nobody is trusted by address (Postfix trusts 127.0.0.1 by default): only SASL counts.
      "mynetworks =",
      "smtpd_sasl_auth_enable = yes",
      "smtpd_sasl_security_options = noanonymous",
      "smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination",
      "alias_maps =",
      "alias_database =",
      "",
    ].join("\n"),
  );
  const master: string[] = [];
  for (const [i, l] of listeners.entries()) {
    const name = `smtpd${i}`;
    await Deno.writeTextFile(
      `${conf}/sasl/${name}.conf`,
      `pwcheck_method: saslauthd\nsaslauthd_path: ${l.saslauthd.mux}\nmech_list: PLAIN LOGIN\n`,
    );
    const opts = ["-o", `smtpd_sasl_path=${name}`, ...(l.options ?? [])];
    master.push(`127.0.0.1:${l.port} inet n - n - - smtpd ${opts.join(" ")}`);
  }
  // chroot n everywhere: the daemons must see the sandbox's /dev/log and saslauthd socket.
  for (
    const s of [
      "rewrite unix - - n - - trivial-rewrite",
      "cleanup unix n - n - 0 cleanup",
      "qmgr unix n - n 300 1 qmgr",
      "bounce unix - - n - 0 bounce",
      "defer unix - - n - 0 bounce",
      "trace unix - - n - 0 bounce",
      "anvil unix - - n - 1 anvil",
      "scache unix - - n - 1 scache",
      "proxymap unix - - n - - proxymap",
    ]
  ) master.push(s);
  await Deno.writeTextFile(`${conf}/master.cf`, master.join("\n") + "\n");
  await sb.start("postfix", ["-c", conf, "start"]);
  const pid = Number((await Deno.readTextFile(`${queue}/pid/master.pid`)).trim());
  return {
    async stop() {
      await sb.start("postfix", ["-c", conf, "stop"]);
      await waitFor(
        async () => !(await sb.processes()).some((p) => p.nsPid === pid && p.state !== "Z"),
        "postfix master to stop",
      );
    },
  };
}

/** One swaks session; `reply` is the server's last answer before QUIT (235, 535, 554, ...). */
async function swaks(port: number, args: string[]): Promise<{ reply: string; transcript: string }> {
  const r = await run("swaks", [
    "--server",
    `127.0.0.1:${port}`,
    "--ehlo",
    "client.pam-mapi.test",
    "--from",
    "sender@example.net",
    ...args,
  ]);
  const replies = [...r.stdout.matchAll(/^(?:<-|<\*\*) +(\d{3}) (.*)$/gm)].map((m) =>
    `${m[1]} ${m[2]}`
  );
  const last = replies.filter((x) => !x.startsWith("221 ")).pop();
  assert.ok(last, `swaks said:\n${r.stdout}${r.stderr}`);
  return { reply: last, transcript: r.stdout };
}

const MECHS = ["PLAIN", "LOGIN"] as const;

Deno.test({
  name: NOT_ROOT
    ? "Postfix SMTP AUTH: SKIPPED, needs root (mount and PID namespaces, the daemons)"
    : "Postfix SMTP AUTH via saslauthd and pam_mapi: 235, 535, relay refused, Kopano down; " +
      "235 and 535 through the resident helper",
  ignore: NOT_ROOT, // needs root: mount and PID namespaces, Postfix, saslauthd
  async fn(t) {
    const mounts = await mountTable();
    let pidNamespace = "";
    {
      await using sim = await startSim();
      // Disposed after the sandbox, whose processes (the daemon) die with it.
      await using sockDir = await disposableSocketDir("pam_mapi_e2e_");
      await using sb = await Sandbox.open();
      pidNamespace = sb.pidNamespace;
      const url = sim.urls.http[0];
      const { module, helper } = await installBuilt(sb);
      const auth = (...args: string[]) =>
        ["auth", "required", module, `helper=${helper}`, `socket=${url}`, ...args].join(" ");
      await sb.pamService("smtp", [auth("daemon=off"), `account required ${module}`]);
      await sb.pamService("smtp-imap", [
        auth("daemon=off", "service=imap"),
        `account required ${module}`,
      ]);
      // The resident helper on a socket pam_mapi.so trusts, for the smtp-daemon service.
      const socket = `${sockDir.path}/helper.sock`;
      await sb.pamService("smtp-daemon", [
        auth(`daemon=${socket}`),
        `account required ${module}`,
      ]);
      const daemon = await startResidentHelper(sb, [helper, "serve", "--socket", socket], {
        helper,
        socket,
      });

      const plain = await startSaslauthd(sb, "plain", ["-n", "2"]);
      const realm = await startSaslauthd(sb, "realm", ["-n", "2", "-r"]);
      const [main, withRealm, imap, viaDaemon] = freePorts(4);
      const postfix = await startPostfix(sb, [
        { port: main, saslauthd: plain },
        { port: withRealm, saslauthd: realm },
        // smtpd_sasl_service is the service name saslauthd hands to PAM: /etc/pam.d/smtp-imap.
        { port: imap, saslauthd: plain, options: ["-o", "smtpd_sasl_service=smtp-imap"] },
        { port: viaDaemon, saslauthd: plain, options: ["-o", "smtpd_sasl_service=smtp-daemon"] },
      ]);
      try {
        /** AUTH with one mechanism, then QUIT: the reply and pam_mapi's line(s). */
        const login = async (port: number, mech: string, user: string, pass: string) => {
          const { value, lines } = await logged(
            sb,
            () =>
              swaks(port, [
                "--to",
                "someone@elsewhere.example",
                "--quit-after",
                "AUTH",
                "-a",
                mech,
                "-au",
                user,
                "-ap",
                pass,
              ]),
          );
          return { reply: value.reply, mapi: pamMapiLines(lines).map((l) => l.text), lines };
        };
        const smtpdSaid = (lines: SyslogRecord[], re: RegExp) =>
          assert.ok(
            lines.some((l) => l.ident === "postfix/smtpd" && re.test(l.message)),
            JSON.stringify(lines),
          );

        await t.step("right password: 235 with AUTH PLAIN and AUTH LOGIN", async () => {
          for (const mech of MECHS) {
            const r = await login(main, mech, "alice", "secret");
            assert.match(r.reply, /^235 2\.7\.0 Authentication successful/, mech);
            assert.deepEqual(r.mapi, [LINE.success("smtp", "alice", url)]);
          }
        });

        await t.step("wrong password: 535", async () => {
          for (const mech of MECHS) {
            const r = await login(main, mech, "alice", "wrong");
            assert.match(r.reply, /^535 5\.7\.8 /, mech);
            assert.deepEqual(r.mapi, [LINE.refused("smtp", "alice", url)]);
            smtpdSaid(r.lines, new RegExp(`SASL ${mech} authentication failed`));
          }
        });

        await t.step(
          "through the resident helper (daemon=): 235, and 535 for a wrong password",
          async () => {
            const before = await daemon.logins();
            let r = await login(viaDaemon, "PLAIN", "alice", "secret");
            assert.match(r.reply, /^235 2\.7\.0 Authentication successful/);
            assert.deepEqual(r.mapi, [LINE.success("smtp-daemon", "alice", url)]);
            r = await login(viaDaemon, "LOGIN", "alice", "wrong");
            assert.match(r.reply, /^535 5\.7\.8 /);
            assert.deepEqual(r.mapi, [LINE.refused("smtp-daemon", "alice", url)]);
            assert.deepEqual(countersRose(before, await daemon.logins()), {
              PAM_SUCCESS: 1,
              PAM_AUTH_ERR: 1,
            });
          },
        );

        await t.step(
          "service=imap: 535 for alice (imap disabled by default), 235 for bob",
          async () => {
            for (const mech of MECHS) {
              let r = await login(imap, mech, "alice", "secret");
              assert.match(r.reply, /^535 /, mech);
              assert.deepEqual(r.mapi, [LINE.feature("smtp-imap", "alice", url, "imap")]);
              r = await login(imap, mech, "bob", "bobpass");
              assert.match(r.reply, /^235 /, mech);
              assert.deepEqual(r.mapi, [LINE.success("smtp-imap", "bob", url, "imap")]);
            }
          },
        );

        await t.step(
          "AUTH as carol@example.com: Cyrus SASL splits the realm; -r joins it",
          async () => {
            for (const mech of MECHS) {
              // Without -r, PAM sees only "carol".
              let r = await login(main, mech, "carol@example.com", "carolpass");
              assert.match(r.reply, /^535 /, mech);
              assert.deepEqual(r.mapi, [LINE.refused("smtp", "carol", url)]);
              // With -r, the whole address.
              r = await login(withRealm, mech, "carol@example.com", "carolpass");
              assert.match(r.reply, /^235 /, mech);
              assert.deepEqual(r.mapi, [LINE.success("smtp", "carol@example.com", url)]);
            }
          },
        );

        await t.step("relaying: refused without AUTH, accepted after AUTH", async () => {
          let r = await swaks(main, ["--to", "someone@elsewhere.example", "--quit-after", "RCPT"]);
          assert.match(r.reply, /^554 5\.7\.1 <someone@elsewhere\.example>: Relay access denied/);
          const { value, lines } = await logged(
            sb,
            () =>
              swaks(main, [
                "--to",
                "someone@elsewhere.example",
                "--quit-after",
                "RCPT",
                "-a",
                "PLAIN",
                "-au",
                "alice",
                "-ap",
                "secret",
              ]),
          );
          r = value;
          assert.match(r.reply, /^250 2\.1\.5 Ok/);
          smtpdSaid(
            lines,
            /client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice/,
          );
        });

        await setServerDown(sim, true);

        await t.step("Kopano down: 535 for everyone, and the relay stays shut", async () => {
          for (const mech of MECHS) {
            let r = await login(main, mech, "alice", "secret");
            assert.match(r.reply, /^535 /, mech);
            assert.deepEqual(r.mapi, [LINE.unavailable("smtp", "alice", url)]);
            r = await login(withRealm, mech, "carol@example.com", "carolpass");
            assert.match(r.reply, /^535 /, mech);
            assert.deepEqual(r.mapi, [LINE.unavailable("smtp", "carol@example.com", url)]);
            r = await login(imap, mech, "bob", "bobpass");
            assert.match(r.reply, /^535 /, mech);
            assert.deepEqual(r.mapi, [LINE.unavailable("smtp-imap", "bob", url)]);
          }
          const r = await swaks(main, [
            "--to",
            "someone@elsewhere.example",
            "--quit-after",
            "RCPT",
          ]);
          assert.match(r.reply, /^554 5\.7\.1 .*Relay access denied/);
        });

        await setServerDown(sim, false);

        await t.step("Kopano back: 235 again", async () => {
          const r = await login(main, "PLAIN", "alice", "secret");
          assert.match(r.reply, /^235 /);
          assert.equal(sim.openSessions(), 0);
        });

        await realm.stop();

        await t.step("saslauthd down: 454 (try later), and still no relaying", async () => {
          const r = await login(withRealm, "PLAIN", "carol@example.com", "carolpass");
          assert.match(r.reply, /^454 4\.7\.0 Temporary authentication failure/);
          assert.deepEqual(r.mapi, []);
          smtpdSaid(r.lines, /cannot connect to saslauthd server/);
          const relay = await swaks(withRealm, [
            "--to",
            "someone@elsewhere.example",
            "--quit-after",
            "RCPT",
          ]);
          assert.match(relay.reply, /^554 5\.7\.1 .*Relay access denied/);
        });
      } finally {
        await postfix.stop();
        await plain.stop();
        await realm.stop();
        await daemon.stop();
      }
      await showSyslog(sb);
      await assertOnlySandboxLeft(sb);
    }
    assert.deepEqual(await processesIn(pidNamespace), []);
    assert.deepEqual(await mountTable(), mounts);
  },
});
