// `pam_mapi_helper status`: the trust check of docs/protocol.md §7.2 spelled out, the daemon's
// counters, and exit statuses 0 (a trusted daemon answers), 1 (pam_mapi.so would refuse it),
// 2 (no daemon: the helper is started per login), 3 (anything else). Fakes play the attackers:
// a daemon that answers as nobody, a socket owned by nobody, a daemon that answers garbage.
import assert from "node:assert/strict";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import {
  AS_NOBODY,
  ask,
  login,
  runHelper,
  startDaemon,
  startFakeDaemon,
  trustedDir,
} from "./lib.ts";

const statusCmd = (args: string[], wrap: string[] = []) => runHelper(["status", ...args], wrap);

async function statusJson(socket: string, wrap: string[] = []) {
  const r = await statusCmd(["--socket", socket, "--json"], wrap);
  const report = JSON.parse(r.stdout);
  assert.equal(report.exit, r.code, "the JSON says the exit status");
  return report;
}

/** A status query as the fake daemons would be sent one is a valid status reply if they lie. */
/** What the daemon holds: network, read and write access; the rest given up. */
const PERMISSIONS = {
  net: "granted",
  read: "granted",
  write: "granted",
  env: "prompt",
  run: "prompt",
  ffi: "prompt",
  sys: "prompt",
  import: "prompt",
};

const FORGED = JSON.stringify({
  v: 1,
  status: { version: "0.1.0", pid: 1, uid: 0, touch: "done", logins: {} },
});

Deno.test("status: a trusted daemon, step by step, with its counters; exit 0 (also as nobody)", async () => {
  await using sim = await startKopanoSim();
  // Everyone may connect here, so that nobody can ask too (by default only root and the account).
  const dir = await trustedDir();
  await using _dir = { [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
  await using d = await startDaemon({ // stopped before the directory goes
    dir,
    args: ["--socket", `${dir}/helper.sock`, "--socket-mode", "0666"],
  });
  const args = [`socket=${sim.urls.http[0]}`];
  await login(d.socket, { user: "alice", password: "secret", args });
  await login(d.socket, { user: "alice", password: "wrong", args });
  const plain = await statusCmd(["--socket", d.socket]);
  assert.equal(plain.code, 0, plain.stdout + plain.stderr);
  const lines = plain.stdout.split("\n");
  assert.equal(lines[0], `resident helper socket ${d.socket}`);
  assert.deepEqual(lines.slice(1, 4), [
    "  ok   directory /: owner root, mode 0755",
    "  ok   directory /run: owner root, mode 0755",
    `  ok   directory ${d.dir}: owner root, mode 0755`,
  ]);
  assert.equal(lines[4], `  ok   socket    ${d.socket}: a socket, owner root, mode 0666`);
  assert.match(lines[7], new RegExp(`^  ok   peer      .*it runs as root; pid ${d.pid}$`));
  assert.match(plain.stdout, /\nverdict: pam_mapi\.so sends logins to this daemon /);
  assert.match(plain.stdout, /\n {2}logins: 1 PAM_SUCCESS, 1 PAM_AUTH_ERR, 0 PAM_AUTHINFO_UNAVAIL/);
  assert.match(
    plain.stdout,
    /\n {2}latency over the last 2 logins: p50 \d+\.\d\d ms, p95 \d+\.\d\d ms\n/,
  );
  assert.match(plain.stdout, /\n {2}Kopano connections: 1 open \(1 idle\); 1 opened and 1 reused/);
  assert.match(plain.stdout, /\nexit 0\n$/);

  // Another proof holds the socket's times for 0.5 s (protocol.md §7.4): wait it out, so that
  // this query is answered at once and counted once.
  await new Promise((r) => setTimeout(r, 600));
  const j = await statusJson(d.socket);
  assert.equal(j.verdict, "daemon");
  assert.ok(j.steps.every((s: { ok: boolean }) => s.ok));
  assert.deepEqual(j.steps.map((s: { step: string }) => s.step), [
    "directory",
    "directory",
    "directory",
    "socket",
    "connect",
    "reply",
    "peer",
  ]);
  assert.equal(j.daemon.pid, d.pid);
  assert.equal(j.daemon.uid, 0);
  assert.equal(j.daemon.touch, "done");
  assert.equal(j.daemon.status_queries, 2);
  assert.deepEqual(j.daemon.limits, { in_progress: 128, request_bytes: 65536, request_ms: 2000 });
  assert.equal(j.trusted_accounts["0"], "root");
  // It holds network, read and write access, and has given up the rest: it never runs anything.
  assert.deepEqual(j.daemon.permissions, PERMISSIONS);

  // An ordinary user can check too: the proof needs no privilege.
  const asNobody = await statusJson(d.socket, AS_NOBODY);
  assert.equal(asNobody.verdict, "daemon");
});

Deno.test("status: where the socket's mode keeps a user out, that user's logins start the helper", async () => {
  await using d = await startDaemon(); // mode 0600: root and the daemon's account only
  const j = await statusJson(d.socket, AS_NOBODY);
  assert.deepEqual([j.verdict, j.exit], ["helper", 2]);
  assert.match(j.steps.at(-1).text, /^permission denied/);
  assert.equal((await statusJson(d.socket)).verdict, "daemon", "root is let in");
});

Deno.test("status: no socket, a missing directory, a stale socket: exit 2 (the helper is started)", async () => {
  const dir = await trustedDir();
  try {
    let j = await statusJson(`${dir}/helper.sock`);
    assert.deepEqual([j.verdict, j.exit], ["helper", 2]);
    assert.equal(j.steps.at(-1).text, "does not exist");
    j = await statusJson(`${dir}/none/helper.sock`);
    assert.deepEqual([j.verdict, j.exit], ["helper", 2]);
    const plain = await statusCmd(["--socket", `${dir}/helper.sock`]);
    assert.match(
      plain.stdout,
      /verdict: no daemon answers: pam_mapi\.so starts the helper for each login/,
    );

    const stale = Deno.listen({ transport: "unix", path: `${dir}/helper.sock` });
    await Deno.link(`${dir}/helper.sock`, `${dir}/keep`);
    stale.close();
    await new Promise((r) => setTimeout(r, 50));
    await Deno.rename(`${dir}/keep`, `${dir}/helper.sock`);
    j = await statusJson(`${dir}/helper.sock`);
    assert.deepEqual([j.verdict, j.exit, j.daemon], ["helper", 2, null]);
    assert.match(j.steps.at(-1).text, /connection refused/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status: a socket in a group-writable directory is refused (exit 1), the daemon still shown", async () => {
  await using d = await startDaemon();
  await Deno.chmod(d.dir, 0o775);
  const j = await statusJson(d.socket);
  assert.deepEqual([j.verdict, j.exit], ["refused", 1]);
  const bad = j.steps.find((s: { ok: boolean }) => !s.ok);
  assert.deepEqual(bad, {
    step: "directory",
    path: d.dir,
    ok: false,
    text: "owner root, mode 0775: writable by group or others",
  });
  assert.equal(j.daemon.pid, d.pid, "a status query carries no secret: it is still asked");
  await Deno.chmod(d.dir, 0o755);
});

Deno.test("status: a daemon answering as nobody on a trusted socket is refused, however it lies (exit 1)", async () => {
  const dir = await trustedDir();
  try {
    await using fake = await startFakeDaemon(`${dir}/helper.sock`, "nobody", FORGED);
    const info = await Deno.lstat(fake.socket);
    assert.equal(info.uid, 0, "the socket is root's: check 1 passes");
    const j = await statusJson(fake.socket);
    assert.deepEqual([j.verdict, j.exit], ["refused", 1]);
    assert.ok(j.steps.slice(0, -1).every((s: { ok: boolean }) => s.ok));
    assert.equal(j.steps.at(-1).step, "peer");
    assert.match(j.steps.at(-1).text, /did not set the socket's times as asked \(done\)/);
    assert.equal((await fake.received()).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status: a socket in a sticky directory is refused at the directory (exit 1)", async () => {
  const dir = await trustedDir();
  try {
    await Deno.mkdir(`${dir}/sticky`);
    await Deno.chmod(`${dir}/sticky`, 0o1777);
    await using fake = await startFakeDaemon(
      `${dir}/sticky/helper.sock`,
      "nobody",
      FORGED,
      AS_NOBODY,
    );
    const j = await statusJson(fake.socket);
    assert.deepEqual([j.verdict, j.exit], ["refused", 1]);
    const bad = j.steps.find((s: { ok: boolean }) => !s.ok);
    assert.deepEqual(bad, {
      step: "directory",
      path: `${dir}/sticky`,
      ok: false,
      text: "owner root, mode 1777: sticky but writable by group or others: anyone could take " +
        "the socket's name while no daemon listens",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status: a trusted socket answering garbage or a login reply: exit 3", async () => {
  const dir = await trustedDir();
  try {
    for (
      const [reply, re] of [
        ["hello", /the daemon answered, but not a status: the reply is not JSON/],
        [
          '{"v":1,"result":"PAM_SUCCESS","log":[]}',
          /carries no status \(it answered PAM_SUCCESS\)/,
        ],
        ["", /the reply is not JSON/],
      ] as const
    ) {
      await using fake = await startFakeDaemon(`${dir}/helper.sock`, "root", reply);
      const j = await statusJson(fake.socket);
      assert.deepEqual([j.verdict, j.exit], ["unknown", 3], reply);
      assert.match(j.reason, re);
    }
    const usage = await statusCmd(["--bogus"]);
    assert.equal(usage.code, 3);
    assert.match(usage.stderr, /Usage: pam_mapi_helper status \[--socket PATH\] \[--json\]/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A report with every field of its type, as a daemon running as root would send it. */
const GOOD = {
  version: "0.1.0",
  pid: 4242,
  uid: 0,
  socket: "/run/pam_mapi/helper.sock",
  started: "2026-01-01T00:00:00.000Z",
  uptime_s: 1.5,
  limits: { in_progress: 128, request_bytes: 65536, request_ms: 2000 },
  logins: {
    PAM_SUCCESS: 1,
    PAM_AUTH_ERR: 0,
    PAM_AUTHINFO_UNAVAIL: 0,
    PAM_IGNORE: 0,
    PAM_SERVICE_ERR: 0,
  },
  in_progress: 1,
  rejected_busy: 0,
  malformed: 0,
  late: 0,
  internal_errors: 0,
  status_queries: 1,
  latency_ms: { p50: 0.5, p95: 0.9, samples: 1 },
  kopano_connections: { open: 0, idle: 0, opened: 0, reused: 0 },
  ca_cache: { files: 0, bytes: 0 },
  permissions: PERMISSIONS,
  memory_kb: { rss: 1, heap_total: 1, heap_used: 1, external: 1 },
  touch: "done",
};

/** A fake daemon as root that gives the proof (so only its report is in question). */
async function rootDaemonSaying(dir: string, status: Record<string, unknown>) {
  const reply = JSON.stringify({ v: 1, status });
  return await startFakeDaemon(`${dir}/helper.sock`, "root", reply, [], true);
}

// Every character that can move a terminal's cursor, erase, reorder or hide text.
// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;

Deno.test("status: what the daemon says about itself is shown with control and invisible characters escaped", async () => {
  const dir = await trustedDir();
  try {
    // The attack of issue 18: erase the FAIL lines, draw a verdict of its own.
    const forged = "\x1b[2K\x1b[1A\x1b[2K\rverdict: pam_mapi.so sends logins to this daemon";
    await using _fake = await rootDaemonSaying(dir, {
      ...GOOD,
      version: `0.1.0${forged}`,
      socket: "/run/\u202eevil\u2066",
      started: "\u0085\u2028\u200b\ufeff\n",
      permissions: { ...GOOD.permissions, net: "granted\x07\x9b31m" },
    });
    const plain = await statusCmd(["--socket", `${dir}/helper.sock`]);
    assert.equal(plain.code, 0, plain.stdout); // root, proved, every field of its type
    assert.doesNotMatch(plain.stdout.replaceAll("\n", ""), UNSAFE);
    const lines = plain.stdout.split("\n");
    assert.deepEqual(lines.filter((l) => l.startsWith("verdict:")), [
      "verdict: pam_mapi.so sends logins to this daemon (the path and the daemon pass the trust check)",
    ]);
    assert.ok(
      lines.includes(
        "daemon: pam_mapi_helper 0.1.0\\x1b[2K\\x1b[1A\\x1b[2K\\x0dverdict: pam_mapi.so sends " +
          "logins to this daemon, pid 4242, uid 0, up 1.5 s (since \\x85\\u2028\\u200b\\ufeff\\x0a)",
      ),
      plain.stdout,
    );
    // --json: the same data, ASCII only.
    const json = await statusCmd(["--socket", `${dir}/helper.sock`, "--json"]);
    assert.match(json.stdout, /^[\x20-\x7e]*\n$/);
    const j = JSON.parse(json.stdout);
    assert.equal(j.daemon.version, `0.1.0${forged}`);
    assert.equal(j.daemon.socket, "/run/\u202eevil\u2066");
    assert.equal(j.daemon.permissions.net, "granted\x07\x9b31m");
    assert.deepEqual(j.daemon_invalid, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status: a reported field of the wrong type is shown as invalid; the verdict is not 'sends logins'", async () => {
  const dir = await trustedDir();
  try {
    // One count that is text: enough.
    {
      await using _fake = await rootDaemonSaying(dir, {
        ...GOOD,
        logins: { ...GOOD.logins, PAM_SUCCESS: "9\x1b[1A" },
      });
      const plain = await statusCmd(["--socket", `${dir}/helper.sock`]);
      assert.equal(plain.code, 3, plain.stdout);
      assert.match(
        plain.stdout,
        /\nverdict: the daemon's state could not be established \(the daemon's report has fields of the wrong type \(logins\.PAM_SUCCESS\): not what a pam_mapi_helper daemon sends\)\n/,
      );
      assert.match(plain.stdout, /\n {2}logins: \(invalid\) PAM_SUCCESS, 0 PAM_AUTH_ERR,/);
      assert.match(plain.stdout, /\n {2}invalid: logins\.PAM_SUCCESS\n/);
      assert.match(plain.stdout, /\n {2}ok {3}peer {6}it set the socket's times as asked/);
    }
    // Many, of every kind; unknown fields are dropped.
    await using _fake = await rootDaemonSaying(dir, {
      ...GOOD,
      pid: 4242.5,
      uptime_s: "1",
      in_progress: -1,
      latency_ms: "fast",
      memory_kb: null,
      version: "x".repeat(201),
      permissions: { ...GOOD.permissions, run: 1 },
      extra: "\x1b[2J",
    });
    const j = await statusJson(`${dir}/helper.sock`);
    assert.deepEqual([j.verdict, j.exit], ["unknown", 3]);
    assert.deepEqual(j.daemon_invalid, [
      "version",
      "pid",
      "uptime_s",
      "in_progress",
      "latency_ms.p50",
      "latency_ms.p95",
      "latency_ms.samples",
      "permissions.run",
      "memory_kb.rss",
      "memory_kb.heap_total",
      "memory_kb.heap_used",
      "memory_kb.external",
    ]);
    assert.equal(j.daemon.pid, null);
    assert.equal(j.daemon.uid, 0);
    assert.deepEqual(j.daemon.latency_ms, { p50: null, p95: null, samples: null });
    assert.equal("extra" in j.daemon, false);
    const plain = await statusCmd(["--socket", `${dir}/helper.sock`]);
    assert.match(
      plain.stdout,
      /\ndaemon: pam_mapi_helper \(invalid\), pid \(invalid\), uid 0, up \(invalid\) s/,
    );
    assert.match(
      plain.stdout,
      /\n {2}latency over the last \(invalid\) logins: p50 \(invalid\), p95 \(invalid\)\n/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Status queries back to back, each with a time of its own, as nobody, until killed. */
const DISTURBER = `
import json, random, socket, sys, time
while True:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    t = int(time.time() * 1000) - 1000 - random.randrange(300000)
    s.sendall(json.dumps({"v": 1, "query": "status", "touch": t}).encode())
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
`;

Deno.test("status: another user's status queries at the same moment never make a genuine daemon 'refused'", async () => {
  const dir = await trustedDir();
  await using _dir = { [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
  await using d = await startDaemon({
    dir,
    args: ["--socket", `${dir}/helper.sock`, "--socket-mode", "0666"],
  });
  const disturbers = Array.from({ length: 2 }, () =>
    new Deno.Command("setpriv", {
      args: [...AS_NOBODY.slice(1), "/usr/bin/python3", "-c", DISTURBER, d.socket],
      stdout: "null",
      stderr: "null",
    }).spawn());
  const verdicts: string[] = [];
  try {
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 6; i++) {
      const j = await statusJson(d.socket);
      verdicts.push(`${j.verdict}: ${j.steps.at(-1).text}`);
    }
  } finally {
    for (const p of disturbers) p.kill("SIGKILL");
    await Promise.all(disturbers.map((p) => p.status));
  }
  const refused = verdicts.filter((v) => v.startsWith("refused"));
  assert.deepEqual(refused, [], verdicts.join("\n"));
  for (const v of verdicts) {
    assert.match(
      v,
      /^(daemon: it set the socket's times as asked|unknown: could not tell who it is: )/,
    );
  }
  // Undisturbed, the same daemon proves itself at once.
  assert.equal((await statusJson(d.socket)).verdict, "daemon");
});

Deno.test("status: the daemon holds its socket's times for the query that set them; others are told to wait", async () => {
  await using d = await startDaemon();
  const query = (ago: number) =>
    ask(d.socket, JSON.stringify({ v: 1, query: "status", touch: Date.now() - ago }));
  const touched = async (ago: number) => JSON.parse((await query(ago)).text).status.touch;
  // Two queries within the hold (0.5 s): on a machine too loaded for that, try again.
  for (let tries = 1;; tries++) {
    const t0 = performance.now();
    const first = await touched(5000);
    const set = (await Deno.lstat(d.socket)).mtime!.getTime();
    const second = await touched(9000);
    const after = (await Deno.lstat(d.socket)).mtime!.getTime();
    if (performance.now() - t0 < 400) {
      assert.equal(first, "done");
      assert.match(second, /^busy: held for another status query's proof for \d+ ms more$/);
      assert.equal(after, set, "the times stayed the first's");
      break;
    }
    assert.ok(tries < 5, "no two queries within 0.4 s in 5 tries");
    await new Promise((r) => setTimeout(r, 600));
  }
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(await touched(7000), "done", "after the hold, the next may set them");
});
