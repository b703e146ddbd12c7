// Debian's real saslauthd (-a pam) in front of pam_mapi.so with the resident helper: the built
// helper's `serve` runs in the sandbox on a socket pam_mapi.so trusts (root's, in a root-owned
// 0755 directory), the pam.d lines name it with daemon=, and the daemon's own counters
// (`pam_mapi_helper status --json`) and the module's debug lines prove that the logins went
// through it. The same accept/refuse cases as saslauthd_test.ts; then the daemon is stopped
// (SIGTERM) in the middle of a run of logins, and later killed (SIGKILL: a stale socket that
// refuses connections): every login is still decided right, by the helper the module starts.
// Runs as root only (skipped otherwise): see scripts/lib/sandbox.ts for why nothing on the machine
// changes; the daemon dies with the sandbox's PID namespace whatever happens.
import assert from "node:assert/strict";
import { disposableSocketDir } from "../lib/socket_dir.ts";
import { processesIn, Sandbox, type SyslogRecord } from "../../scripts/lib/sandbox.ts";
import {
  assertOnlySandboxLeft,
  countersRose,
  decidedBy,
  installBuilt,
  LINE,
  logged,
  mountTable,
  NOT_ROOT,
  type ResidentHelper,
  saslLogin,
  setServerDown,
  showSyslog,
  startResidentHelper,
  startSaslauthd,
  startSim,
  testsaslauthd,
  twelveAtOnce,
  waitFor,
} from "./lib.ts";

Deno.test({
  name: NOT_ROOT
    ? "saslauthd -a pam with the resident helper: SKIPPED, needs root (mount and PID " +
      "namespaces, the daemons)"
    : "saslauthd -a pam with the resident helper (daemon=): the same answers through it; " +
      "stopped mid-run or killed, the module starts the helper and still decides right",
  ignore: NOT_ROOT, // needs root: mount and PID namespaces, saslauthd
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
      const socket = `${sockDir.path}/helper.sock`;
      const serve = () =>
        startResidentHelper(sb, [helper, "serve", "--socket", socket], { helper, socket });
      const mapi = (...args: string[]) =>
        [module, `helper=${helper}`, `socket=${url}`, `daemon=${socket}`, "debug", ...args]
          .join(" ");
      await sb.pamService("smtp", [`auth required ${mapi()}`, `account required ${module}`]);
      await sb.pamService("smtp-imap", [
        `auth required ${mapi("service=imap")}`,
        `account required ${module}`,
      ]);
      const plain = await startSaslauthd(sb, "plain", ["-n", "2"]);
      const realm = await startSaslauthd(sb, "realm", ["-n", "2", "-r"]);
      const forking = await startSaslauthd(sb, "fork", ["-n", "0"]);

      /** One testsaslauthd call: the answer, pam_mapi's result line(s), and who decided. */
      const auth = async (mux: string, svc: string, user: string, pass: string, realm?: string) => {
        const r = await saslLogin(sb, mux, svc, user, pass, realm);
        return {
          answer: r.answer,
          result: r.mapi.filter((l) => l.priority < 7).map((l) => l.text), // all but debug
          by: decidedBy(r.mapi.map((l) => l.text), socket),
        };
      };

      let daemon: ResidentHelper | null = await serve();
      try {
        // Each case: saslauthd, service, user, password, realm, answer, pam_mapi's line.
        // deno-fmt-ignore
        const cases = [
          [plain.mux, "smtp", "alice", "secret", undefined, "OK", LINE.success("smtp", "alice", url)],
          [plain.mux, "smtp", "alice", "wrong", undefined, "NO", LINE.refused("smtp", "alice", url)],
          [plain.mux, "smtp", "nosuchuser", "secret", undefined, "NO", LINE.refused("smtp", "nosuchuser", url)],
          [plain.mux, "smtp-imap", "alice", "secret", undefined, "NO", LINE.feature("smtp-imap", "alice", url, "imap")],
          [plain.mux, "smtp-imap", "bob", "bobpass", undefined, "OK", LINE.success("smtp-imap", "bob", url, "imap")],
          [realm.mux, "smtp", "carol", "carolpass", "example.com", "OK", LINE.success("smtp", "carol@example.com", url)],
          [forking.mux, "smtp", "alice", "secret", undefined, "OK", LINE.success("smtp", "alice", url)],
          [forking.mux, "smtp", "alice", "wrong", undefined, "NO", LINE.refused("smtp", "alice", url)],
        ] as const;
        const expect = { PAM_SUCCESS: 4, PAM_AUTH_ERR: 4 };

        await t.step("every case answered as without the daemon, and by the daemon", async () => {
          const before = await daemon!.logins();
          for (const [mux, svc, user, pass, realmArg, answer, line] of cases) {
            const r = await auth(mux, svc, user, pass, realmArg);
            assert.equal(r.answer, answer, `${user}/${pass} via ${svc}`);
            assert.deepEqual(r.result, [line]);
            assert.equal(r.by, `daemon pid ${daemon!.pid}`, `${user}/${pass} via ${svc}`);
          }
          assert.deepEqual(countersRose(before, await daemon!.logins()), expect);
        });

        await t.step("Kopano down: NO, and the daemon says why, as the helper would", async () => {
          const before = await daemon!.logins();
          await setServerDown(sim, true);
          try {
            const r = await auth(plain.mux, "smtp", "alice", "secret");
            assert.equal(r.answer, "NO");
            assert.deepEqual(r.result, [LINE.unavailable("smtp", "alice", url)]);
            assert.equal(r.by, `daemon pid ${daemon!.pid}`);
          } finally {
            await setServerDown(sim, false);
          }
          assert.deepEqual(countersRose(before, await daemon!.logins()), {
            PAM_AUTHINFO_UNAVAIL: 1,
          });
        });

        await t.step("twelve at once through -n 0 and -n 2, all through the daemon", async () => {
          const before = await daemon!.logins();
          for (const mux of [forking.mux, plain.mux]) await twelveAtOnce(mux);
          assert.deepEqual(countersRose(before, await daemon!.logins()), {
            PAM_SUCCESS: 16,
            PAM_AUTH_ERR: 8,
          });
        });

        await t.step(
          "daemon stopped (SIGTERM) amid logins: each still decided right; afterwards by the helper",
          async () => {
            // Four clients log in through saslauthd -n 0 (a process per login, so its syslog pid
            // tells the logins apart), right and wrong passwords in turn, until eight logins
            // were answered after the daemon had gone.
            const answers: Array<{ ok: boolean; after: boolean }> = [];
            let gone = false;
            const client = async (c: number) => {
              for (let i = 0; answers.filter((a) => a.after).length < 8; i++) {
                const after = gone;
                const right = (c + i) % 2 === 0;
                const r = await testsaslauthd(
                  forking.mux,
                  "smtp",
                  "alice",
                  right ? "secret" : "wrong",
                );
                answers.push({ ok: r.answer === (right ? "OK" : "NO"), after });
              }
            };
            const { value: log, lines } = await logged(sb, async () => {
              const clients = Array.from({ length: 4 }, (_, c) => client(c));
              await waitFor(
                () => Promise.resolve(answers.length >= 8),
                "eight logins through the daemon",
              );
              const log = await daemon!.stop("TERM");
              gone = true;
              await Promise.all(clients);
              return log;
            });
            daemon = null;
            assert.match(log, /SIGTERM: stopped accepting/);
            assert.match(log, /stopped: \d+ logins/);
            assert.equal(await Deno.lstat(socket).catch(() => null), null, "socket left behind");
            assert.deepEqual(answers.filter((a) => !a.ok), [], "a login decided wrong");
            // pam_mapi's lines per login: one result line each, a success or a refusal, decided
            // by the daemon or by the helper the module started because the socket was gone.
            const logins = new Map<number, SyslogRecord[]>();
            for (const r of lines) {
              if (!r.message.startsWith("pam_mapi(")) continue;
              logins.set(r.pid!, [...(logins.get(r.pid!) ?? []), r]);
            }
            assert.equal(logins.size, answers.length);
            const by: string[] = [];
            for (const records of logins.values()) {
              const result = records.filter((r) => r.priority < 7).map((r) => r.message);
              assert.ok(
                result.length === 1 && (result[0] === LINE.success("smtp", "alice", url) ||
                  result[0] === LINE.refused("smtp", "alice", url)),
                JSON.stringify(result),
              );
              by.push(decidedBy(records.map((r) => r.message), socket));
            }
            const count = (re: RegExp) => by.filter((b) => re.test(b)).length;
            const daemonOnes = count(/^daemon pid \d+$/);
            const helperOnes = count(/^helper \(.*No such file or directory\)$/);
            assert.equal(daemonOnes + helperOnes, by.length, JSON.stringify(by));
            assert.ok(daemonOnes >= 8, `${daemonOnes} through the daemon`);
            assert.ok(helperOnes >= answers.filter((a) => a.after).length, `${helperOnes} forked`);
          },
        );

        await t.step(
          "daemon killed (SIGKILL): its stale socket refuses, the module starts the helper",
          async () => {
            daemon = await serve();
            let r = await auth(plain.mux, "smtp", "alice", "secret");
            assert.equal(r.by, `daemon pid ${daemon.pid}`);
            await daemon.stop("KILL");
            daemon = null;
            assert.ok((await Deno.lstat(socket)).isSocket, "SIGKILL leaves the socket");
            const refused = "helper (connect: Connection refused)";
            r = await auth(plain.mux, "smtp", "alice", "secret");
            assert.deepEqual([r.answer, r.result, r.by], [
              "OK",
              [LINE.success("smtp", "alice", url)],
              refused,
            ]);
            r = await auth(forking.mux, "smtp", "alice", "wrong");
            assert.deepEqual([r.answer, r.result, r.by], [
              "NO",
              [LINE.refused("smtp", "alice", url)],
              refused,
            ]);
            // A new daemon replaces the stale socket, and logins go through it again.
            daemon = await serve();
            const before = await daemon.logins();
            r = await auth(plain.mux, "smtp", "alice", "secret");
            assert.deepEqual([r.answer, r.by], ["OK", `daemon pid ${daemon.pid}`]);
            assert.deepEqual(countersRose(before, await daemon.logins()), { PAM_SUCCESS: 1 });
          },
        );
      } finally {
        if (daemon) await daemon.stop("TERM");
      }

      await showSyslog(sb);
      for (const d of [plain, realm, forking]) await d.stop();
      await assertOnlySandboxLeft(sb);
    }
    // The sandbox is gone: no process in its PID namespace, the machine's mounts unchanged.
    assert.deepEqual(await processesIn(pidNamespace), []);
    assert.deepEqual(await mountTable(), mounts);
  },
});
