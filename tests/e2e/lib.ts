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

/** Kopano "goes down" (its listener closes: connection refused) or comes back. */
export async function setServerDown(sim: KopanoSim, down: boolean): Promise<void> {
  if (down) await sim.setFaults([{ kind: "refuse" }]);
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

// The exact lines pam_mapi logs (README "Logging"), for a server at `url`.
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
