// deno task demo: pam_mapi end to end in one command (as root, after `sh scripts/setup.sh`).
//
// 1. Builds dist/pam_mapi.so and dist/pam_mapi_helper (deno task build).
// 2. Starts the Kopano-compatible test server (tests/kopano_sim) on a free loopback port. Its
//    users: alice/secret, and bob/bobpass, who has the imap feature enabled; the server's
//    disabled_features is Kopano's default, "imap pop3".
// 3. Opens a sandbox (scripts/lib/sandbox.ts): a private /etc/pam.d and /dev/log, so the machine's
//    PAM stack and logs are never touched, and logs in through the real PAM library with
//    `pamtester SERVICE USER authenticate acct_mgmt`, the two calls saslauthd makes for SMTP AUTH.
// 4. Prints one row per case: what PAM should answer, what pamtester got, and the line pam_mapi
//    wrote to syslog. Exits 0 only if every case went as expected. Leaves nothing behind.
import { Sandbox, type SyslogRecord } from "./lib/sandbox.ts";
import { run } from "./lib/run.ts";
import { startKopanoSim } from "../tests/kopano_sim/mod.ts";

const root = new URL("..", import.meta.url).pathname;

// What pamtester prints (pam_strerror) for each PAM result the demo can meet.
const PAM_RESULTS: Record<string, string> = {
  "Authentication failure": "PAM_AUTH_ERR",
  "Authentication service cannot retrieve authentication info": "PAM_AUTHINFO_UNAVAIL",
  "Error in service module": "PAM_SERVICE_ERR",
  "Permission denied": "PAM_PERM_DENIED",
};

// case, /etc/pam.d file, user, password, what PAM must answer, whether Kopano is down.
const CASES: Array<[string, string, string, string, string, boolean?]> = [
  ["right password", "smtp", "alice", "secret", "PAM_SUCCESS"],
  ["wrong password", "smtp", "alice", "wrong", "PAM_AUTH_ERR"],
  ["imap not enabled", "smtp-imap", "alice", "secret", "PAM_AUTH_ERR"],
  ["imap enabled", "smtp-imap", "bob", "bobpass", "PAM_SUCCESS"],
  ["Kopano server down", "smtp", "alice", "secret", "PAM_AUTHINFO_UNAVAIL", true],
];

if (Deno.uid() !== 0) {
  fail("run it as root: it needs mount and PID namespaces (nothing on the machine changes)");
}
for (const tool of ["pamtester", "unshare", "nsenter", "python3"]) {
  if ((await run("sh", ["-c", `command -v ${tool}`])).code !== 0) {
    fail(`${tool} is missing: run sh scripts/setup.sh`);
  }
}

console.log("== building");
const build = await new Deno.Command(Deno.execPath(), {
  args: ["task", "build"],
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!build.success) fail("deno task build failed");

// Ctrl-C only raises a flag: the running step ends, and `await using` then closes the sandbox and
// the server, so an interrupted demo leaves nothing behind either.
let interrupted = false;
Deno.addSignalListener("SIGINT", () => interrupted = true);
const checkInterrupt = () => {
  if (interrupted) throw new Deno.errors.Interrupted("interrupted");
};

const failures = await demo().catch((e) => {
  if (e instanceof Deno.errors.Interrupted) fail("interrupted; everything it started is stopped");
  throw e;
});
if (failures) fail(`${failures} of ${CASES.length} cases did not go as expected`);
console.log(`\ndemo: all ${CASES.length} cases as expected`);

/** Runs the cases, prints the table, returns the number of mismatches. Closing the server and the
 * sandbox (also on an exception) leaves no process, mount or file behind. */
async function demo(): Promise<number> {
  checkInterrupt();
  await using sim = await startKopanoSim({ listen: ["127.0.0.1:0"] });
  await using sandbox = await Sandbox.open();
  checkInterrupt();
  const url = sim.urls.http[0];
  const module = await sandbox.copyIn(`${root}/dist/pam_mapi.so`);
  const helper = await sandbox.copyIn(`${root}/dist/pam_mapi_helper`);
  const mapi = `${module} helper=${helper} socket=${url}`;
  await sandbox.pamService("smtp", [`auth     required  ${mapi}`, `account  required  ${module}`]);
  await sandbox.pamService("smtp-imap", [
    `auth     required  ${mapi} service=imap`,
    `account  required  ${module}`,
  ]);
  console.log(`\n== Kopano-compatible server: ${url}`);
  console.log(
    `== the sandbox's /etc/pam.d/smtp (smtp-imap adds service=imap), DIR=${sandbox.dir}:`,
  );
  const smtp = await Deno.readTextFile(`${sandbox.dir}/pam.d/smtp`);
  console.log(smtp.replaceAll(sandbox.dir, "DIR").replace(/^(?=.)/gm, "   "));

  const rows = [["case", "expected", "got", "", "syslog line"]];
  let failures = 0;
  for (const [name, service, user, password, expected, down] of CASES) {
    checkInterrupt();
    if (down) await sim.setFaults([{ kind: "refuse" }]); // its port now refuses connections
    const before = (await sandbox.syslog()).length;
    const r = await sandbox.run("pamtester", [service, user, "authenticate", "acct_mgmt"], {
      stdin: `${password}\n`,
    });
    const said = /pamtester: (.*)$/m.exec(r.stderr)?.[1] ?? r.stderr.trim();
    const got = r.code === 0 ? "PAM_SUCCESS" : PAM_RESULTS[said] ?? `"${said}"`;
    const line = pamMapiLine((await sandbox.syslog()).slice(before));
    if (got !== expected) failures++;
    rows.push([name, expected, got, got === expected ? "ok" : "MISMATCH", line]);
  }
  console.log("== pamtester SERVICE USER authenticate acct_mgmt, password on stdin:\n");
  printTable(rows);
  return failures;
}

/** pam_mapi's line among syslog records: "pam_mapi(smtp:auth): authentication ...". */
function pamMapiLine(records: SyslogRecord[]): string {
  return records.filter((r) => r.message.startsWith("pam_mapi(")).map((r) => r.message).join(
    " | ",
  ) ||
    "(none)";
}

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) {
    console.log(r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
  }
}

function fail(message: string): never {
  console.error(`demo: ${message}`);
  Deno.exit(1);
}
