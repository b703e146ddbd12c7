// Shared helpers for the shim tests: building the module and the C test programs, temp dirs with
// a root-owned fake helper, private pam.d directories, running the C driver (optionally with its
// syslog captured through a private /dev/log) and pamtester under pam_wrapper.
import assert from "node:assert/strict";
import { socketDir } from "../lib/socket_dir.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const SHIM_BUILD = `${ROOT}/shim/build`;
export const TEST_BUILD = `${SHIM_BUILD}/tests`;
export const CAPTURE = `${ROOT}/tests/shim/syslog_capture.sh`;
export const PAM_WRAPPER_MODULES = "/usr/lib/x86_64-linux-gnu/pam_wrapper";

/** The module and a host built the same way: plain, or both under ASan+UBSan. */
export interface Variant {
  name: "plain" | "asan";
  module: string;
  driver: string;
  env: Record<string, string>;
}

const SAN_ENV = {
  ASAN_OPTIONS: "detect_leaks=1:abort_on_error=1:halt_on_error=1",
  UBSAN_OPTIONS: "halt_on_error=1:print_stacktrace=1",
};

export const PLAIN: Variant = {
  name: "plain",
  module: `${SHIM_BUILD}/pam_mapi.so`,
  driver: `${TEST_BUILD}/driver`,
  env: {},
};
export const ASAN: Variant = {
  name: "asan",
  module: `${SHIM_BUILD}/asan/pam_mapi.so`,
  driver: `${TEST_BUILD}/driver-asan`,
  env: SAN_ENV,
};
export const VARIANTS: Variant[] = [PLAIN, ASAN];
/** The plain module built with the service account "daemon" (uid 1) instead of pam_mapi, and its
 * default daemon= socket in TEST_BUILD: for the trust rules that need an existing account. */
export const SVCACCT_SOCKET = `${TEST_BUILD}/svcacct.sock`;
export const SVCACCT: Variant = {
  name: "plain",
  module: `${SHIM_BUILD}/svcacct/pam_mapi.so`,
  driver: `${TEST_BUILD}/driver`,
  env: {},
};

/** How the module reaches the helper: by starting it (daemon=off), or through the resident
 * helper's socket (docs/protocol.md 7), here the fake one (fake_daemon.c) serving the fake helper. */
export type Mode = "fork" | "daemon";
export const MODES: Mode[] = ["fork", "daemon"];

/** Test name prefix: "plain", "asan" for the fork mode (as before daemons), "plain daemon", ... */
export function label(v: Variant, mode: Mode): string {
  return mode === "fork" ? v.name : `${v.name} daemon`;
}

// One way to run a command for the build scripts and the tests.
import { run, RunResult as Result } from "../../scripts/lib/run.ts";
import { assertModeNamed, type ModeOptions } from "../../scripts/lib/pam_mode.ts";
export { run };
export type { Result };

export async function runOk(cmd: string, args: string[], opts = {}): Promise<Result> {
  const r = await run(cmd, args, opts);
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")} failed:\n${r.stdout}${r.stderr}`);
  return r;
}

let built: Promise<void> | undefined;

/** Builds the module (plain and asan) and the test programs once per test process. Other engineers
 * may run the tests at the same time, so the builds are serialised with a lock file. */
export function build(): Promise<void> {
  built ??= (async () => {
    await runOk("flock", [
      "/tmp/pam_mapi_shim_build.lock",
      "sh",
      "-c",
      `make -s -C ${ROOT}/shim all asan && make -s -C ${ROOT}/tests/shim BUILD=${TEST_BUILD} && ` +
      `make -s -C ${ROOT}/shim BUILD=build/svcacct DAEMON_USER=daemon ` +
      `DAEMON_SOCKET=${SVCACCT_SOCKET} build/svcacct/pam_mapi.so`,
    ]);
  })();
  return built;
}

// Temp directories made by helperDir, removed when the test process ends.
const tempDirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const d of tempDirs) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch { /* already gone */ }
  }
});

/** A fresh temp directory (0755, root-owned), removed when the test process ends. */
export async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_shim_" });
  tempDirs.push(dir);
  await Deno.chmod(dir, 0o755);
  return dir;
}

/** A fresh directory for a daemon's socket (root-owned, 0755, in /run: a socket under /tmp is
 * refused), removed when the test process ends. */
export async function daemonDir(): Promise<string> {
  const dir = await socketDir("pam_mapi_shim_");
  tempDirs.push(dir);
  return dir;
}

export const BUILT_HELPER = `${ROOT}/dist/pam_mapi_helper`;

/** A private root-owned copy of the built helper (deno task build may rewrite dist/ meanwhile). */
export async function builtHelperCopy(): Promise<{ dir: string; helper: string }> {
  await build();
  try {
    await Deno.stat(BUILT_HELPER);
  } catch {
    throw new Error(`${BUILT_HELPER} is missing: run "deno task build" (deno task test does)`);
  }
  const dir = await tempDir();
  const helper = `${dir}/pam_mapi_helper`;
  await Deno.copyFile(BUILT_HELPER, helper);
  await Deno.chmod(helper, 0o755);
  return { dir, helper };
}

/** A fresh temp directory (0755, root) holding a copy of the fake helper under `name`. */
export async function helperDir(name = "fake_helper"): Promise<{ dir: string; helper: string }> {
  const dir = await tempDir();
  const helper = `${dir}/${name}`;
  await Deno.copyFile(`${TEST_BUILD}/fake_helper`, helper);
  await Deno.chmod(helper, 0o755);
  return { dir, helper };
}

// Fake daemons started by startFakeDaemon, stopped when the test process ends (each also stops by
// itself after 30 s without a connection).
const fakeDaemons: number[] = [];
globalThis.addEventListener("unload", () => {
  for (const pid of fakeDaemons) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* already gone */ }
  }
});

export interface FakeDaemonOptions {
  /** Record what each client sent to this file and answer PAM_SUCCESS, instead of the helper. */
  record?: string;
  /** Close each connection unread. */
  closeFirst?: boolean;
  /** Run as this user (setpriv), e.g. "nobody"; default root. */
  user?: string;
}

/** Starts tests/shim/fake_daemon.c on socket, serving helper; returns its pid. */
export async function startFakeDaemon(
  socket: string,
  helper: string,
  opts: FakeDaemonOptions = {},
): Promise<number> {
  const args = [
    ...(opts.record ? ["--record", opts.record] : []),
    ...(opts.closeFirst ? ["--close-first"] : []),
    socket,
    helper,
  ];
  const r = opts.user
    ? await runOk("setpriv", [
      `--reuid=${opts.user}`,
      `--regid=${opts.user === "nobody" ? "nogroup" : opts.user}`,
      "--clear-groups",
      `${TEST_BUILD}/fake_daemon`,
      ...args,
    ])
    : await runOk(`${TEST_BUILD}/fake_daemon`, args);
  const pid = Number(r.stdout.trim());
  assert.ok(pid > 0, `fake_daemon printed no pid: ${r.stdout}`);
  fakeDaemons.push(pid);
  return pid;
}

/** The module arguments that select the mode; in daemon mode this starts a fake daemon (serving
 * `helper`) on a socket of its own. */
export async function modeArgs(mode: Mode, helper: string): Promise<string[]> {
  if (mode === "fork") return ["daemon=off"];
  const socket = `${await daemonDir()}/d.sock`;
  await startFakeDaemon(socket, helper);
  return [`daemon=${socket}`];
}

/** Per run of the fake helper: "fork" or "daemon" (who started it). */
export async function helperModes(dir: string): Promise<Mode[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${dir}/pids`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return text.trim().split("\n").filter((l) => l).map((l) =>
    l.endsWith(" daemon") ? "daemon" : "fork"
  );
}

/** The "pid pgid" lines the fake helper appended, as numbers. */
export async function helperPids(dir: string): Promise<Array<[number, number]>> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${dir}/pids`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return text.trim().split("\n").filter((l) => l).map((l) => {
    const [a, b] = l.split(" ").map(Number);
    return [a, b];
  });
}

/** Writes CONFDIR/<service> for each entry (and an "other" that denies), returns CONFDIR. Each
 * pam_mapi.so auth line names its mode (daemon=off or a socket of the test's own), or `options`
 * says why the module's compiled-in socket is the test's (scripts/lib/pam_mode.ts). */
export async function pamConf(
  dir: string,
  services: Record<string, string[]>,
  options: ModeOptions = {},
): Promise<string> {
  for (const [name, lines] of Object.entries(services)) {
    assertModeNamed(lines, `pam.d/${name}`, options);
  }
  const conf = `${dir}/pam.d`;
  await Deno.mkdir(conf, { recursive: true });
  await Deno.writeTextFile(
    `${conf}/other`,
    "auth required pam_deny.so\naccount required pam_deny.so\n",
  );
  for (const [name, lines] of Object.entries(services)) {
    await Deno.writeTextFile(`${conf}/${name}`, lines.join("\n") + "\n");
  }
  return conf;
}

/** One syslog record as the private /dev/log received it. */
export interface SyslogLine {
  priority: number; // 0..7
  facility: number; // 10 = authpriv
  text: string; // after "ident: "
}

export function parseSyslog(raw: string): SyslogLine[] {
  const out: SyslogLine[] = [];
  for (const line of raw.split("\n")) {
    // s: "." must also match U+2028/U+2029, or a line holding one would silently go missing.
    const m = /^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d [^:]+: (.*)$/s.exec(line);
    if (!m) continue;
    const pri = Number(m[1]);
    out.push({ priority: pri & 7, facility: pri >> 3, text: m[2] });
  }
  return out;
}

export interface DriverRun extends Result {
  /** key=value lines of the driver's stdout. */
  kv: Record<string, string>;
  /** Lines pam_mapi logged, without the "pam_mapi(svc:type): " prefix, with their priority. */
  logs: Array<{ priority: number; message: string }>;
  /** Every captured syslog line. */
  syslog: SyslogLine[];
}

/** Fails when a sanitizer reported anything. */
export function assertNoSanitizerReport(stderr: string): void {
  assert.doesNotMatch(stderr, /AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehavior/);
}

/** Runs the driver; with capture, inside a private mount namespace whose /dev/log we read. */
export async function runDriver(
  v: Variant,
  args: string[],
  opts: { capture?: boolean; env?: Record<string, string> } = {},
): Promise<DriverRun> {
  const env = { ...v.env, ...(opts.env ?? {}) };
  let r: Result;
  let raw = "";
  if (opts.capture ?? true) {
    const log = await Deno.makeTempFile({ prefix: "pam_mapi_syslog_" });
    try {
      r = await run(CAPTURE, [log, v.driver, ...args], { env });
      raw = await Deno.readTextFile(log);
    } finally {
      await Deno.remove(log);
    }
  } else {
    r = await run(v.driver, args, { env });
  }
  assertNoSanitizerReport(r.stderr);
  assert.equal(r.code, 0, `driver failed (${r.code}):\n${r.stdout}${r.stderr}`);
  const kv: Record<string, string> = {};
  for (const line of r.stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) kv[line.slice(0, i)] = line.slice(i + 1);
  }
  const syslog = parseSyslog(raw);
  const logs = syslog.flatMap((s) => {
    const m = /^pam_mapi\([^)]*\): (.*)$/s.exec(s.text);
    return m ? [{ priority: s.priority, message: m[1] }] : [];
  });
  return { ...r, kv, logs, syslog };
}

/** The module line for a service file. */
export function line(v: Variant, type: "auth" | "account", args: string[], control = "required") {
  return [type, control, v.module, ...args].join(" ");
}

/** Runs pamtester under pam_wrapper (PAM_WRAPPER_SERVICE_DIR=svcdir). For the asan variant the
 * sanitizer runtime is preloaded first, since pamtester itself is not built with it. */
export async function pamtester(
  v: Variant,
  svcdir: string,
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Result & { syslog: Array<{ priority: number; message: string }> }> {
  const preload = ["libpam_wrapper.so"];
  if (v.name === "asan") {
    const lib = (await runOk("gcc", ["-print-file-name=libasan.so"])).stdout.trim();
    const ubsan = (await runOk("gcc", ["-print-file-name=libubsan.so"])).stdout.trim();
    preload.unshift(lib, ubsan);
  }
  const r = await run("pamtester", ["-v", ...args], {
    stdin: opts.stdin ?? "",
    env: {
      ...v.env,
      // pamtester itself leaks by design (no pam_end on every path); only the module is judged.
      ...(v.name === "asan" ? { ASAN_OPTIONS: "detect_leaks=0:abort_on_error=1" } : {}),
      PAM_WRAPPER: "1",
      PAM_WRAPPER_SERVICE_DIR: svcdir,
      PAM_WRAPPER_DEBUGLEVEL: "2",
      LD_PRELOAD: preload.join(" "),
      ...(opts.env ?? {}),
    },
  });
  assertNoSanitizerReport(r.stderr);
  const syslog = [...r.stderr.matchAll(/SYSLOG\((\d)\): (.*)$/gm)].map((m) => ({
    priority: Number(m[1]),
    message: m[2],
  }));
  return { ...r, syslog };
}

/** Processes (pid, state) that are still there, among the given pids. */
export async function alive(pids: number[]): Promise<Array<{ pid: number; state: string }>> {
  const out: Array<{ pid: number; state: string }> = [];
  for (const pid of pids) {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      out.push({ pid, state: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return out;
}

/** Live (non-zombie) processes whose process group is pgid. */
export async function groupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z") out.push(Number(e.name));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return out;
}

export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_NOTICE = 5;
export const LOG_INFO = 6;
export const LOG_DEBUG = 7;

/**
 * One authentication with the module's send() delayed 150 ms by strace, so that the peer (a helper
 * that closed its stdin, a daemon that closed the connection) is gone when the request is sent:
 * the send must fail with EPIPE and the host, which keeps SIGPIPE at its default action
 * (terminate), must survive. Returns the driver's stdout for the caller's verdict.
 */
export async function authWithLateSend(v: Variant, conf: string): Promise<string> {
  const trace = await Deno.makeTempFile({ prefix: "pam_mapi_strace_" });
  try {
    const r = await run("strace", [
      "-o",
      trace,
      "-e",
      "trace=sendto",
      "-e",
      "inject=sendto:delay_enter=150000",
      v.driver,
      "--password",
      "pw-alice",
      conf,
      "mapi",
    ], {
      env: {
        ...v.env,
        // LeakSanitizer cannot work under ptrace; every other ASan run checks leaks.
        ...(v.name === "asan" ? { ASAN_OPTIONS: "detect_leaks=0:abort_on_error=1" } : {}),
      },
    });
    assertNoSanitizerReport(r.stderr);
    assert.equal(r.code, 0, `the host died: ${r.code} ${r.stderr}`);
    const st = await Deno.readTextFile(trace);
    assert.match(st, /sendto\(\d+, "\{\\"v\\":1,.*MSG_NOSIGNAL.* = -1 EPIPE/);
    assert.doesNotMatch(st, /SIGPIPE/);
    return r.stdout;
  } finally {
    await Deno.remove(trace);
  }
}

/** Checks the driver's --threads output: n lines per thread, even threads (right password)
 * PAM_SUCCESS, odd ones PAM_AUTH_ERR, each thread with its own user. */
export function assertThreadResults(stdout: string, threads: number, iterations: number): void {
  const lines = stdout.split("\n").filter((l) => l.startsWith("thread="));
  assert.equal(lines.length, threads * iterations);
  for (const l of lines) {
    const m = /^thread=(\d+) iteration=\d+ user=alice-t(\d+) auth=(\S+)$/.exec(l);
    assert.ok(m, l);
    assert.equal(m[1], m[2]);
    // Even threads use the right password, odd threads a wrong one.
    assert.equal(m[3], Number(m[1]) % 2 === 0 ? "PAM_SUCCESS" : "PAM_AUTH_ERR", l);
  }
}
