// Shared by the end-to-end tests: the built module and helper, the Kopano-compatible server with the
// users these tests log in as, saslauthd and testsaslauthd, and reading pam_mapi's syslog lines.
// Everything runs in a Sandbox (scripts/lib/sandbox.ts): private /etc/pam.d, private /dev/log,
// private PID namespace; nothing on the machine changes.
import assert from "node:assert/strict";
import { run, type RunResult } from "../../scripts/lib/run.ts";
import type { Sandbox, SyslogRecord } from "../../scripts/lib/sandbox.ts";
import { type KopanoSim, startKopanoSim } from "../kopano_sim/mod.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** The end-to-end tests need root (namespaces, saslauthd, Postfix); CI runs as root. */
export const NOT_ROOT = Deno.uid() !== 0;

/** Kopano users: alice and bob as the sim's defaults (bob has imap enabled), and a user whose
 * Kopano login is an e-mail address, as many sites have. */
export const USERS = [
  { name: "alice", password: "secret" },
  { name: "bob", password: "bobpass", enabled: ["imap"], disabled: ["pop3"] },
  { name: "carol@example.com", password: "carolpass" },
];

export function startSim(): Promise<KopanoSim> {
  return startKopanoSim({ listen: ["127.0.0.1:0"], users: USERS });
}

/** Kopano "goes down" (its listener closes: connection refused; a connection the resident
 * helper kept open gets no reply) or comes back. */
export async function setServerDown(sim: KopanoSim, down: boolean): Promise<void> {
  if (down) await sim.setFaults([{ kind: "refuse" }, { kind: "drop" }]);
  else await sim.clearFaults();
}

/** Copies dist/pam_mapi.so and dist/pam_mapi_helper (built by `deno task test`) into the sandbox,
 * because `deno task build` run by someone else meanwhile may rewrite dist/. */
export async function installBuilt(sb: Sandbox): Promise<{ module: string; helper: string }> {
  for (const f of ["pam_mapi.so", "pam_mapi_helper"]) {
    try {
      await Deno.stat(`${ROOT}/dist/${f}`);
    } catch {
      throw new Error(`dist/${f} is missing: run "deno task build" (deno task test does)`);
    }
  }
  return {
    module: await sb.copyIn(`${ROOT}/dist/pam_mapi.so`),
    helper: await sb.copyIn(`${ROOT}/dist/pam_mapi_helper`),
  };
}

/** pam_mapi's own lines ("pam_mapi(SERVICE:TYPE): ...") among syslog records. */
export function pamMapiLines(records: SyslogRecord[]): Array<{ priority: number; text: string }> {
  return records.flatMap((r) => {
    const m = /^pam_mapi\([^)]*\): (.*)$/.exec(r.message);
    return m ? [{ priority: r.priority, text: m[0] }] : [];
  });
}

/** The syslog lines that arrived while `fn` ran. */
export async function logged<T>(
  sb: Sandbox,
  fn: () => Promise<T>,
): Promise<{ value: T; lines: SyslogRecord[] }> {
  const before = (await sb.syslog()).length;
  const value = await fn();
  return { value, lines: (await sb.syslog()).slice(before) };
}

// The exact lines pam_mapi logs (docs/admin-guide.md, "Logging"), for a server at `url`.
export const LINE = {
  success: (svc: string, user: string, url: string, feature?: string) =>
    `pam_mapi(${svc}:auth): authentication success; user=${user} socket=${url} result=PAM_SUCCESS reason="logon accepted"${
      feature ? ` feature=${feature}` : ""
    }`,
  refused: (svc: string, user: string, url: string) =>
    `pam_mapi(${svc}:auth): authentication failure; user=${user} socket=${url} result=PAM_AUTH_ERR reason="logon refused"`,
  feature: (svc: string, user: string, url: string, required: string) =>
    `pam_mapi(${svc}:auth): authentication failure; user=${user} socket=${url} result=PAM_AUTH_ERR reason="feature not enabled" required=${required}`,
  unavailable: (svc: string, user: string, url: string) =>
    `pam_mapi(${svc}:auth): authentication failure; user=${user} result=PAM_AUTHINFO_UNAVAIL reason="server unavailable" detail="${url}: connect failed: connection refused"`,
};

export interface Saslauthd {
  /** The socket testsaslauthd and Postfix talk to. */
  mux: string;
  stop(): Promise<void>;
  /** Stops it and starts it again with the same options (as `systemctl restart saslauthd`). */
  restart(): Promise<void>;
}

/** Starts `saslauthd -a pam -m DIR FLAGS...` in the sandbox, its socket directory readable by the
 * postfix user (as Debian's /var/spool/postfix/var/run/saslauthd is, through group sasl). */
export async function startSaslauthd(
  sb: Sandbox,
  name: string,
  flags: string[],
): Promise<Saslauthd> {
  const dir = `${sb.dir}/saslauthd-${name}`;
  await Deno.mkdir(dir, { mode: 0o755 });
  await Deno.chmod(dir, 0o755);
  const mux = `${dir}/mux`;
  let running = false;
  const start = async () => {
    await Deno.remove(mux).catch(() => {}); // a socket left by a previous run would look ready
    await sb.start("saslauthd", ["-a", "pam", "-m", dir, ...flags]);
    await waitFor(async () => (await Deno.lstat(mux).catch(() => null))?.isSocket === true, mux);
    running = true;
  };
  const stop = async () => {
    if (!running) return;
    running = false;
    const pid = Number(await Deno.readTextFile(`${dir}/saslauthd.pid`));
    await sb.run("kill", [String(pid)]);
    // The sandbox's PID 1 reaps it; wait until it is gone (its workers go with it).
    await waitFor(
      async () => !(await sb.processes()).some((p) => p.nsPid === pid && p.state !== "Z"),
      `saslauthd ${name} to stop`,
    );
  };
  await start();
  return {
    mux,
    stop,
    async restart() {
      await stop();
      await start();
    },
  };
}

/** `pam_mapi_helper serve` running in a sandbox (its private mounts and PID namespace). */
export interface ResidentHelper {
  socket: string;
  /** Its pid inside the sandbox (what SO_PEERCRED, and so the module's debug line, names). */
  pid: number;
  /** What it wrote to standard error so far (its log). */
  log(): Promise<string>;
  /** Its login counters by result, from `pam_mapi_helper status --json` run in the sandbox, which
   * must find the daemon trusted (exit 0). */
  logins(): Promise<Record<string, number>>;
  /** Sends the signal, waits until the process is gone, returns its log. */
  stop(signal?: "TERM" | "KILL"): Promise<string>;
}

let residentHelpers = 0;

/**
 * Starts `argv` (`pam_mapi_helper serve ...`, perhaps behind setpriv) in the background in the
 * sandbox, with umask `umask` and its log in a file, as a service manager would; waits for its
 * "started:" line. `helper` and `socket` are for asking its status. Whatever happens, it dies with
 * the sandbox (its PID namespace).
 */
export async function startResidentHelper(
  sb: Sandbox,
  argv: string[],
  opts: { helper: string; socket: string; umask?: string },
): Promise<ResidentHelper> {
  const logFile = `${sb.dir}/serve-${++residentHelpers}.log`;
  await Deno.writeTextFile(logFile, "");
  await sb.start("sh", [
    "-c",
    'umask "$0"; log=$1; shift; "$@" >>"$log" 2>&1 </dev/null &',
    opts.umask ?? "0022",
    logFile,
    ...argv,
  ]);
  const log = () => Deno.readTextFile(logFile);
  let started: RegExpExecArray | null = null;
  await waitFor(
    async () => {
      const text = await log();
      if (/cannot start/.test(text)) throw new Error(`serve did not start: ${text}`);
      started = /started: .*, pid (\d+),/.exec(text);
      return started !== null;
    },
    `serve to start (log ${logFile})`,
    30_000,
  );
  const pid = Number(started![1]);
  return {
    socket: opts.socket,
    pid,
    log,
    async logins() {
      const r = await sb.run(opts.helper, ["status", "--socket", opts.socket, "--json"]);
      assert.equal(r.code, 0, `status: ${r.stdout}${r.stderr}`);
      const report = JSON.parse(r.stdout);
      assert.equal(report.daemon.pid, pid, r.stdout);
      return report.daemon.logins;
    },
    async stop(signal = "TERM") {
      await sb.run("kill", ["-s", signal, String(pid)]);
      await waitFor(
        async () => !(await sb.processes()).some((p) => p.nsPid === pid && p.state !== "Z"),
        `serve (pid ${pid}) to stop`,
      );
      // A zombie leader is not yet a closed socket: Deno's other threads may still be exiting,
      // and they share the descriptors. Stopped means the socket takes no connection.
      await waitFor(async () => {
        try {
          (await Deno.connect({ transport: "unix", path: opts.socket })).close();
          return false;
        } catch {
          return true;
        }
      }, `serve (pid ${pid}) to let go of ${opts.socket}`);
      return await log();
    },
  };
}

/**
 * Who decided a login, from pam_mapi's debug lines (`debug` on the pam.d line): "daemon pid N"
 * when the resident helper at `socket` answered, "helper (WHY)" when the module found none there
 * and started the helper, anything else as the lines themselves.
 */
export function decidedBy(lines: string[], socket: string): string {
  const debug = lines.map((l) => l.replace(/^pam_mapi\([^)]*\): /, ""))
    .filter((l) => l.startsWith("debug: ") && !/the password|account:|setcred:/.test(l));
  const esc = socket.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const asked = new RegExp(
    `^debug: asking the resident helper ${esc} for user=\\S+ \\(deadline \\d+ s\\)$`,
  );
  const answered = new RegExp(
    `^debug: resident helper ${esc} \\(pid (\\d+)\\) answered after \\d+ ms; result=PAM_\\w+$`,
  );
  const none = new RegExp(`^debug: no resident helper at ${esc} \\((.*)\\); starting the helper$`);
  const started = /^debug: starting helper \S+ for user=\S+ \(deadline \d+ s\)$/;
  const exited = /^debug: helper pid \d+ exited with status 0 after \d+ ms; result=PAM_\w+$/;
  if (debug.length === 2 && asked.test(debug[0]) && answered.test(debug[1])) {
    return `daemon pid ${answered.exec(debug[1])![1]}`;
  }
  if (
    debug.length === 4 && asked.test(debug[0]) && none.test(debug[1]) && started.test(debug[2]) &&
    exited.test(debug[3])
  ) {
    return `helper (${none.exec(debug[1])![1]})`;
  }
  return JSON.stringify(debug);
}

/** The change of each login counter between two readings of ResidentHelper.logins(). */
export function countersRose(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  return Object.fromEntries(
    Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]).filter(([, n]) => n !== 0),
  );
}

/** testsaslauthd's answer: saslauthd says only OK or NO (the reason is in syslog). */
export async function testsaslauthd(
  mux: string,
  service: string,
  user: string,
  password: string,
  realm?: string,
): Promise<{ answer: "OK" | "NO"; out: string }> {
  const args = ["-f", mux, "-s", service, "-u", user, "-p", password];
  if (realm !== undefined) args.push("-r", realm);
  const r = await run("testsaslauthd", args);
  const m = /^0: (OK|NO) /.exec(r.stdout);
  assert.ok(m, `testsaslauthd said: ${r.stdout}${r.stderr}`);
  // It exits 0 for OK and 255 for NO.
  assert.equal(r.code, m[1] === "OK" ? 0 : 255, r.stdout);
  return { answer: m[1] as "OK" | "NO", out: r.stdout.trim() };
}

/** One testsaslauthd call in the sandbox: its answer, and the syslog lines (pam_mapi's apart)
 * that arrived meanwhile. */
export async function saslLogin(
  sb: Sandbox,
  mux: string,
  service: string,
  user: string,
  password: string,
  realm?: string,
) {
  const { value, lines } = await logged(
    sb,
    () => testsaslauthd(mux, service, user, password, realm),
  );
  return { answer: value.answer, out: value.out, lines, mapi: pamMapiLines(lines) };
}

/** Twelve logins to smtp at once through one saslauthd, every third with a wrong password: each
 * gets its own right answer. */
export async function twelveAtOnce(mux: string): Promise<void> {
  const wrong = (i: number) => i % 3 === 2;
  const answers = await Promise.all(
    Array.from(
      { length: 12 },
      (_, i) => testsaslauthd(mux, "smtp", "alice", wrong(i) ? "wrong" : "secret"),
    ),
  );
  assert.deepEqual(
    answers.map((a) => a.answer),
    Array.from({ length: 12 }, (_, i) => wrong(i) ? "NO" : "OK"),
  );
}

/** Processes that must not outlive an authentication: the helper (deno for the bundled helper,
 * pam_mapi_helpe[r] compiled), the module's supervisor, and zombies. A worker of saslauthd -n 0
 * may be a zombie for a moment after answering, until saslauthd's SIGCHLD handler reaps it, so
 * this waits up to 5 s for the list to empty and returns what is left then. */
export async function leftovers(sb: Sandbox): Promise<string[]> {
  const list = async () =>
    (await sb.processes())
      .filter((p) => p.state === "Z" || /^(pam_mapi_sup|pam_mapi_helpe|deno)/.test(p.name))
      .map((p) => `${p.name} (pid ${p.pid}, parent ${p.ppid}, state ${p.state})`);
  await waitFor(async () => (await list()).length === 0, "no leftover processes", 5_000)
    .catch(() => {});
  return await list();
}

/** After the daemons were stopped: nothing of an authentication is left, and only the sandbox's
 * PID 1 runs (saslauthd's master signals its workers on the way out but does not wait for them). */
export async function assertOnlySandboxLeft(sb: Sandbox): Promise<void> {
  assert.deepEqual(await leftovers(sb), []);
  await waitFor(
    async () => (await sb.processes()).every((p) => p.name === "python3"),
    "only the sandbox's PID 1 to remain",
  );
}

export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** With PAM_MAPI_E2E_SYSLOG=1, prints everything the sandbox's /dev/log received (to read the
 * real lines saslauthd, Postfix and pam_mapi write). */
export async function showSyslog(sb: Sandbox): Promise<void> {
  if (Deno.env.get("PAM_MAPI_E2E_SYSLOG") !== "1") return;
  for (const r of await sb.syslog()) {
    console.log(`<${r.facility * 8 + r.priority}> ${r.ident}[${r.pid ?? ""}]: ${r.message}`);
  }
}

/** The machine's mounts on the places a sandbox mounts over (/etc/pam.d, /etc/passwd,
 * /etc/shadow, /dev, /proc) or inside a sandbox directory, as this process sees them: must be the
 * same after a test. (Only these: other people's work on a shared machine may mount elsewhere.) */
export async function mountTable(): Promise<string[]> {
  const places = ["/etc/pam.d", "/etc/passwd", "/etc/shadow", "/dev", "/proc"];
  return (await Deno.readTextFile("/proc/self/mountinfo")).split("\n").filter((line) => {
    const mountPoint = line.split(" ")[4] ?? "";
    return places.includes(mountPoint) || line.includes("pam_mapi_sandbox_");
  });
}

export type { RunResult };
