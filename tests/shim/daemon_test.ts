// The module's client of the resident helper (docs/protocol.md 7), through the real libpam:
// when it falls back to starting the helper, when it refuses to send anything (the trust check),
// and how every way a trusted daemon can fail ends in PAM_SERVICE_ERR, never in PAM_SUCCESS.
// The fake daemon (fake_daemon.c) serves the fake helper per connection, or records what it was
// sent and answers PAM_SUCCESS: a trap only an untrusting module escapes.
import assert from "node:assert/strict";
import {
  assertThreadResults,
  authWithLateSend,
  build,
  daemonDir,
  helperDir,
  helperModes,
  line,
  LOG_DEBUG,
  LOG_ERR,
  pamConf,
  runDriver,
  runOk,
  startFakeDaemon,
  SVCACCT,
  SVCACCT_SOCKET,
  type Variant,
  VARIANTS,
} from "./lib.ts";

const tail = (user: string) => `; user=${user} result=PAM_SERVICE_ERR`;

/** A pam.d service "mapi" with the fake helper and daemon=socket (or the module's default). */
async function service(v: Variant, dir: string, helper: string, daemon: string | null) {
  const args = [`helper=${helper}`, "timeout=1", "debug", ...(daemon ? [`daemon=${daemon}`] : [])];
  return await pamConf(dir, { mapi: [line(v, "auth", args)] });
}

/** What the recording trap saw: one "bytes=N" line per connection it accepted. */
async function recorded(file: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(file)).trim().split("\n").filter((l) => l);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

const errors = (r: { logs: Array<{ priority: number; message: string }> }) =>
  r.logs.filter((l) => l.priority === LOG_ERR).map((l) => l.message);

for (const v of VARIANTS) {
  /** One login as user with the right password for the fake helper. */
  const login = async (conf: string, user = "alice", driverArgs: string[] = []) =>
    await runDriver(v, [...driverArgs, "--user", user, "--password", `pw-${user}`, conf, "mapi"]);

  Deno.test(`${v.name}: no daemon at the path: the helper is started, with a debug line`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const sockDir = await daemonDir();
    for (const socket of [`${sockDir}/none.sock`, `${sockDir}/missing-dir/helper.sock`]) {
      const conf = await service(v, dir, helper, socket);
      const r = await login(conf);
      assert.equal(r.kv.auth, "PAM_SUCCESS");
      assert.ok(
        r.logs.some((l) =>
          l.priority === LOG_DEBUG &&
          l.message.startsWith(`debug: no resident helper at ${socket} (`) &&
          l.message.endsWith("No such file or directory); starting the helper")
        ),
        r.logs.map((l) => l.message).join("\n"),
      );
      assert.equal(errors(r).length, 0);
    }
    assert.deepEqual(await helperModes(dir), ["fork", "fork"]);
  });

  Deno.test(`${v.name}: a stale socket (daemon gone) falls back; a running one is used`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const socket = `${await daemonDir()}/d.sock`;
    const conf = await service(v, dir, helper, socket);
    const pid = await startFakeDaemon(socket, helper);
    let r = await login(conf);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    // SIGKILL leaves the socket file behind: connect() is refused.
    Deno.kill(pid, "SIGKILL");
    await new Promise((res) => setTimeout(res, 100));
    r = await login(conf);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    assert.ok(
      r.logs.some((l) => l.message.endsWith("(connect: Connection refused); starting the helper")),
    );
    assert.deepEqual(await helperModes(dir), ["daemon", "fork"]);
  });

  /** The trap: a daemon that answers PAM_SUCCESS to anything, recording what it received. */
  const untrusted = async (
    socketFor: (dir: string) => Promise<{ socket: string; record: string }>,
    why: RegExp,
  ) => {
    await build();
    const { dir, helper } = await helperDir();
    const { socket, record } = await socketFor(await daemonDir());
    const conf = await service(v, dir, helper, socket);
    const r = await login(conf);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR", r.stdout);
    const errs = errors(r);
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(errs[0], new RegExp(`^resident helper ${socket} not trusted: `));
    assert.match(errs[0], why);
    assert.ok(errs[0].endsWith(`; nothing sent${tail("alice")}`), errs[0]);
    assert.deepEqual(await helperModes(dir), [], "no helper started either");
    // The trap saw no request byte (at most an empty connection, for the peer check).
    for (const l of await recorded(record)) assert.equal(l, "bytes=0");
    return r;
  };

  /** A directory that nobody may write to (for the recording file of a daemon run as nobody). */
  const nobodyDir = async () => {
    const d = await daemonDir();
    await runOk("chown", ["nobody:nogroup", d]);
    return d;
  };

  Deno.test(`${v.name}: a daemon running as an ordinary user gets no byte (SO_PEERCRED)`, async () => {
    await untrusted(async (dir) => {
      // Made so that only the peer check can catch it: nobody binds the socket in a directory
      // that is briefly nobody's, then root takes the directory and the socket file back.
      const sockDir = `${dir}/run`;
      await Deno.mkdir(sockDir, { mode: 0o755 });
      await runOk("chown", ["nobody:nogroup", sockDir]);
      const record = `${await nobodyDir()}/record`;
      const socket = `${sockDir}/d.sock`;
      await startFakeDaemon(socket, "/bin/false", { record, user: "nobody" });
      await runOk("chown", ["root:root", sockDir, socket]);
      return { socket, record };
    }, /the process listening on \S+ \(pid \d+\) runs as uid 65534, not root or pam_mapi/);
  });

  Deno.test(`${v.name}: a socket in a directory others can write is not used`, async () => {
    for (const mode of [0o775, 0o757, 0o777]) {
      const r = await untrusted(async (dir) => {
        const sockDir = `${dir}/run`;
        await Deno.mkdir(sockDir);
        await Deno.chmod(sockDir, mode);
        const record = `${dir}/record`;
        const socket = `${sockDir}/d.sock`;
        await startFakeDaemon(socket, "/bin/false", { record });
        return { socket, record };
      }, /directory \S+\/run is writable by group or others/);
      assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
    }
  });

  Deno.test(`${v.name}: the hostage: daemon= below a sticky directory is refused, whatever is there`, async () => {
    // While no daemon listens, anyone may take a free name in /tmp. The module refused only what
    // it found there, so nothing meant "start the helper" and a local user's file or socket meant
    // "every login fails": she held the logins hostage. Now the path itself is refused, always.
    const hostage = `/tmp/pam_mapi_hostage_${crypto.randomUUID()}.sock`;
    const why =
      /directory \/tmp is sticky but writable by group or others: anyone could take the socket's name while no daemon listens/;
    const asNobody = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
    try {
      await untrusted(() => Promise.resolve({ socket: hostage, record: "/nonexistent" }), why);
      await untrusted(async () => {
        await runOk("setpriv", [...asNobody, "touch", hostage]);
        return { socket: hostage, record: "/nonexistent" };
      }, why);
      await untrusted(async () => {
        await Deno.remove(hostage);
        const record = `${await nobodyDir()}/record`;
        await startFakeDaemon(hostage, "/bin/false", { record, user: "nobody" });
        return { socket: hostage, record };
      }, why);
    } finally {
      await Deno.remove(hostage).catch(() => {});
    }
    // Any directory on the path counts, not only the socket's own; group-writable too.
    for (const mode of [0o1777, 0o1770]) {
      await untrusted(async (dir) => {
        await Deno.mkdir(`${dir}/shared`);
        await Deno.chmod(`${dir}/shared`, mode);
        await Deno.mkdir(`${dir}/shared/run`, { mode: 0o755 });
        const record = `${dir}/record`;
        const socket = `${dir}/shared/run/d.sock`;
        await startFakeDaemon(socket, "/bin/false", { record }); // root's own daemon
        return { socket, record };
      }, /directory \S+\/shared is sticky but writable by group or others/);
    }
  });

  Deno.test(`${v.name}: a socket or directory owned by an ordinary user is not used`, async () => {
    await untrusted(async (dir) => {
      const sockDir = `${dir}/run`;
      await Deno.mkdir(sockDir, { mode: 0o755 });
      await runOk("chown", ["nobody:nogroup", sockDir]);
      const record = `${await nobodyDir()}/record`;
      const socket = `${sockDir}/d.sock`;
      await startFakeDaemon(socket, "/bin/false", { record, user: "nobody" });
      return { socket, record };
    }, /directory \S+\/run is not owned by root or pam_mapi/);
    await untrusted(async (dir) => {
      const record = `${dir}/record`;
      const socket = `${dir}/d.sock`;
      await startFakeDaemon(socket, "/bin/false", { record });
      await runOk("chown", ["nobody:nogroup", socket]);
      return { socket, record };
    }, /socket \S+ is not owned by root or pam_mapi/);
  });

  Deno.test(`${v.name}: a file that is not a socket, or a path through a user's symlink, is not used`, async () => {
    await untrusted(async (dir) => {
      const socket = `${dir}/d.sock`;
      await Deno.writeTextFile(socket, "");
      return { socket, record: `${dir}/record` };
    }, /\S+\/d\.sock is not a socket/);
    // A root-owned daemon, reached through a symlink that nobody could re-point at another.
    await untrusted(async (dir) => {
      const record = `${dir}/record`;
      const real = `${dir}/d.sock`;
      await startFakeDaemon(real, "/bin/false", { record });
      const userDir = await nobodyDir();
      await runOk("setpriv", [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "ln",
        "-s",
        real,
        `${userDir}/link.sock`,
      ]);
      return { socket: `${userDir}/link.sock`, record };
    }, /directory \S+ is not owned by root or pam_mapi/);
  });

  Deno.test(`${v.name}: a symlink that only root could change leads to a trusted daemon`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const sockDir = await daemonDir();
    await Deno.mkdir(`${sockDir}/run`, { mode: 0o755 });
    await startFakeDaemon(`${sockDir}/run/d.sock`, helper);
    // An absolute and a relative link, and a directory link with ".." in the path after it.
    await Deno.symlink(`${sockDir}/run`, `${sockDir}/run-link`);
    await Deno.symlink("run/d.sock", `${sockDir}/rel.sock`);
    for (
      const path of [
        `${sockDir}/run-link/d.sock`,
        `${sockDir}/rel.sock`,
        `${sockDir}/run-link/../run/d.sock`,
      ]
    ) {
      const r = await login(await service(v, dir, helper, path));
      assert.equal(r.kv.auth, "PAM_SUCCESS", path);
    }
    assert.deepEqual(await helperModes(dir), ["daemon", "daemon", "daemon"]);
  });

  /** One login that a trusted daemon fails; the error line must match. */
  const daemonFails = async (user: string, why: RegExp, opts: { closeFirst?: boolean } = {}) => {
    await build();
    const { dir, helper } = await helperDir();
    const socket = `${await daemonDir()}/d.sock`;
    await startFakeDaemon(socket, helper, opts);
    const conf = await service(v, dir, helper, socket);
    const start = performance.now();
    const r = await login(conf, user);
    const seconds = (performance.now() - start) / 1000;
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR", `${user}: ${r.stdout}`);
    const errs = errors(r);
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(errs[0], new RegExp(`^resident helper ${socket} \\(pid \\d+\\)`));
    assert.match(errs[0], why);
    assert.ok(errs[0].endsWith(tail(user)), errs[0]);
    assert.equal(r.kv.children, "0");
    assert.equal(r.kv.zombies, "0");
    assert.deepEqual(
      (await helperModes(dir)).filter((m) => m === "fork"),
      [],
      "no fallback after the request was sent",
    );
    return { r, seconds };
  };

  Deno.test(`${v.name}: a trusted daemon that answers garbage, too much or half a reply`, async () => {
    await daemonFails("garbage", /sent a malformed reply \(invalid JSON\)/);
    await daemonFails("unknown", /sent a malformed reply \(unknown result\)/);
    await daemonFails("half", /sent a malformed reply \(/);
    await daemonFails("empty", /: the daemon closed the connection without a reply/);
    const { seconds } = await daemonFails("big", /: reply larger than 65536 bytes/);
    assert.ok(seconds < 2.5, `took ${seconds} s`);
  });

  Deno.test(`${v.name}: a trusted daemon that hangs costs the deadline, then PAM_SERVICE_ERR`, async () => {
    // timeout=1, no socket= -> 1 x 1 + 2 = 3 s, as for a started helper.
    const { seconds } = await daemonFails("hang", /: no complete reply in time/);
    assert.ok(seconds >= 3 && seconds < 4.5, `took ${seconds} s`);
  });

  Deno.test(`${v.name}: the daemon's deadline is timeout x sockets + 2 s`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const socket = `${await daemonDir()}/d.sock`;
    await startFakeDaemon(socket, helper);
    const conf = await service(v, dir, helper, socket);
    let r = await login(conf, "slow-2500");
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    r = await login(conf, "slow-3500");
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
    const two = await pamConf(dir, {
      two: [line(v, "auth", [
        `helper=${helper}`,
        `daemon=${socket}`,
        "timeout=1",
        "socket=http://192.0.2.1/",
        "socket=http://192.0.2.2/",
      ])],
    });
    r = await runDriver(v, ["--user", "slow-3500", "--password", "pw-slow-3500", two, "two"]);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
  });

  Deno.test(`${v.name}: a daemon that closes unread cannot raise SIGPIPE in the host`, async () => {
    // Delayed, the module's send finds the connection closed by the daemon.
    await build();
    const { dir, helper } = await helperDir();
    const socket = `${await daemonDir()}/d.sock`;
    await startFakeDaemon(socket, helper, { closeFirst: true });
    const conf = await service(v, dir, helper, socket);
    assert.match(await authWithLateSend(v, conf), /^auth=PAM_SERVICE_ERR$/m);
  });

  Deno.test(`${v.name}: eight threads at once through the daemon; no fd, no zombie left`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const socket = `${await daemonDir()}/d.sock`;
    await startFakeDaemon(socket, helper);
    const conf = await pamConf(dir, {
      mapi: [line(v, "auth", [`helper=${helper}`, `daemon=${socket}`, "timeout=5"])],
    });
    const r = await runDriver(v, ["--threads", "8", "--iterations", "10", conf, "mapi"], {
      capture: false,
    });
    assertThreadResults(r.stdout, 8, 10);
    const loops = v.name === "plain" ? 500 : 200;
    const l = await runDriver(
      v,
      ["--loops", String(loops), "--password", "pw-alice", conf, "mapi"],
      {
        capture: false,
      },
    );
    assert.match(l.stdout, new RegExp(`loops=${loops} success=${loops} other=0`));
    assert.equal(l.kv.fds_after, l.kv.fds_before, "no descriptor leaked");
    assert.equal(l.kv.children, "0");
    assert.equal(l.kv.zombies, "0");
    assert.deepEqual(new Set(await helperModes(dir)), new Set(["daemon"]));
  });
}

Deno.test("plain: a daemon running as the service account is trusted; the default socket is used", async () => {
  // SVCACCT is built with DAEMON_USER=daemon (uid 1) and daemon= defaulting to SVCACCT_SOCKET.
  await build();
  const { dir, helper } = await helperDir();
  // The account's own socket directory, as systemd's RuntimeDirectory= makes it; the recording
  // trap answers PAM_SUCCESS to whoever trusts it.
  const sockDir = await daemonDir();
  await runOk("chown", ["daemon:daemon", sockDir]);
  const socket = `${sockDir}/d.sock`;
  const record = `${sockDir}/record`;
  await startFakeDaemon(socket, "/bin/false", { record, user: "daemon" });
  const conf = await pamConf(dir, {
    mapi: [line(SVCACCT, "auth", [`helper=${helper}`, `daemon=${socket}`])],
    plain: [line(VARIANTS[0], "auth", [`helper=${helper}`, `daemon=${socket}`])],
    dflt: [line(SVCACCT, "auth", [`helper=${helper}`, "debug"])],
  }, { defaultSocketIsOurs: "dflt is SVCACCT's compiled-in SVCACCT_SOCKET, in TEST_BUILD" });
  let r = await runDriver(SVCACCT, ["--password", "pw-alice", conf, "mapi"]);
  assert.equal(r.kv.auth, "PAM_SUCCESS", r.logs.map((l) => l.message).join("\n"));
  assert.match((await recorded(record))[0], /^bytes=[1-9]\d+$/);
  // A module whose service account is pam_mapi (no such account here) trusts root only.
  r = await runDriver(VARIANTS[0], ["--password", "pw-alice", conf, "plain"]);
  assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
  assert.match(errors(r)[0], /directory \S+ is not owned by root or pam_mapi/);
  // Without daemon=, the compiled-in socket: absent here, so the helper is started ...
  await Deno.remove(SVCACCT_SOCKET).catch(() => {});
  r = await runDriver(SVCACCT, ["--password", "pw-alice", conf, "dflt"]);
  assert.equal(r.kv.auth, "PAM_SUCCESS");
  assert.ok(
    r.logs.some((l) => l.message.startsWith(`debug: no resident helper at ${SVCACCT_SOCKET} (`)),
  );
  // ... and used once a daemon listens there.
  await startFakeDaemon(SVCACCT_SOCKET, helper);
  r = await runDriver(SVCACCT, ["--password", "pw-alice", conf, "dflt"]);
  assert.equal(r.kv.auth, "PAM_SUCCESS");
  assert.ok(
    r.logs.some((l) => l.message.startsWith(`debug: resident helper ${SVCACCT_SOCKET} (pid`)),
  );
  assert.deepEqual(await helperModes(dir), ["fork", "daemon"]);
  await Deno.remove(SVCACCT_SOCKET).catch(() => {});
});
