// deno task bench must not rot: its machinery runs here with tiny counts (a few logins, 100 ms
// throughput runs, a flood of 64), prints its table (the daemon and https:// rows included), its
// targets, the flood and the closing line last; and its correctness checks do fail when a row
// accepts a wrong password or refuses the right one, when the daemon rows' logins do not go
// through the daemon, when the flood is not refused, or when an https:// row does not go over TLS.
// The memory measurement (--daemon-memory) runs with a few hundred logins, the hostile one
// (--hostile) with two of its replies.
import assert from "node:assert/strict";
import { BenchError, DEFAULTS, runBench } from "../../scripts/bench/mod.ts";
import { runHostile } from "../../scripts/bench/hostile.ts";
import { runDaemonMemory } from "../../scripts/bench/memory.ts";
import { memoryCgroupAvailable } from "../lib/memory_cgroup.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const TINY = {
  latencyRounds: 1,
  latencyCount: 2,
  clients: [1, 2],
  throughputMs: 100,
  throughputRounds: 1,
  tlsProbes: 1,
  floodLogins: 64,
  floodClients: 8,
};
const ROWS = [
  "pam_mapi",
  "daemon",
  "baseline",
  "pam_mapi service=imap",
  "daemon service=imap",
  "baseline service=imap",
  "pam_mapi https://",
  "daemon https://",
];
const D = String.raw`\d+\.\d`;
const FINAL = new RegExp(
  String.raw`^bench: pam_mapi p50=(${D})ms p95=(${D})ms; daemon p50=(${D}\d)ms ` +
    String.raw`p95=(${D}\d)ms; baseline p50=(${D})ms; ratio=(\d+\.\d\d); ` +
    String.raw`daemon_ratio=(\d+\.\d\d\d); throughput=(${D}) auth/s; ` +
    String.raw`daemon_throughput=(${D}) auth/s$`,
);
const dec = new TextDecoder();

async function bench(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/scripts/bench.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("bench: the CLI prints the table, the targets, the flood and, last, the closing line", async () => {
  const out = await bench(
    "--rounds 1 --count 2 --duration 100 --trounds 1 --clients 1,2 --flood 64 --flood-clients 8"
      .split(" "),
  );
  assert.equal(out.code, 0, out.stdout + out.stderr);
  const lines = out.stdout.trimEnd().split("\n");
  const m = FINAL.exec(lines[lines.length - 1]);
  assert.ok(m, lines[lines.length - 1]);
  // The ratios are the p50s' ratios, as printed (within the printed figures' rounding).
  const [p50, , d50, , b50, ratio, dRatio] = m.slice(1, 8).map(Number);
  const near = (r: number, a: number, da: number, dr: number) =>
    Math.abs(r - a / b50) <= (a / b50) * (da / a + 0.05 / b50) + dr;
  assert.ok(near(ratio, p50, 0.05, 0.005), `ratio ${ratio} vs ${p50}/${b50}`);
  assert.ok(near(dRatio, d50, 0.005, 0.0005), `daemon_ratio ${dRatio} vs ${d50}/${b50}`);
  assert.match(out.stdout, /^bench: checks passed/m);
  for (const row of ROWS) assert.match(out.stdout, new RegExp(`^${row} +2 +\\d`, "m"), row);
  assert.match(out.stdout, /^bench: daemon: the same helper as `serve --socket \/\S+`, pid \d+/m);
  assert.match(
    out.stdout,
    /^targets \(daemon\): p50 <= 0\.15 x baseline (met|MISSED) \(\d\.\d{3}\); 2 clients >= 6 x the fork path's 2 clients (met|MISSED) /m,
  );
  assert.match(
    out.stdout,
    /^targets \(daemon, absolute, .*\): p50 <= 2 ms (met|MISSED) \(\d+\.\d\d ms\); 2 clients >= 500 auth\/s (met|MISSED) /m,
  );
  // https:// against http:// in the same run, for both modes, and Deno's first-TLS cost.
  assert.match(
    out.stdout,
    /^https: pam_mapi https:\/\/ p50 \d+\.\d ms = http:\/\/ p50 \d+\.\d ms \+ .*; CPU per login /m,
  );
  assert.match(
    out.stdout,
    /^https: a fresh Deno process's first TLS connection \d+\.\d ms \(\d+\.\d ms CPU\), its second \d+\.\d ms; /m,
  );
  assert.match(out.stdout, /^targets \(https\): p50 <= 1\.5 x http (met|MISSED); /m);
  assert.match(out.stdout, /^https: daemon https:\/\/ p50 \d+\.\d\d ms = http:\/\/ p50 /m);
  assert.match(
    out.stdout,
    /^flood: 64 wrong-password logins from 8 clients at once through the daemon in .* every one PAM_AUTH_ERR after a refused logon, none busy; .* daemon RSS \d+\.\d MB -> \d+\.\d MB, descriptors \d+ -> \d+ /m,
  );
});

Deno.test("bench: --help lists the options; bad usage exits 2", async () => {
  const help = await bench(["--help"]);
  assert.equal(help.code, 0);
  for (
    const o of [
      "rounds",
      "count",
      "duration",
      "trounds",
      "clients",
      "flood",
      "flood-clients",
      "daemon-memory",
      "memory-warmup",
    ]
  ) assert.match(help.stdout, new RegExp(`^  --${o} `, "m"), o);
  for (
    const args of [["--flood", "100", "--flood-clients", "32"], ["--daemon-memory", "12"], [
      "--clients",
      "1,65",
    ], [
      "--rounds",
      "0",
    ], ["--nonsense"]]
  ) {
    const r = await bench(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^bench: .*\(try --help\)$/m);
  }
});

/** Runs the bench with tiny counts; it must fail with exactly `message`, before any numbers. */
async function failsWith(overrides: Record<string, unknown>, message: RegExp) {
  const printed: string[] = [];
  await assert.rejects(
    runBench({ ...DEFAULTS, ...TINY, ...overrides, print: (s) => printed.push(s) }),
    (e) => e instanceof BenchError && message.test(e.message) || assert.fail(String(e)),
  );
  assert.ok(!printed.some((l) => l.startsWith("bench: pam_mapi p50")), printed.join("\n"));
  assert.ok(!printed.some((l) => l.startsWith("bench: checks passed")), printed.join("\n"));
}

Deno.test("bench: a wrong 'right' password fails the bench before any numbers", async () => {
  await failsWith(
    { passwords: { pam_mapi: "not-the-password" } },
    /^pam_mapi: right password \(user alice\) gave PAM_AUTH_ERR×1, expected PAM_SUCCESS$/,
  );
  await failsWith(
    { passwords: { daemon: "not-the-password" } },
    /^daemon: right password \(user alice\) gave PAM_AUTH_ERR×1, expected PAM_SUCCESS$/,
  );
});

Deno.test("bench: daemon rows whose logins do not go through the daemon fail the bench", async () => {
  // The module finds no daemon, forks the helper, and decides every login right: only the
  // daemon's counters and the fallback's tripwire tell.
  await failsWith(
    { unusedDaemon: true },
    /^daemon: right password \(user alice\): the daemon counted none, expected PAM_SUCCESS×1; the module forked the helper 1 time\(s\)$/,
  );
});

Deno.test("bench: a flood that is not refused fails the bench", async () => {
  const printed: string[] = [];
  await assert.rejects(
    runBench({ ...DEFAULTS, ...TINY, floodPassword: "secret", print: (s) => printed.push(s) }),
    (e) =>
      e instanceof BenchError &&
      /^daemon: flood of 64 wrong passwords from 8 clients gave PAM_SUCCESS×64, expected PAM_AUTH_ERR$/
        .test(e.message),
  );
  assert.ok(!printed.some((l) => l.startsWith("bench: pam_mapi p50")), printed.join("\n"));
});

Deno.test("bench: an https:// row that does not go over TLS fails the bench", async () => {
  await failsWith(
    { tlsListener: "plain" },
    /^pam_mapi https:\/\/: requests came over tcp×2, not tls only$/,
  );
});

Deno.test("bench: a baseline that accepts any password fails the bench", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_bench_test_" });
  try {
    // The real script's SOAP calls, but success whatever the server said.
    const yes = `${dir}/accept_all.sh`;
    await Deno.writeTextFile(yes, `#!/bin/sh\nsh ${DEFAULTS.baselineScript} "$@"\nexit 0\n`);
    await Deno.chmod(yes, 0o755);
    await failsWith(
      { baselineScript: yes },
      /^baseline: wrong password \(user alice\) gave PAM_SUCCESS×1, expected a refusal$/,
    );
    // Doing no SOAP calls at all is caught as well.
    await Deno.writeTextFile(yes, "#!/bin/sh\nexit 0\n");
    await failsWith(
      { baselineScript: yes },
      /^baseline: right password \(user alice\): 1 login\(s\) made the calls none, expected logon×1 logoff×1$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench: --daemon-memory reports the daemon's memory from a fresh start and after warm-up", async () => {
  const printed: string[] = [];
  const r = await runDaemonMemory({
    ...DEFAULTS,
    logins: 96,
    warmup: 64,
    print: (s) => printed.push(s),
  });
  const out = printed.join("\n");
  assert.deepEqual([...r.usage.keys()], [0, 64, 96, 160], out);
  assert.match(out, /^memory: fresh daemon: RSS \d+\.\d MB, \d+ descriptors/m);
  assert.match(out, /^memory: after 64 logins \(64 http:\/\/ at \d+\/s\): RSS /m);
  assert.match(out, /^memory: after 96 logins \(32 https:\/\/ at /m);
  assert.match(out, /^memory: after 160 logins \(64 service=imap at /m);
  assert.match(out, /^memory: from a fresh start, over 96 logins: RSS \d+\.\d -> \d+\.\d MB /m);
  assert.match(out, /^memory: after 64 warm-up logins, over 96 more: RSS /m);
  assert.match(
    out,
    /^targets \(memory, 96 logins\): RSS growth < 16 MB after warm-up (met|MISSED)/m,
  );
  // The daemon answered every one of them: it was running and used (checks.ts).
  assert.ok(r.warm.to.rssKb > 0 && r.fresh.from.fds > 0, out);
});

Deno.test({
  name: `${
    memoryCgroupAvailable() ? "" : "SKIPPED (needs a writable cgroup v1 memory " +
      "controller): "
  }bench: --hostile probes hostile replies one by one, then floods the daemon ` +
    "and says whether it met the targets",
  ignore: !memoryCgroupAvailable(),
  async fn() {
    const printed: string[] = [];
    const r = await runHostile({
      helper: DEFAULTS.helper,
      module: DEFAULTS.module,
      rounds: 1,
      kinds: ["one-byte-chunks", "many-headers"],
      print: (s) => printed.push(s),
    });
    const text = printed.join("\n");
    assert.deepEqual(r.probes.map((p) => [p.kind, p.result]), [
      ["one-byte-chunks", "PAM_AUTHINFO_UNAVAIL"],
      ["many-headers", "PAM_AUTHINFO_UNAVAIL"],
    ]);
    assert.match(text, /^hostile: one-byte-chunks \(.*\): PAM_AUTHINFO_UNAVAIL, daemon CPU /m);
    assert.match(text, /^hostile: flood of 1 × 127 hostile logins at once \(every kind\) in /m);
    assert.ok(r.alive && r.oomKills === 0, text);
    assert.ok(!r.hostile.has("PAM_SUCCESS"), text);
    assert.ok(r.healthyMs.length > 0, text);
    assert.match(
      text,
      /^targets \(hostile\): daemon alive (met|MISSED); peak RSS under half the limit (met|MISSED); every healthy login PAM_SUCCESS within 1 s (met|MISSED)$/m,
    );
  },
});
