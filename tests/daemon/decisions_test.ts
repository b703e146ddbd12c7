// The resident helper decides exactly as --pam does: the same request gives the same reply, byte
// for byte, from `pam_mapi_helper --pam` (a process per login) and from `serve`, against the
// Kopano-compatible server over TCP, TLS and the UNIX socket: right and wrong passwords, features,
// quiet, a server down, failover, the file:// guard, bad arguments, unreadable CA files, invalid
// credentials and malformed requests.
import assert from "node:assert/strict";
import { KopanoSim, startKopanoSim } from "../kopano_sim/mod.ts";
import { pamRequest, runPam } from "../lib/helper.ts";
import {
  ask,
  type Daemon,
  HELPER,
  login,
  simAllTransports,
  type SimWorld,
  startDaemon,
} from "./lib.ts";

interface World {
  all: SimWorld;
  old: KopanoSim;
  daemon: Daemon;
  down: string;
}

async function world(): Promise<World> {
  const all = await simAllTransports({ disabledFeatures: "imap mobile" });
  // A server too old to honour NO_UID_AUTH, that lets a root caller in on the UNIX socket.
  const old = await startKopanoSim({ listen: [], unix: `${all.dir}/old.sock`, version: "7.1.0" });
  // A port nobody listens on.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const down = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}/kopano`;
  l.close();
  const daemon = await startDaemon();
  return { all, old, daemon, down };
}

async function dispose(w: World) {
  await w.daemon.stop();
  await w.old.close();
  await w.all[Symbol.asyncDispose]();
}

/** The same bytes to --pam (the built helper) and to the daemon: the replies must be identical. */
async function same(w: World, request: string, what: string): Promise<string> {
  const viaPam = await runPam(request, { helper: HELPER, clearEnv: true, env: {} });
  assert.equal(viaPam.code, 0, viaPam.stderr);
  const viaDaemon = await ask(w.daemon.socket, request);
  assert.equal(viaDaemon.end, "eof", what);
  assert.equal(viaDaemon.text, viaPam.stdout, what);
  return viaDaemon.text;
}

Deno.test("serve decides as --pam: the same reply for the same request", async () => {
  const w = await world();
  try {
    const [tcp] = w.all.args.tcp;
    const tls = w.all.args.tls;
    const [unix] = w.all.args.unix;
    const cases: [string, string[], string, string, RegExp][] = [
      ["alice", [tcp], "secret", "PAM_SUCCESS", /reason="logon accepted"/],
      ["alice", tls, "secret", "PAM_SUCCESS", /reason="logon accepted"/],
      ["alice", [unix], "secret", "PAM_SUCCESS", /reason="logon accepted"/],
      ["alice", [tcp], "wrong", "PAM_AUTH_ERR", /reason="logon refused"/],
      ["alice", tls, "wrong", "PAM_AUTH_ERR", /reason="logon refused"/],
      ["nobody", [unix], "secret", "PAM_AUTH_ERR", /reason="logon refused"/],
      ["alice", [tcp, "service=pop3"], "secret", "PAM_SUCCESS", /feature=pop3/],
      ["alice", [tcp, "service=imap|mobile"], "secret", "PAM_AUTH_ERR", /feature not enabled/],
      ["alice", [tcp, "quiet"], "wrong", "PAM_AUTH_ERR", /^$/],
      ["alice", [`socket=${w.down}`], "secret", "PAM_AUTHINFO_UNAVAIL", /connection refused/],
      [
        "alice",
        [`socket=${w.down}`, "ignore_authinfo_unavail"],
        "secret",
        "PAM_IGNORE",
        /server unavailable/,
      ],
      ["alice", [`socket=${w.down}`, tcp], "secret", "PAM_SUCCESS", /logon accepted/],
      [
        "alice",
        [`socket=${w.old.urls.unix[0]}`],
        "wrong",
        "PAM_AUTHINFO_UNAVAIL",
        /server too old/,
      ],
      ["alice", [tcp, "bogus"], "secret", "PAM_SERVICE_ERR", /unknown module argument "bogus"/],
      ["alice", [tcp, "daemon=relative"], "secret", "PAM_SERVICE_ERR", /daemon="relative"/],
      [
        "alice",
        [tls[0], `cafile=${w.all.dir}/missing.pem`],
        "secret",
        "PAM_SERVICE_ERR",
        /configuration error: cannot read cafile=.*NotFound/,
      ],
      [
        "alice",
        [tls[0], `cafile=${w.all.dir}`],
        "secret",
        "PAM_SERVICE_ERR",
        /is not a regular file/,
      ],
      ["alice", [tcp], "", "PAM_AUTH_ERR", /reason="empty password"/],
      ["ali\nce", [tcp], "secret", "PAM_AUTH_ERR", /invalid user name \(control characters\)/],
    ];
    for (const [user, args, password, result, re] of cases) {
      const what = `${user} ${args.join(" ")} ${password}`;
      const req = pamRequest({ user, password, args: [...args, "timeout=3"], rhost: "192.0.2.7" });
      const reply = JSON.parse(await same(w, req, what));
      assert.equal(reply.result, result, what);
      const lines = reply.log.map((l: { message: string }) => l.message).join("\n");
      assert.match(lines, re, what);
      assert.ok(!lines.includes("secret"), "never the password");
    }
    // Malformed requests, as --pam answers them.
    const valid = pamRequest({ user: "alice", password: "secret", args: [tcp] });
    for (
      const bad of [
        "",
        "hello",
        '{"v":2}',
        valid.replace('"v":1', '"v":1,"v":1'),
        valid.slice(0, 40),
        "x".repeat(70_000),
        '{"v":1,"query":"status"}', // a status query without its touch is not one
        new TextDecoder().decode(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
      ]
    ) {
      const reply = JSON.parse(await same(w, bad, bad.slice(0, 40)));
      assert.equal(reply.result, "PAM_SERVICE_ERR");
      assert.match(reply.log[0].message, /^malformed request from pam_mapi\.so: /);
    }
    assert.equal(w.all.sim.openSessions(), 0, "every session logged off");
    assert.equal(w.old.openSessions(), 0);
  } finally {
    await dispose(w);
  }
});

Deno.test("serve decides as --pam: debug lines too, a reused connection saying so", async () => {
  const w = await world();
  try {
    const args = [...w.all.args.tls, "debug", "service=pop3"];
    const first = await login(w.daemon.socket, { user: "alice", password: "secret", args });
    const second = await login(w.daemon.socket, { user: "alice", password: "secret", args });
    const pam = await runPam({ user: "alice", password: "secret", args }, { helper: HELPER });
    assert.deepEqual(first, pam.reply, "a first login opens its connection as --pam does");
    const steps = (r: typeof first) => r.log.map((l) => l.message.replace(/^socket=\S+ /, ""));
    const port = new URL(w.all.sim.urls.https[0]).port;
    assert.deepEqual(steps(second).slice(0, 1), [
      `connect: reusing a kept-alive connection to 127.0.0.1 port ${port}`,
    ]);
    // After that first step, the same steps and the same outcome.
    assert.deepEqual(steps(second).slice(1), steps(first).slice(2)); // (connect, tls) -> reuse
    assert.equal(second.result, "PAM_SUCCESS");
  } finally {
    await dispose(w);
  }
});

Deno.test("serve caches nothing: every login asks the server, a success is not remembered", async () => {
  await using sim = await startKopanoSim();
  await using d = await startDaemon();
  const args = [`socket=${sim.urls.http[0]}`, "timeout=2"];
  const go = (password: string) => login(d.socket, { user: "alice", password, args });
  assert.equal((await go("secret")).result, "PAM_SUCCESS");
  assert.equal((await go("wrong")).result, "PAM_AUTH_ERR", "right a moment ago, wrong now");
  assert.equal((await go("secret")).result, "PAM_SUCCESS");
  // Kopano goes down: the kept connection is dropped, new ones refused. Nothing to answer from.
  await sim.setFaults([{ kind: "refuse" }, { kind: "drop" }]);
  const down = await go("secret");
  assert.equal(down.result, "PAM_AUTHINFO_UNAVAIL");
  assert.match(down.log.at(-1)!.message, /connect failed: connection refused/);
  await sim.clearFaults();
  assert.equal((await go("secret")).result, "PAM_SUCCESS");
  assert.deepEqual(
    sim.requests.filter((r) => r.method === "logon").map((r) => r.outcome),
    ["reply", "reply", "reply", "injected: drop", "reply"],
    "each login sent its own logon",
  );
});
