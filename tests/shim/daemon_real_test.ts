// The module against the real resident helper (`pam_mapi_helper serve`) when things go wrong, through
// the real libpam: the daemon killed in the middle of a login, gone (stale socket), restarted, and
// flooded past its limit of logins in progress. Each login must still end in the right decision or
// in a failure, never in PAM_SUCCESS for a wrong password.
import assert from "node:assert/strict";
import { login as askDaemon, startDaemon } from "../daemon/lib.ts";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import {
  builtHelperCopy,
  daemonDir,
  line,
  LOG_DEBUG,
  LOG_ERR,
  pamConf,
  PLAIN,
  run,
  runDriver,
} from "./lib.ts";

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
  const sockDir = await daemonDir();
  const socket = `${sockDir}/d.sock`;
  const conf = await service(dir, helper, socket, url);
  let d = await startDaemon({ helper, dir: sockDir, socket });
  try {
    // The logon hangs on the server; the daemon dies while it waits. (Not a delay: a delayed
    // logon is answered after the daemon died, and opens a session nobody can log off, which made
    // the check at the end depend on whether the test was over by then.)
    await sim.setFaults([{ kind: "hang", method: "logon", times: 1 }]);
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
    d = await startDaemon({ helper, dir: sockDir, socket });
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
  assert.equal(sim.openSessions(), 0, "every session was logged off");
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
  const sockDir = await daemonDir();
  const socket = `${sockDir}/d.sock`;
  await using d = await startDaemon({ helper, dir: sockDir, socket });
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
  // Whose login it was: the daemon reads the request's first bytes before it says it is busy.
  assert.deepEqual(messages(r, LOG_ERR), [
    "pam_mapi daemon busy: 128 requests in progress; login not checked; user=alice",
  ]);
  const results = await Promise.all(held);
  assert.ok(results.every((x) => x.result === "PAM_AUTHINFO_UNAVAIL"));
  // The flood is over: the same login is checked again.
  const after = await runDriver(v, ["--password", "secret", conf, "mapi"]);
  assert.equal(after.kv.auth, "PAM_SUCCESS");
});

Deno.test("plain daemon: the hostage is gone: /tmp is refused whatever is there; a trusted directory keeps its free name free", async () => {
  const { dir, helper } = await builtHelperCopy();
  await using sim = await startKopanoSim();
  const url = sim.urls.http[0];
  const nobody = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
  // The configuration: a socket in /tmp, while its daemon is stopped. Without a daemon,
  // with a local user's file and with her socket there, logins fail alike, and say why at err:
  // she can no longer switch them between "start the helper" and "fail".
  const hostage = `/tmp/pam_mapi_hostage_${crypto.randomUUID()}.sock`;
  const inTmp = await service(dir, helper, hostage, url);
  const takers: Array<string[]> = [
    [],
    ["/usr/bin/touch", hostage],
    [
      "/usr/bin/python3",
      "-c",
      "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      hostage,
    ],
  ];
  try {
    for (const take of takers) {
      await Deno.remove(hostage).catch(() => {});
      const took = take.length ? await run("setpriv", [...nobody, ...take]) : null;
      assert.equal(took?.code ?? 0, 0, took?.stderr);
      const r = await runDriver(v, ["--password", "secret", inTmp, "mapi"]);
      assert.equal(r.kv.auth, "PAM_SERVICE_ERR", `${take.join(" ")}: ${r.stdout}`);
      assert.deepEqual(messages(r, LOG_ERR), [
        `resident helper ${hostage} not trusted: directory /tmp is sticky but writable by group ` +
        "or others: anyone could take the socket's name while no daemon listens; nothing sent; " +
        "user=alice result=PAM_SERVICE_ERR",
      ]);
    }
  } finally {
    await Deno.remove(hostage).catch(() => {});
  }
  // serve will not listen there either.
  const serve = await run(helper, ["serve", "--socket", hostage]);
  assert.equal(serve.code, 1, serve.stderr);
  assert.match(serve.stderr, /would not trust a socket in \/tmp: \/tmp: owner root, mode 1777: /);

  // A trusted directory: while the daemon is stopped, nobody cannot take the name; the module
  // starts the helper, and the daemon starts again.
  const sockDir = await daemonDir();
  const socket = `${sockDir}/d.sock`;
  const conf = await service(dir, helper, socket, url);
  const decidedBy = async (pid: number | null) => {
    const r = await runDriver(v, ["--password", "secret", conf, "mapi"]);
    assert.equal(r.kv.auth, "PAM_SUCCESS", r.stdout);
    const want = pid === null
      ? `debug: no resident helper at ${socket} (No such file or directory); starting the helper`
      : `debug: resident helper ${socket} (pid ${pid}) answered`;
    assert.ok(messages(r, LOG_DEBUG).some((m) => m.startsWith(want)), r.stdout);
  };
  let d = await startDaemon({ helper, dir: sockDir, socket });
  await decidedBy(d.pid);
  await d.stop();
  for (const take of takers.slice(1)) {
    const r = await run("setpriv", [...nobody, ...take.map((a) => (a === hostage ? socket : a))]);
    assert.notEqual(r.code, 0, `${take[0]} as nobody succeeded`);
    assert.match(r.stderr, /Permission denied/);
  }
  await decidedBy(null);
  d = await startDaemon({ helper, dir: sockDir, socket });
  try {
    await decidedBy(d.pid);
  } finally {
    await d.stop();
  }
});
