// deno task demo: pam_mapi end to end in one command (as root, after `sh scripts/setup.sh`).
//
// 1. Builds dist/pam_mapi.so and dist/pam_mapi_helper (deno task build).
// 2. Starts the Kopano-compatible test server (tests/kopano_sim) on a free loopback port. Its
//    users: alice/secret, and bob/bobpass, who has the imap feature enabled; the server's
//    disabled_features is Kopano's default, "imap pop3".
// 3. Opens a sandbox (scripts/lib/sandbox.ts): a private /etc/pam.d and /dev/log, so the machine's
//    PAM stack and logs are never touched, and starts the resident helper there
//    (`pam_mapi_helper serve` on a socket of its own).
// 4. Logs in through the real PAM library with `pamtester SERVICE USER authenticate acct_mgmt`,
//    the two calls saslauthd makes for SMTP AUTH, each case in both modes: the module starting the
//    helper for the login (daemon=off) and asking the resident helper (daemon=its socket). Every
//    pam.d line names its mode, so a daemon that runs on the machine is never asked.
// 5. Prints one row per case (what PAM should answer, what each mode got, the line pam_mapi wrote
//    to syslog), then each mode's time per login. Exits 0 only if every case went as expected in
//    both modes, with the same line. Leaves nothing behind.
import { Sandbox, type SyslogRecord } from "./lib/sandbox.ts";
import { run } from "./lib/run.ts";
import { startKopanoSim } from "../tests/kopano_sim/mod.ts";
import { type ResidentHelper, setServerDown, startResidentHelper } from "../tests/e2e/lib.ts";
import { disposableSocketDir } from "../tests/lib/socket_dir.ts";

const root = new URL("..", import.meta.url).pathname;

// What pamtester prints (pam_strerror) for each PAM result the demo can meet.
const PAM_RESULTS: Record<string, string> = {
  "Authentication failure": "PAM_AUTH_ERR",
  "Authentication service cannot retrieve authentication info": "PAM_AUTHINFO_UNAVAIL",
  "Error in service module": "PAM_SERVICE_ERR",
  "Permission denied": "PAM_PERM_DENIED",
};

// case, service (smtp, or smtp-imap with service=imap), user, password, what PAM must answer,
// whether Kopano is down.
const CASES: Array<[string, "smtp" | "smtp-imap", string, string, string, boolean?]> = [
  ["right password", "smtp", "alice", "secret", "PAM_SUCCESS"],
  ["wrong password", "smtp", "alice", "wrong", "PAM_AUTH_ERR"],
  ["imap not enabled", "smtp-imap", "alice", "secret", "PAM_AUTH_ERR"],
  ["imap enabled", "smtp-imap", "bob", "bobpass", "PAM_SUCCESS"],
  ["Kopano server down", "smtp", "alice", "secret", "PAM_AUTHINFO_UNAVAIL", true],
];

/** The two modes, by the suffix of their pam.d services (smtp-fork, smtp-imap-daemon, ...). */
const MODES = { fork: "forked helper", daemon: "resident helper" } as const;

/** Logins timed per mode (the median is shown, with the range). */
const TIMED = 21;

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
if (failures) fail(`${failures} of ${CASES.length + 1} rows did not go as expected`);
console.log(`\ndemo: all ${CASES.length} cases as expected in both modes, and every timed login`);

/** Runs the cases, prints the table, returns the number of mismatches. Closing the server and the
 * sandbox (also on an exception) leaves no process, mount or file behind. */
async function demo(): Promise<number> {
  checkInterrupt();
  await using sim = await startKopanoSim({ listen: ["127.0.0.1:0"] });
  // The resident helper's socket, in a directory of its own that pam_mapi.so trusts: root's, 0755,
  // directly under /run (never below /tmp, which others may write to). Removed after the sandbox,
  // whose processes (the daemon) die with it.
  await using sockDir = await disposableSocketDir("pam_mapi_demo_");
  await using sandbox = await Sandbox.open();
  checkInterrupt();
  const url = sim.urls.http[0];
  const module = await sandbox.copyIn(`${root}/dist/pam_mapi.so`);
  const helper = await sandbox.copyIn(`${root}/dist/pam_mapi_helper`);
  const socket = `${sockDir.path}/helper.sock`;
  const modeArg = { fork: "daemon=off", daemon: `daemon=${socket}` };
  for (const mode of ["fork", "daemon"] as const) {
    const mapi = `${module} helper=${helper} socket=${url} ${modeArg[mode]}`;
    const account = `account  required  ${module}`;
    await sandbox.pamService(`smtp-${mode}`, [`auth     required  ${mapi}`, account]);
    await sandbox.pamService(`smtp-imap-${mode}`, [
      `auth     required  ${mapi} service=imap`,
      account,
    ]);
  }
  await sandbox.pamService("permit", [
    "auth required pam_permit.so",
    "account required pam_permit.so",
  ]);
  let daemon: ResidentHelper | null = await startResidentHelper(
    sandbox,
    [helper, "serve", "--socket", socket],
    { helper, socket },
  );
  try {
    console.log(`\n== Kopano-compatible server: ${url}`);
    console.log(`== resident helper: pam_mapi_helper serve --socket ${socket} (pid ${daemon.pid})`);
    const show = async (name: string) =>
      (await Deno.readTextFile(`${sandbox.dir}/pam.d/${name}`))
        .trimEnd().replaceAll(sandbox.dir, "DIR").replace(/^(?=.)/gm, "   ");
    console.log(`== the sandbox's /etc/pam.d (DIR=${sandbox.dir}); smtp-imap-* add service=imap:`);
    console.log(
      `   smtp-fork, the module starts the helper for each login:\n${await show("smtp-fork")}`,
    );
    console.log(
      `   smtp-daemon, the module asks the resident helper:\n${await show("smtp-daemon")}`,
    );

    const rows = [["case", "expected", MODES.fork, MODES.daemon, "", "syslog line (both modes)"]];
    let failures = 0;
    for (const [name, service, user, password, expected, down] of CASES) {
      checkInterrupt();
      if (down) await setServerDown(sim, true); // refused, and kept connections get no reply
      const fork = await login(sandbox, `${service}-fork`, user, password);
      const viaDaemon = await login(sandbox, `${service}-daemon`, user, password);
      const ok = fork.got === expected && viaDaemon.got === expected &&
        fork.line === viaDaemon.line;
      if (!ok) failures++;
      const line = fork.line === viaDaemon.line
        ? fork.line
        : `fork: ${fork.line} | daemon: ${viaDaemon.line}`;
      rows.push([name, expected, fork.got, viaDaemon.got, ok ? "ok" : "MISMATCH", line]);
    }
    await setServerDown(sim, false);

    // Each mode's time per login: the right password, the modes taking turns. Every one of
    // these logins must succeed too.
    const times: Record<string, number[]> = { fork: [], daemon: [], permit: [] };
    const wrong = new Set<string>();
    for (let i = 0; i < TIMED; i++) {
      checkInterrupt();
      for (const service of ["smtp-fork", "smtp-daemon", "permit"]) {
        const r = await login(sandbox, service, "alice", "secret");
        if (r.got !== "PAM_SUCCESS") wrong.add(`${service}: ${r.got}`);
        times[service.replace("smtp-", "")].push(r.ms);
      }
    }
    if (wrong.size) failures++;
    rows.push([
      `time per login (median of ${TIMED}; min-max)`,
      "PAM_SUCCESS",
      spread(times.fork),
      spread(times.daemon),
      wrong.size ? "MISMATCH" : "ok",
      wrong.size
        ? `not every timed login succeeded: ${[...wrong].join(", ")}`
        : `pamtester alone (pam_permit.so): ${spread(times.permit)}`,
    ]);
    console.log("\n== pamtester SERVICE USER authenticate acct_mgmt, password on stdin:\n");
    printTable(rows);
    console.log(
      `\nEach time is one pamtester run as the demo starts it (process start, libpam, pam_mapi,\n` +
        `the logon and logoff at the server); "pamtester alone" is that run with pam_permit.so\n` +
        `in place of pam_mapi. The forked helper pays for starting Deno on every login; the\n` +
        `resident helper is already running (deno task bench measures both without pamtester).`,
    );
    const log = await daemon.stop("TERM");
    daemon = null;
    if (!/stopped: /.test(log)) throw new Error(`the resident helper did not stop cleanly: ${log}`);
    return failures;
  } finally {
    if (daemon) await daemon.stop("KILL");
  }
}

/** One pamtester login in the sandbox: the PAM result, pam_mapi's syslog line and the time. */
async function login(sandbox: Sandbox, service: string, user: string, password: string) {
  const before = (await sandbox.syslog()).length;
  const start = performance.now();
  const r = await sandbox.run("pamtester", [service, user, "authenticate", "acct_mgmt"], {
    stdin: `${password}\n`,
  });
  const ms = performance.now() - start;
  const said = /pamtester: (.*)$/m.exec(r.stderr)?.[1] ?? r.stderr.trim();
  const got = r.code === 0 ? "PAM_SUCCESS" : PAM_RESULTS[said] ?? `"${said}"`;
  const line = pamMapiLine((await sandbox.syslog()).slice(before), service);
  return { got, line, ms };
}

/** pam_mapi's line among syslog records, "pam_mapi(smtp:auth): ...", without the mode's suffix
 * of the service name (smtp-fork, smtp-daemon), which the columns already say. */
function pamMapiLine(records: SyslogRecord[], service: string): string {
  const plain = service.replace(/-(fork|daemon)$/, "");
  return records.filter((r) => r.message.startsWith("pam_mapi(")).map((r) =>
    r.message.replace(`pam_mapi(${service}:`, `pam_mapi(${plain}:`)
  ).join(" | ") || "(none)";
}

/** "12.3 ms (11.9-14.0)": median, and the range. */
function spread(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(1);
  return `${f(s[Math.floor(s.length / 2)])} ms (${f(s[0])}-${f(s[s.length - 1])})`;
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
