// deno task bench must not rot: its machinery runs here with tiny counts (a few logins, 100 ms
// throughput runs), prints its table (https:// row included) and the closing line last, and its
// correctness checks do fail when a contender accepts a wrong password or refuses the right one,
// or when the https:// row does not go over TLS.
import assert from "node:assert/strict";
import { BenchError, DEFAULTS, runBench } from "../../scripts/bench/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const TINY = {
  latencyRounds: 1,
  latencyCount: 2,
  clients: [1, 2],
  throughputMs: 100,
  throughputRounds: 1,
  tlsProbes: 1,
};
const ROWS = [
  "pam_mapi",
  "baseline",
  "pam_mapi service=imap",
  "baseline service=imap",
  "pam_mapi https://",
];
const FINAL =
  /^bench: pam_mapi p50=\d+\.\dms p95=\d+\.\dms; baseline p50=\d+\.\dms; ratio=\d+\.\d\d; throughput=\d+\.\d auth\/s$/;

Deno.test("bench: the CLI prints the table and, last, the closing line", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}/scripts/bench.ts`,
      "--rounds",
      "1",
      "--count",
      "2",
      "--duration",
      "100",
      "--trounds",
      "1",
      "--clients",
      "1,2",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
  const lines = stdout.trimEnd().split("\n");
  assert.match(lines[lines.length - 1], FINAL);
  assert.match(stdout, /^bench: checks passed/m);
  for (const row of ROWS) assert.match(stdout, new RegExp(`^${row} +2 +\\d`, "m"), row);
  // https:// against http:// in the same run, and Deno's first-TLS cost measured alongside.
  assert.match(
    stdout,
    /^https: pam_mapi https:\/\/ p50 \d+\.\d ms = http:\/\/ p50 \d+\.\d ms \+ .*; CPU per login /m,
  );
  assert.match(
    stdout,
    /^https: a fresh Deno process's first TLS connection \d+\.\d ms \(\d+\.\d ms CPU\), its second \d+\.\d ms; /m,
  );
  assert.match(stdout, /^targets \(https\): p50 <= 1\.5 x http (met|MISSED); /m);
});

Deno.test("bench: a wrong 'right' password fails the bench before any numbers", async () => {
  const printed: string[] = [];
  await assert.rejects(
    runBench({
      ...DEFAULTS,
      ...TINY,
      passwords: { pam_mapi: "not-the-password" },
      print: (s) => printed.push(s),
    }),
    (e) =>
      e instanceof BenchError &&
      /^pam_mapi: right password \(user alice\) gave PAM_AUTH_ERR×1, expected PAM_SUCCESS$/
        .test(e.message),
  );
  assert.ok(!printed.some((l) => l.startsWith("bench: pam_mapi p50")), printed.join("\n"));
});

Deno.test("bench: an https:// row that does not go over TLS fails the bench", async () => {
  await assert.rejects(
    runBench({ ...DEFAULTS, ...TINY, tlsListener: "plain", print: () => {} }),
    (e) =>
      e instanceof BenchError &&
      /^pam_mapi https:\/\/: requests came over tcp×2, not tls only$/.test(e.message),
  );
});

Deno.test("bench: a baseline that accepts any password fails the bench", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_bench_test_" });
  try {
    // The real script's SOAP calls, but success whatever the server said.
    const yes = `${dir}/accept_all.sh`;
    await Deno.writeTextFile(yes, `#!/bin/sh\nsh ${DEFAULTS.baselineScript} "$@"\nexit 0\n`);
    await Deno.chmod(yes, 0o755);
    await assert.rejects(
      runBench({ ...DEFAULTS, ...TINY, baselineScript: yes, print: () => {} }),
      (e) =>
        e instanceof BenchError &&
        /^baseline: wrong password \(user alice\) gave PAM_SUCCESS×1, expected a refusal$/
          .test(e.message),
    );
    // Doing no SOAP calls at all is caught as well.
    await Deno.writeTextFile(yes, "#!/bin/sh\nexit 0\n");
    await assert.rejects(
      runBench({ ...DEFAULTS, ...TINY, baselineScript: yes, print: () => {} }),
      (e) =>
        e instanceof BenchError &&
        /^baseline: right password made the calls none, expected logon logoff$/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
