// The module against the real resident helper (`pam_mapi_helper serve`) when things go wrong, through
// the real libpam: the daemon killed in the middle of a login, gone (stale socket), restarted, and
// flooded past its limit of logins in progress. Each login must still end in the right decision or
// in a failure, never in PAM_SUCCESS for a wrong password.
import assert from "node:assert/strict";
import { login as askDaemon, startDaemon } from "../daemon/lib.ts";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { builtHelperCopy, line, LOG_DEBUG, LOG_ERR, pamConf, PLAIN, runDriver } from "./lib.ts";

const v = PLAIN;

/** A pam.d service with the built helper, daemon=SOCKET, debug and the given socket= URL. */
async function service(dir: string, helper: string, socket: string, url: string) {
  return await pamConf(dir, {
    mapi: [line(v, "auth", [`helper=${helper}`, `daemon=${socket}`, `socket=${url}`, "debug"])],
  });
}

const messages = (r: { logs: Array<{ priority: number; message: string }> }, priority: number) =>
  r.logs.filter((l) => l.priority === priority).map((l) => l.message);

Deno.test("plain daemon: killed mid-login -> PAM_SERVICE_ERR; then the helper is started; restarted -> used again", async () => {
  const { dir, helper } = await builtHelperCopy();
  await using sim = await startKopanoSim();
  const url = sim.urls.http[0];
  const socket = `${dir}/d.sock`;
  const conf = await service(dir, helper, socket, url);
  let d = await startDaemon({ helper, dir, socket });
  try {
    // The logon hangs for 3 s on the server; the daemon dies while it waits.
    await sim.setFaults([{ kind: "delay", value: 3000, method: "logon", times: 1 }]);
    const pending = runDriver(v, ["--password", "secret", conf, "mapi"]);
    // Kill it once its logon is on the server (not after a fixed time, which under load can be
    // before the module even reached the daemon).
    await until(
      () => sim.requests.some((q) => q.method === "logon"),
      "the logon reached the server",
    );
    Deno.kill(d.pid, "SIGKILL");
    const r = await pending;
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR", r.stdout);
    const errs = messages(r, LOG_ERR);
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(
      errs[0],
      /^resident helper \S+ \(pid \d+\): (the daemon closed the connection without a reply|read: Connection reset by peer); user=alice result=PAM_SERVICE_ERR$/,
    );
    await d.stop().catch(() => {});

    // SIGKILL left the socket file: connect() is refused, so the module starts the helper, which
    // decides as the daemon would have.
    assert.ok((await Deno.lstat(socket)).isSocket, "the stale socket is still there");
    for (const [password, result] of [["secret", "PAM_SUCCESS"], ["wrong", "PAM_AUTH_ERR"]]) {
      const f = await runDriver(v, ["--password", password, conf, "mapi"]);
      assert.equal(f.kv.auth, result, password);
      assert.ok(
        messages(f, LOG_DEBUG).some((m) =>
          m.endsWith("(connect: Connection refused); starting the helper")
        ),
      );
    }

    // A new daemon replaces the stale socket and gets the next logins.
    d = await startDaemon({ helper, dir, socket });
    for (const [password, result] of [["secret", "PAM_SUCCESS"], ["wrong", "PAM_AUTH_ERR"]]) {
      const n = await runDriver(v, ["--password", password, conf, "mapi"]);
      assert.equal(n.kv.auth, result, password);
      assert.ok(
        messages(n, LOG_DEBUG).some((m) =>
          new RegExp(`^debug: resident helper ${socket} \\(pid ${d.pid}\\) answered`).test(m)
        ),
        n.logs.map((l) => l.message).join("\n"),
      );
    }
  } finally {
    await d.stop().catch(() => {});
  }
  // The killed daemon's logon gets its session when the delay ends, although no client is left to
  // learn of it or log it off (so does kopano-server's; it expires by session_timeout). Count once
  // it has been served, or the count races it: that session, and no other.
  await until(() => sim.requests[0].status !== null, "the delayed logon was served");
  assert.equal(sim.openSessions(), 1, "every session a client learned of was logged off");
});

/** Waits (up to 10 s) until `done()` holds. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let t = 0; !done(); t++) {
    if (t === 200) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("plain daemon: flooded past 128 logins in progress -> PAM_AUTHINFO_UNAVAIL at once, never success", async () => {
  const { dir, helper } = await builtHelperCopy();
  await using hanging = await startKopanoSim({
    faults: [{ kind: "hang" }],
    maxLoggedRequests: 200,
  });
  await using sim = await startKopanoSim();
  const socket = `${dir}/d.sock`;
  await using d = await startDaemon({ helper, dir, socket });
  // 128 logins wait on a server that never answers (each gives up after its 3 s timeout).
  const held = Array.from({ length: 128 }, () =>
    askDaemon(d.socket, {
      user: "alice",
      password: "secret",
      args: [`socket=${hanging.urls.http[0]}`, "timeout=3"],
    }));
  await new Promise((r) => setTimeout(r, 500));
  const conf = await service(dir, helper, socket, sim.urls.http[0]);
  const start = performance.now();
  const r = await runDriver(v, ["--password", "secret", conf, "mapi"]);
  const ms = performance.now() - start;
  assert.equal(r.kv.auth, "PAM_AUTHINFO_UNAVAIL", "the right password, but not checked");
  assert.ok(ms < 1500, `answered in ${ms.toFixed(0)} ms, not after a deadline`);
  assert.deepEqual(messages(r, LOG_ERR), [
    "pam_mapi daemon busy: 128 requests in progress; login not checked",
  ]);
  const results = await Promise.all(held);
  assert.ok(results.every((x) => x.result === "PAM_AUTHINFO_UNAVAIL"));
  // The flood is over: the same login is checked again.
  const after = await runDriver(v, ["--password", "secret", conf, "mapi"]);
  assert.equal(after.kv.auth, "PAM_SUCCESS");
});
