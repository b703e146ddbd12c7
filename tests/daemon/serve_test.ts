// `pam_mapi_helper serve` starting and stopping: it refuses a socket path the shim would not
// trust, a path that is not a socket and a socket a daemon answers on; it replaces a stale socket;
// it makes its socket connectable by anyone; it stops on SIGTERM or SIGINT after finishing the
// requests in progress, removes its socket and exits 0; its log names no user.
import assert from "node:assert/strict";
import { pamRequest } from "../lib/helper.ts";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { AS_NOBODY, ask, login, runHelper, startDaemon, trustedDir } from "./lib.ts";

/** Runs `serve` expecting it not to start; returns its exit code and log. */
async function refused(args: string[], wrap: string[] = []) {
  const r = await runHelper(["serve", ...args], wrap);
  return { code: r.code, log: r.stderr, stdout: r.stdout };
}

Deno.test("serve: listens with mode 0600 in a trusted directory; logs one start line", async () => {
  await using d = await startDaemon();
  const info = await Deno.lstat(d.socket);
  assert.ok(info.isSocket);
  assert.equal(info.mode! & 0o777, 0o600);
  assert.equal(info.uid, 0);
  assert.match(
    d.log(),
    /^pam_mapi_helper serve: started: version \d+\.\d+\.\d+, pid \d+, uid 0, socket \S+helper\.sock \(mode 0600\), at most 128 requests in progress, 2 s and 65536 bytes per request, 64 KiB per login and 16 MiB shared for Kopano replies\n$/,
  );
});

Deno.test("serve: --socket-mode lets the daemon's group or everyone connect, nothing else", async () => {
  for (const [mode, bits] of [["0660", 0o660], ["0666", 0o666]] as const) {
    const dir = await trustedDir();
    try {
      await using d = await startDaemon({
        dir,
        args: ["--socket", `${dir}/helper.sock`, "--socket-mode", mode],
      });
      assert.equal((await Deno.lstat(d.socket)).mode! & 0o777, bits);
      assert.match(d.log(), new RegExp(`\\(mode ${mode}\\)`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const dir = await trustedDir();
  try {
    for (const bad of ["0777", "666", "0644", "", "rw"]) {
      const r = await refused(["--socket", `${dir}/helper.sock`, "--socket-mode", bad]);
      assert.equal(r.code, 3, bad);
      assert.match(r.log, /--socket-mode "[^"]*": one of 0600, 0660, 0666/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: refuses bad usage, a missing or untrusted directory, a non-socket, a live daemon", async () => {
  const dir = await trustedDir();
  try {
    for (
      const args of [["--bogus"], ["--socket"], ["--socket", "rel.sock"], [
        "--socket",
        `/${"x".repeat(120)}`,
      ]]
    ) {
      const r = await refused(args);
      assert.notEqual(r.code, 0, args.join(" "));
      assert.match(r.log, /^pam_mapi_helper serve: cannot start: /, args.join(" "));
    }
    let r = await refused(["--socket", `${dir}/none/helper.sock`]);
    assert.equal(r.code, 1);
    assert.match(
      r.log,
      /directory \S+\/none does not exist \(systemd's RuntimeDirectory= creates it; by hand: install -d -m 0755 -o pam_mapi \S+\/none\)/,
    );

    await Deno.mkdir(`${dir}/gw`);
    await Deno.chmod(`${dir}/gw`, 0o775);
    r = await refused(["--socket", `${dir}/gw/helper.sock`]);
    assert.equal(r.code, 1);
    assert.match(
      r.log,
      /would not trust a socket in \S+\/gw: \S+\/gw: owner root, mode 0775: writable by group or others/,
    );

    await Deno.mkdir(`${dir}/nobody`);
    await Deno.chown(`${dir}/nobody`, 65534, 65534);
    r = await refused(["--socket", `${dir}/nobody/helper.sock`]);
    assert.equal(r.code, 1);
    assert.match(r.log, /owner uid 65534, mode 0755: not owned by root or pam_mapi/);

    await Deno.writeTextFile(`${dir}/file.sock`, "not a socket");
    r = await refused(["--socket", `${dir}/file.sock`]);
    assert.equal(r.code, 1);
    assert.match(r.log, /file\.sock exists and is not a socket/);
    assert.equal(await Deno.readTextFile(`${dir}/file.sock`), "not a socket", "left alone");

    await using live = await startDaemon({ dir });
    r = await refused(["--socket", live.socket]);
    assert.equal(r.code, 1);
    assert.match(r.log, /a daemon already answers on /);
    assert.ok((await Deno.lstat(live.socket)).isSocket, "the live daemon's socket is untouched");
    assert.equal(r.stdout, "", "nothing on stdout");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: refuses to run as a user pam_mapi.so would not trust (nobody)", async () => {
  const dir = await trustedDir();
  try {
    // Only root or pam_mapi can create a socket in a directory the module trusts; nobody with
    // CAP_DAC_OVERRIDE can too, so that only the daemon's own uid is in question. Its socket would
    // belong to nobody.
    const wrap = [...AS_NOBODY, "--inh-caps=+dac_override", "--ambient-caps=+dac_override"];
    const r = await refused(["--socket", `${dir}/helper.sock`], wrap);
    assert.equal(r.code, 1);
    assert.match(
      r.log,
      /cannot start: running as uid 65534: pam_mapi\.so trusts a daemon only when it runs as root or pam_mapi/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no socket left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: refuses a socket below a directory others may write to, sticky or not, anywhere on the path", async () => {
  // While no daemon listened, anyone could take a free name in a sticky directory such as /tmp
  // (a file, a socket of her own): every login naming it failed, and serve refused to start again.
  const hostage = `/tmp/pam_mapi_hostage_${crypto.randomUUID()}.sock`;
  await using _gone = { [Symbol.asyncDispose]: () => Deno.remove(hostage).catch(() => {}) };
  let r = await refused(["--socket", hostage]);
  assert.equal(r.code, 1, r.log);
  assert.match(
    r.log,
    /^pam_mapi_helper serve: cannot start: pam_mapi\.so would not trust a socket in \/tmp: \/tmp: owner root, mode 1777: sticky but writable by group or others: anyone could take the socket's name while no daemon listens \(/,
  );
  assert.equal(await Deno.lstat(hostage).catch(() => null), null, "nothing made there");
  const dir = await trustedDir();
  try {
    for (const mode of [0o1777, 0o1770, 0o1775]) {
      await Deno.mkdir(`${dir}/shared`);
      await Deno.chmod(`${dir}/shared`, mode);
      await Deno.mkdir(`${dir}/shared/run`, { mode: 0o755 });
      r = await refused(["--socket", `${dir}/shared/run/helper.sock`]);
      assert.equal(r.code, 1, r.log);
      assert.match(
        r.log,
        new RegExp(
          `would not trust a socket in \\S+/shared/run: \\S+/shared: owner root, mode ${
            mode.toString(8).padStart(4, "0")
          }: sticky but writable by group or others`,
        ),
      );
      await Deno.remove(`${dir}/shared`, { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: a stale socket (nobody listening) is replaced", async () => {
  const dir = await trustedDir();
  try {
    const stale = Deno.listen({ transport: "unix", path: `${dir}/helper.sock` });
    // Keep the file but stop listening: link it aside, close (Deno unlinks), link back.
    await Deno.link(`${dir}/helper.sock`, `${dir}/keep`);
    stale.close();
    await new Promise((r) => setTimeout(r, 50));
    await Deno.rename(`${dir}/keep`, `${dir}/helper.sock`);
    await assert.rejects(
      () => Deno.connect({ transport: "unix", path: `${dir}/helper.sock` }),
      Deno.errors.ConnectionRefused,
    );
    await using d = await startDaemon({ dir });
    const r = await ask(d.socket, "x");
    assert.match(r.text, /"result":"PAM_SERVICE_ERR"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`serve: ${signal} with logins in flight: they finish, the socket goes, exit 0`, async () => {
    await using sim = await startKopanoSim({
      faults: [{ kind: "delay", value: 800, method: "logon" }],
    });
    const d = await startDaemon();
    const args = [`socket=${sim.urls.http[0]}`, "timeout=5"];
    const inFlight = Array.from(
      { length: 10 },
      () => login(d.socket, { user: "alice", password: "secret", args }),
    );
    await new Promise((r) => setTimeout(r, 300)); // all ten accepted and waiting for the server
    const stopping = d.stop(signal);
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(
      () => Deno.connect({ transport: "unix", path: d.socket }),
      Deno.errors.NotFound,
      "no longer accepting: the socket is gone at once",
    );
    const replies = await Promise.all(inFlight);
    assert.deepEqual(replies.map((r) => r.result), Array(10).fill("PAM_SUCCESS"));
    const { code, log } = await stopping;
    assert.equal(code, 0);
    assert.match(
      log,
      new RegExp(`${signal}: stopped accepting; finishing 10 requests in progress\n`),
    );
    assert.match(log, /stopped: 10 logins \(10 PAM_SUCCESS, 0 PAM_AUTH_ERR/);
    assert.equal(sim.openSessions(), 0, "every session logged off before the exit");
    // Never a user name or a password in the daemon's own log.
    assert.ok(!/alice|secret/.test(log), log);
    assert.equal(log.trim().split("\n").length, 3, "start, stop accepting, stopped");
  });
}

Deno.test("serve: SIGTERM amid a stream of logins: each is answered, or finds no socket; none reset", async () => {
  // A connection queued but not yet accepted when a daemon closes its listener is reset, and the
  // module does not fall back after sending (protocol.md §7.2): that login would fail. The daemon
  // removes its socket first and answers what was queued. 32 clients, logging in until the socket
  // is gone, around each of two SIGTERMs (a listener closed at once reset about 8 per stop).
  await using sim = await startKopanoSim({ listen: ["127.0.0.1:0"] });
  const args = [`socket=${sim.urls.http[0]}`];
  for (let round = 0; round < 2; round++) {
    const d = await startDaemon();
    const ends: string[] = [];
    let answered = 0;
    const client = async () => {
      for (;;) {
        let r;
        try {
          r = await ask(d.socket, pamRequest({ user: "alice", password: "secret", args }));
        } catch (e) {
          ends.push((e as Error).name); // no socket to connect to: the module starts the helper
          return;
        }
        if (r.end !== "eof" || !r.text.includes('"result":"PAM_SUCCESS"')) {
          ends.push(`cut short: ${JSON.stringify(r)}`);
          return;
        }
        answered++;
      }
    };
    const clients = Array.from({ length: 32 }, client);
    await new Promise((r) => setTimeout(r, 300));
    const { code, log } = await d.stop("SIGTERM");
    await Promise.all(clients);
    assert.equal(code, 0, log);
    assert.ok(answered > 0, "no login before the stop");
    assert.deepEqual([...new Set(ends)], ["NotFound"]);
    assert.match(log, new RegExp(`stopped: ${answered} logins \\(${answered} PAM_SUCCESS`));
  }
});

Deno.test("serve: stops promptly when idle, and leaves its directory as it found it", async () => {
  const dir = await trustedDir();
  try {
    const d = await startDaemon({ dir });
    const { code, ms } = await d.stop();
    assert.equal(code, 0);
    assert.ok(ms < 2000, `stopped in ${ms} ms`);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
