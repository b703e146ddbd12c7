// What the container test (systemd_container_test.ts) does inside the container (container.ts)
// once libpam-mapi is installed there: PAM services, logins through the installed module with
// pamtester and pam_bench, what the journal says about them, the unit's state as systemd and the
// kernel see it, and the resident helper's own counters.
import assert from "node:assert/strict";
import { type DriverRun, parseDriver } from "../../scripts/bench/driver.ts";
import { assertModeNamed } from "../../scripts/lib/pam_mode.ts";
import { decidedBy, waitFor } from "../e2e/lib.ts";
import type { FloodRunner, FloodTools } from "../lib/hostile_flood.ts";
import type { Container } from "./container.ts";

export const UNIT = "pam_mapi.service";
export const HELPER = "/usr/libexec/pam_mapi/pam_mapi_helper";
export const DAEMON_SOCKET = "/run/pam_mapi/helper.sock";
/** Where installPamBench puts the bench's load generator (scripts/bench/pam_bench.c). */
const PAM_BENCH = "/usr/local/bin/pam_bench";
/** Where installPamBench puts the flood's many-threaded PAM application (tests/shim/driver.c). */
const FLOOD_DRIVER = "/usr/local/bin/pam_flood_driver";

/** Writes /etc/pam.d/NAME in the container. */
export async function pamService(c: Container, name: string, lines: string[]): Promise<void> {
  // No daemon= needed: the container is a machine of its own, whose systemd runs the daemon under
  // test at the default socket (scripts/lib/pam_mode.ts).
  assertModeNamed(lines, `the container's /etc/pam.d/${name}`, {
    defaultSocketIsOurs: "the container's own systemd runs the packaged daemon",
  });
  await Deno.writeTextFile(`${c.root}/etc/pam.d/${name}`, lines.join("\n") + "\n");
}

export interface JournalLine {
  ident: string;
  pid: number;
  priority: number;
  message: string;
}

/** The journal's position now (read what came after it with journalSince). */
export async function journalCursor(c: Container): Promise<string> {
  const out = await c.ok("journalctl", ["-n", "0", "--show-cursor", "-q"]);
  const m = /^-- cursor: (\S+)$/m.exec(out);
  assert.ok(m, `journalctl --show-cursor said: ${out}`);
  return m[1];
}

/** What was logged after the cursor (journald first writes out what it has received). */
export async function journalSince(c: Container, cursor: string): Promise<JournalLine[]> {
  await c.ok("journalctl", ["--sync"]);
  const out = await c.ok("journalctl", [`--after-cursor=${cursor}`, "-o", "json", "--no-pager"]);
  return out.split("\n").filter(Boolean).map((l) => {
    const e = JSON.parse(l);
    const text = (v: unknown) =>
      Array.isArray(v) ? new TextDecoder().decode(new Uint8Array(v)) : String(v ?? "");
    return {
      ident: text(e.SYSLOG_IDENTIFIER),
      pid: Number(e._PID ?? e.SYSLOG_PID ?? 0),
      priority: Number(e.PRIORITY ?? 6),
      message: text(e.MESSAGE),
    };
  });
}

/** pam_mapi's own lines ("pam_mapi(SERVICE:TYPE): ..."). */
export function pamMapiLines(lines: JournalLine[]): JournalLine[] {
  return lines.filter((l) => /^pam_mapi\([^)]*\): /.test(l.message));
}

/** What `fn` logged. */
export async function logged<T>(
  c: Container,
  fn: () => Promise<T>,
): Promise<{ value: T; lines: JournalLine[] }> {
  const cursor = await journalCursor(c);
  const value = await fn();
  return { value, lines: await journalSince(c, cursor) };
}

export interface Login {
  code: number;
  out: string;
  /** pam_mapi's lines at info and above but its per-socket steps: the result line (and any
   * warning), without the "pam_mapi(...): ". */
  result: string[];
  /** pam_mapi's warnings and errors. */
  warnings: string[];
  /** Who decided, from its debug lines (e2e/lib.ts decidedBy): "daemon pid N", "helper (WHY)". */
  by: string;
}

/** `pamtester -v SERVICE USER authenticate acct_mgmt` in the container, with what it logged. */
export async function pamtester(
  c: Container,
  service: string,
  user: string,
  password: string,
): Promise<Login> {
  const { value, lines } = await logged(
    c,
    () =>
      c.run("pamtester", ["-v", service, user, "authenticate", "acct_mgmt"], {
        stdin: `${password}\n`,
      }),
  );
  const mapi = pamMapiLines(lines);
  const bare = (l: JournalLine) => l.message.replace(/^pam_mapi\([^)]*\): /, "");
  return {
    code: value.code,
    out: value.stdout + value.stderr,
    result: mapi.filter((l) => l.priority <= 6 && !l.message.includes("): socket=")).map(bare),
    warnings: mapi.filter((l) => l.priority <= 4).map(bare),
    by: decidedBy(mapi.map((l) => l.message), DAEMON_SOCKET),
  };
}

/** Copies pam_bench and the flood's driver (built on the host, for the same libpam: the
 * container's root is of the host's suite) into the container. */
export async function installPamBench(c: Container, built: FloodTools): Promise<void> {
  for (const [from, to] of [[built.pamBench, PAM_BENCH], [built.driver, FLOOD_DRIVER]]) {
    await Deno.copyFile(from, `${c.root}${to}`);
    await Deno.chmod(`${c.root}${to}`, 0o755);
  }
}

/**
 * Runs pam_bench in the container: ARGS /etc/pam.d SERVICE as `user` with `password` (see
 * scripts/bench/pam_bench.c: --clients K, --count N or --duration MS, --warmup W), through the
 * installed module and, unless the service says daemon=off, the unit's daemon.
 */
export async function pamBench(
  c: Container,
  service: string,
  user: string,
  password: string,
  args: string[],
): Promise<DriverRun> {
  const r = await c.run(PAM_BENCH, ["--user", user, ...args, "/etc/pam.d", service], {
    stdin: `${password}\n`,
  });
  assert.equal(r.code, 0, `pam_bench ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return parseDriver(r.stdout);
}

/**
 * The hostile flood (tests/lib/hostile_flood.ts, runFlood) in the container, through the installed
 * module and the daemon the services name (the unit's, when they name none): its many logins at
 * once by the driver for /etc/pam.d/HOSTILE (thread t logs in as alice-t<t>), its healthy logins
 * one by one by pam_bench for /etc/pam.d/HEALTHY as `user` with `password`.
 */
export function floodRunner(
  c: Container,
  o: { hostile: string; healthy: string; user: string; password: string },
): FloodRunner {
  return {
    async hostile(logins) {
      const args = ["--threads", String(logins), "/etc/pam.d", o.hostile];
      const r = await c.run(FLOOD_DRIVER, args);
      if (r.code !== 0) throw new Error(`the flood's driver exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    async healthy() {
      const r = await pamBench(c, o.healthy, o.user, o.password, ["--count", "1"]);
      return { result: [...r.results.keys()].join(","), ms: r.latUs[0] / 1000 };
    },
  };
}

/** pam_bench's results as a plain object: { PAM_SUCCESS: n, ... }. */
export function results(run: DriverRun): Record<string, number> {
  return Object.fromEntries(run.results);
}

export interface UnitState {
  activeState: string;
  mainPid: number;
  nRestarts: number;
  /** Bytes; NaN when systemd does not know (no memory accounting). */
  memoryCurrent: number;
  memoryMax: number;
  controlGroup: string;
  fragmentPath: string;
}

/** `systemctl show` of the unit. */
export async function unitState(c: Container, unit = UNIT): Promise<UnitState> {
  const props = [
    "ActiveState",
    "MainPID",
    "NRestarts",
    "MemoryCurrent",
    "MemoryMax",
    "ControlGroup",
    "FragmentPath",
  ];
  const out = await c.ok("systemctl", ["show", unit, ...props.map((p) => `--property=${p}`)]);
  const v = Object.fromEntries(
    out.trim().split("\n").map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
  return {
    activeState: v.ActiveState,
    mainPid: Number(v.MainPID),
    nRestarts: Number(v.NRestarts),
    memoryCurrent: /^\d+$/.test(v.MemoryCurrent) ? Number(v.MemoryCurrent) : NaN,
    memoryMax: /^\d+$/.test(v.MemoryMax) ? Number(v.MemoryMax) : NaN,
    controlGroup: v.ControlGroup,
    fragmentPath: v.FragmentPath,
  };
}

/** Waits until the unit is active with a main process and its socket is there. */
export async function waitActive(c: Container, notPid = 0): Promise<UnitState> {
  let s = await unitState(c);
  await waitFor(
    async () => {
      s = await unitState(c);
      if (s.activeState !== "active" || s.mainPid === 0 || s.mainPid === notPid) return false;
      return (await c.run("test", ["-S", DAEMON_SOCKET])).code === 0;
    },
    `${UNIT} to be active${notPid ? ` again (not pid ${notPid})` : ""}`,
    20_000,
  ).catch(async (e) => {
    // What systemd and the daemon said is what tells why.
    const status = await c.run("systemctl", ["status", "--no-pager", "-l", UNIT]);
    const journal = await c.run("journalctl", ["--no-pager", "-n", "40", "-u", UNIT]);
    throw new Error(`${e.message}\n${status.stdout}${status.stderr}\n${journal.stdout}`);
  });
  return s;
}

/** The daemon's login counters (`pam_mapi_helper status --json`, which must trust it), checking
 * that the daemon answering is the unit's main process. */
export async function daemonLogins(c: Container, mainPid: number): Promise<Record<string, number>> {
  const r = await c.run(HELPER, ["status", "--json"]);
  assert.equal(r.code, 0, `status: ${r.stdout}${r.stderr}`);
  const report = JSON.parse(r.stdout);
  assert.equal(report.daemon.pid, mainPid, r.stdout);
  return report.daemon.logins;
}

export interface CgroupMemory {
  /** The kernel's limit for the unit's cgroup, its peak use and how often the limit was hit. */
  limit: number;
  peak: number;
  failcnt: number;
  /** Processes of the cgroup the OOM killer ended. */
  oomKills: number;
}

/** The memory controller's own files for the unit's cgroup (v1 in these containers, v2 else). */
export async function cgroupMemory(c: Container, controlGroup: string): Promise<CgroupMemory> {
  const read = async (path: string) => (await c.ok("cat", [path])).trim();
  if ((await c.run("test", ["-d", "/sys/fs/cgroup/memory"])).code === 0) {
    const d = `/sys/fs/cgroup/memory${controlGroup}`;
    const oom = await read(`${d}/memory.oom_control`);
    return {
      limit: Number(await read(`${d}/memory.limit_in_bytes`)),
      peak: Number(await read(`${d}/memory.max_usage_in_bytes`)),
      failcnt: Number(await read(`${d}/memory.failcnt`)),
      oomKills: Number(/^oom_kill (\d+)$/m.exec(oom)?.[1] ?? NaN),
    };
  }
  const d = `/sys/fs/cgroup${controlGroup}`;
  const events = await read(`${d}/memory.events`);
  return {
    limit: Number(await read(`${d}/memory.max`)),
    peak: Number(await read(`${d}/memory.peak`)),
    failcnt: Number(/^max (\d+)$/m.exec(events)?.[1] ?? NaN),
    oomKills: Number(/^oom_kill (\d+)$/m.exec(events)?.[1] ?? NaN),
  };
}

/**
 * Starts the peak of the unit's cgroup over from what it is charged now (cgroup v1, as in these
 * containers; memory.failcnt is left alone). Under cgroup v2, memory.peak cannot be reset for
 * every reader: there it stays the peak since the unit started, and false is returned.
 */
export async function resetCgroupPeak(c: Container, controlGroup: string): Promise<boolean> {
  const d = `/sys/fs/cgroup/memory${controlGroup}`;
  if ((await c.run("test", ["-d", d])).code !== 0) return false;
  await c.ok("sh", ["-c", 'echo 0 > "$1/memory.max_usage_in_bytes"', "sh", d]);
  return true;
}

/** A process's peak resident set size (VmHWM) and the part of its resident set now that maps
 * files (RssFile), bytes, from /proc/PID/status. */
export async function processMemory(
  c: Container,
  pid: number,
): Promise<{ vmHwm: number; rssFile: number }> {
  const status = await c.ok("cat", [`/proc/${pid}/status`]);
  const kb = (name: string) => {
    const v = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1];
    assert.ok(v, `no ${name} in /proc/${pid}/status:\n${status}`);
    return Number(v) * 1024;
  };
  return { vmHwm: kb("VmHWM"), rssFile: kb("RssFile") };
}
