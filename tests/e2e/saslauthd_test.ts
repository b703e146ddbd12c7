// Debian's real saslauthd (-a pam) in front of pam_mapi.so, as SMTP AUTH uses it, driven by
// testsaslauthd: the /etc/pam.d/smtp stacks the docs recommend, saslauthd with and without -r
// (user@realm logins), -n 0 and -n 2 process models, -c credential caching (which also hides a
// changed stack until a restart), and Kopano down.
// Runs as root only (skipped otherwise): see scripts/lib/sandbox.ts for why nothing on the machine
// changes.
import assert from "node:assert/strict";
import { processesIn, Sandbox } from "../../scripts/lib/sandbox.ts";
import { run } from "../../scripts/lib/run.ts";
import {
  assertOnlySandboxLeft,
  installBuilt,
  leftovers,
  LINE,
  mountTable,
  NOT_ROOT,
  saslLogin,
  setServerDown,
  showSyslog,
  startSaslauthd,
  startSim,
  twelveAtOnce,
} from "./lib.ts";

/** A local (pam_unix) account that exists only inside the sandbox's private /etc/passwd. */
const LOCAL = { name: "pammapilocal", password: "localpass" };

async function withLocalUser(): Promise<Record<string, string>> {
  const hash = (await run("openssl", ["passwd", "-6", "-stdin"], { stdin: LOCAL.password }))
    .stdout.trim();
  assert.match(hash, /^\$6\$/);
  const passwd = await Deno.readTextFile("/etc/passwd");
  const shadow = await Deno.readTextFile("/etc/shadow");
  return {
    "/etc/passwd": `${passwd}${LOCAL.name}:x:64999:64999::/nonexistent:/usr/sbin/nologin\n`,
    "/etc/shadow": `${shadow}${LOCAL.name}:${hash}:19000:0:99999:7:::\n`,
  };
}

Deno.test({
  name: NOT_ROOT
    ? "saslauthd -a pam: SKIPPED, needs root (mount and PID namespaces, the daemons)"
    : "saslauthd -a pam: pam_mapi stacks, -r, process models, caching, Kopano down",
  ignore: NOT_ROOT, // needs root: mount and PID namespaces, saslauthd
  async fn(t) {
    const mounts = await mountTable();
    let pidNamespace = "";
    {
      await using sim = await startSim();
      await using sb = await Sandbox.open({ files: await withLocalUser() });
      pidNamespace = sb.pidNamespace;
      const url = sim.urls.http[0];
      const { module, helper } = await installBuilt(sb);
      const mapi = (...args: string[]) => [
        module,
        `helper=${helper}`,
        "daemon=off",
        `socket=${url}`,
        ...args,
      ];

      // The stacks of docs/admin-guide.md, "Configure". saslauthd passes the SASL service name ("smtp" from
      // Postfix) as the PAM service; testsaslauthd -s picks it here.
      await sb.pamService("smtp", [
        `auth     required   ${mapi().join(" ")}`,
        `account  required   ${module}`,
      ]);
      await sb.pamService("smtp-imap", [
        `auth     required   ${mapi("service=imap").join(" ")}`,
        `account  required   ${module}`,
      ]);
      await sb.pamService("smtp-unix", [
        `auth     sufficient ${mapi().join(" ")}`,
        `auth     required   pam_unix.so try_first_pass`,
        `account  sufficient ${module}`,
        `account  required   pam_unix.so`,
      ]);
      await sb.pamService("smtp-noaccount", [`auth     required   ${mapi().join(" ")}`]);
      for (const opt of ["try_first_pass", "use_first_pass"]) {
        await sb.pamService(`smtp-${opt}`, [
          `auth     required   ${mapi(opt).join(" ")}`,
          `account  required   ${module}`,
        ]);
      }

      const plain = await startSaslauthd(sb, "plain", ["-n", "2"]);
      const realm = await startSaslauthd(sb, "realm", ["-n", "2", "-r"]);
      const forking = await startSaslauthd(sb, "fork", ["-n", "0"]);
      const caching = await startSaslauthd(sb, "cache", ["-n", "2", "-c"]);

      /** One testsaslauthd call: its answer and pam_mapi's line(s) for it. */
      const auth = (mux: string, svc: string, user: string, pass: string, realmArg?: string) =>
        saslLogin(sb, mux, svc, user, pass, realmArg);

      await t.step("pam_mapi alone: right password OK, wrong password NO", async () => {
        let r = await auth(plain.mux, "smtp", "alice", "secret");
        assert.equal(r.answer, "OK");
        assert.deepEqual(r.mapi.map((l) => l.text), [LINE.success("smtp", "alice", url)]);
        r = await auth(plain.mux, "smtp", "alice", "wrong");
        assert.equal(r.answer, "NO");
        assert.deepEqual(r.mapi.map((l) => l.text), [LINE.refused("smtp", "alice", url)]);
        // saslauthd's own line names the PAM step that failed.
        assert.ok(
          r.lines.some((l) =>
            /auth failure: \[user=alice\] \[service=smtp\].*\[reason=PAM auth error\]/.test(
              l.message,
            )
          ),
          JSON.stringify(r.lines),
        );
        r = await auth(plain.mux, "smtp", "nosuchuser", "secret");
        assert.equal(r.answer, "NO");
        assert.deepEqual(r.mapi.map((l) => l.text), [LINE.refused("smtp", "nosuchuser", url)]);
      });

      await t.step(
        "service=imap: the server's default disabled_features refuses alice",
        async () => {
          let r = await auth(plain.mux, "smtp-imap", "alice", "secret");
          assert.equal(r.answer, "NO");
          assert.deepEqual(r.mapi.map((l) => l.text), [
            LINE.feature("smtp-imap", "alice", url, "imap"),
          ]);
          r = await auth(plain.mux, "smtp-imap", "bob", "bobpass"); // imap enabled for bob
          assert.equal(r.answer, "OK");
          assert.deepEqual(r.mapi.map((l) => l.text), [
            LINE.success("smtp-imap", "bob", url, "imap"),
          ]);
        },
      );

      await t.step("saslauthd always runs pam_acct_mgmt: without an account line, NO", async () => {
        const r = await auth(plain.mux, "smtp-noaccount", "alice", "secret");
        // pam_mapi accepted the password, but the account step fell through to "other" (deny).
        assert.equal(r.answer, "NO");
        assert.deepEqual(r.mapi.map((l) => l.text), [LINE.success("smtp-noaccount", "alice", url)]);
        assert.ok(r.lines.some((l) => /\[reason=PAM acct error\]/.test(l.message)));
      });

      await t.step(
        "first module: try_first_pass prompts (saslauthd answers), use_first_pass fails",
        async () => {
          // saslauthd answers every password prompt with the password; nothing sets PAM_AUTHTOK
          // before the first module, so use_first_pass there can never work.
          let r = await auth(plain.mux, "smtp-try_first_pass", "alice", "secret");
          assert.equal(r.answer, "OK");
          r = await auth(plain.mux, "smtp-use_first_pass", "alice", "secret");
          assert.equal(r.answer, "NO");
          assert.deepEqual(r.mapi.map((l) => l.text), [
            "pam_mapi(smtp-use_first_pass:auth): use_first_pass: no password from an earlier module; user=alice result=PAM_AUTHTOK_RECOVERY_ERR",
          ]);
        },
      );

      await t.step("sufficient before pam_unix: Kopano users and local users", async () => {
        let r = await auth(plain.mux, "smtp-unix", "alice", "secret");
        assert.equal(r.answer, "OK");
        assert.deepEqual(r.mapi.map((l) => l.text), [LINE.success("smtp-unix", "alice", url)]);
        // Not a Kopano user: pam_mapi refuses, pam_unix (try_first_pass) decides; pam_mapi's
        // account line answers PAM_IGNORE for a user it did not authenticate, pam_unix's decides.
        r = await auth(plain.mux, "smtp-unix", LOCAL.name, LOCAL.password);
        assert.equal(r.answer, "OK");
        assert.deepEqual(r.mapi.map((l) => l.text), [LINE.refused("smtp-unix", LOCAL.name, url)]);
        r = await auth(plain.mux, "smtp-unix", "alice", "wrong");
        assert.equal(r.answer, "NO");
      });

      await t.step(
        "without -r: user@domain passes verbatim, a separate realm is dropped",
        async () => {
          // The login as the client typed it reaches PAM unchanged.
          let r = await auth(plain.mux, "smtp", "carol@example.com", "carolpass");
          assert.equal(r.answer, "OK");
          assert.deepEqual(r.mapi.map((l) => l.text), [
            LINE.success("smtp", "carol@example.com", url),
          ]);
          // A realm sent apart (as Cyrus SASL does for AUTH as carol@example.com, see the Postfix
          // test) is not given to PAM: pam_mapi sees "carol", which Kopano does not know.
          r = await auth(plain.mux, "smtp", "carol", "carolpass", "example.com");
          assert.equal(r.answer, "NO");
          assert.deepEqual(r.mapi.map((l) => l.text), [LINE.refused("smtp", "carol", url)]);
          assert.ok(
            r.lines.some((l) =>
              /\[user=carol\] \[service=smtp\] \[realm=example.com\]/.test(l.message)
            ),
          );
        },
      );

      await t.step("with -r: login and realm are joined as user@realm", async () => {
        let r = await auth(realm.mux, "smtp", "carol", "carolpass", "example.com");
        assert.equal(r.answer, "OK");
        assert.deepEqual(r.mapi.map((l) => l.text), [
          LINE.success("smtp", "carol@example.com", url),
        ]);
        r = await auth(realm.mux, "smtp", "carol@example.com", "carolpass"); // no realm: unchanged
        assert.equal(r.answer, "OK");
        // ... so a Kopano user without a domain in its name no longer matches once a realm comes.
        r = await auth(realm.mux, "smtp", "alice", "secret", "example.com");
        assert.equal(r.answer, "NO");
        assert.deepEqual(r.mapi.map((l) => l.text), [
          LINE.refused("smtp", "alice@example.com", url),
        ]);
        r = await auth(realm.mux, "smtp", "alice", "secret");
        assert.equal(r.answer, "OK");
      });

      await t.step(
        "saslauthd reaps children itself: -n 0 and -n 2, concurrent logins",
        async () => {
          // saslauthd's SIGCHLD handler reaps any child; the module's supervisor cannot be taken
          // from it, so every result still arrives. Twelve at once per process model.
          for (const mux of [forking.mux, plain.mux]) await twelveAtOnce(mux);
          assert.deepEqual(await leftovers(sb), []);
        },
      );

      await t.step("-c caches successes: prime the cache while Kopano is up", async () => {
        const r = await auth(caching.mux, "smtp", "alice", "secret");
        assert.equal(r.answer, "OK");
        assert.equal(r.mapi.length, 1);
      });

      await setServerDown(sim, true);

      await t.step(
        "Kopano down: NO for everyone pam_mapi decides, with and without -r",
        async () => {
          for (
            const [mux, user, pass, realmArg, pamUser] of [
              [plain.mux, "alice", "secret", undefined, "alice"],
              [plain.mux, "carol@example.com", "carolpass", undefined, "carol@example.com"],
              [realm.mux, "carol", "carolpass", "example.com", "carol@example.com"],
              [forking.mux, "alice", "secret", undefined, "alice"],
            ] as const
          ) {
            const r = await auth(mux, "smtp", user, pass, realmArg);
            assert.equal(r.answer, "NO", `${user} via ${mux}`);
            assert.deepEqual(r.mapi.map((l) => l.text), [LINE.unavailable("smtp", pamUser, url)]);
            assert.equal(r.mapi[0].priority, 3); // err: needs the administrator
            // saslauthd's answer is the same NO as for a wrong password; its debug line tells why.
            assert.equal(r.out, '0: NO "authentication failed"');
            assert.ok(
              r.lines.some((l) =>
                l.message ===
                  "DEBUG: auth_pam: pam_authenticate failed: Authentication service cannot retrieve authentication info"
              ),
              JSON.stringify(r.lines),
            );
          }
          // sufficient + pam_unix: Kopano users are refused, local accounts still work.
          let r = await auth(plain.mux, "smtp-unix", "alice", "secret");
          assert.equal(r.answer, "NO");
          r = await auth(plain.mux, "smtp-unix", LOCAL.name, LOCAL.password);
          assert.equal(r.answer, "OK");
        },
      );

      await t.step("Kopano down, -c: the cached password still works, others do not", async () => {
        let r = await auth(caching.mux, "smtp", "alice", "secret");
        assert.equal(r.answer, "OK"); // from saslauthd's cache: PAM is not asked
        assert.deepEqual(r.mapi, []);
        r = await auth(caching.mux, "smtp", "alice", "wrong");
        assert.equal(r.answer, "NO");
        assert.deepEqual(r.mapi.map((l) => l.text), [LINE.unavailable("smtp", "alice", url)]);
      });

      await setServerDown(sim, false);

      await t.step("Kopano back: the same login works again", async () => {
        const r = await auth(plain.mux, "smtp", "alice", "secret");
        assert.equal(r.answer, "OK");
        assert.equal(sim.openSessions(), 0); // every session was logged off
      });

      await t.step("-c also hides a changed stack, until saslauthd restarts", async () => {
        // Debian's default OPTIONS has -c: docs/admin-guide.md, "saslauthd on Debian", says to restart it.
        const stack = (...args: string[]) =>
          sb.pamService("smtp-edit", [
            `auth     required   ${mapi(...args).join(" ")}`,
            `account  required   ${module}`,
          ]);
        await stack();
        let r = await auth(caching.mux, "smtp-edit", "alice", "secret");
        assert.equal(r.answer, "OK");
        assert.deepEqual(r.mapi.map((l) => l.text), [LINE.success("smtp-edit", "alice", url)]);
        await stack("service=imap"); // alice has no IMAP
        const refused = [LINE.feature("smtp-edit", "alice", url, "imap")];
        r = await auth(plain.mux, "smtp-edit", "alice", "secret"); // without -c: at once
        assert.equal(r.answer, "NO");
        assert.deepEqual(r.mapi.map((l) => l.text), refused);
        r = await auth(caching.mux, "smtp-edit", "alice", "secret"); // -c: the cached success
        assert.equal(r.answer, "OK");
        assert.deepEqual(r.mapi, []);
        await caching.restart(); // empties the cache
        r = await auth(caching.mux, "smtp-edit", "alice", "secret");
        assert.equal(r.answer, "NO");
        assert.deepEqual(r.mapi.map((l) => l.text), refused);
      });

      await showSyslog(sb);
      for (const d of [plain, realm, forking, caching]) await d.stop();
      await assertOnlySandboxLeft(sb);
    }
    // The sandbox is gone: no process in its PID namespace, the machine's mounts unchanged.
    assert.deepEqual(await processesIn(pidNamespace), []);
    assert.deepEqual(await mountTable(), mounts);
  },
});
