// The machinery of `deno task bench` (docs/performance.md): pam_mapi.so forking a helper per login
// (daemon=off), pam_mapi.so asking the resident helper (daemon=SOCKET), and the pam_exec + curl
// baseline, side by side in one run and measured the same way, through the real libpam
// (scripts/bench/pam_bench.c) against the Kopano-compatible server in a process of its own, with
// and without service=; both pam_mapi modes over https:// too (the server's TLS listener, cafile=
// with a throw-away CA); then a flood of wrong passwords against the daemon (flood.ts).
//
// Every number comes with a check that it measured the right thing (checks.ts): before any timing
// each row must accept the right password and refuse a wrong one (and a user whose feature is
// disabled), every timed login must succeed, each run must make exactly the SOAP calls expected of
// it over the row's transport, and a daemon row's logins must all have gone through the daemon. A
// failed check throws BenchError: no table is printed.
import { acceptedCalls, type Case, checkCases, checkedRun, makeCase } from "./checks.ts";
import { BenchError, type DriverRun, ROOT } from "./driver.ts";
import { describeFlood, runFlood } from "./flood.ts";
import { loadAvg } from "./proc.ts";
import { report, type Row } from "./report.ts";
import { fmt } from "./stats.ts";
import { TlsCostProbes } from "./tls_cost.ts";
import {
  type Impl,
  IMPLS,
  makeWorkspace,
  MODES,
  type Workspace,
  type WorkspaceOptions,
} from "./workspace.ts";

export { BenchError, ROOT };

export interface BenchOptions extends WorkspaceOptions {
  /** Latency: rounds, each running `latencyCount` logins per row, rows alternating. */
  latencyRounds: number;
  latencyCount: number;
  /** Throughput: client counts, how long each run lasts, and how many rounds (median taken). */
  clients: number[];
  throughputMs: number;
  throughputRounds: number;
  /** Fresh processes per latency round that measure Deno's first-TLS cost (tls_cost.ts). */
  tlsProbes: number;
  /** The flood: this many wrong-password logins (a multiple of floodClients) at once. */
  floodLogins: number;
  floodClients: number;
  /** The flood's password (tests send the right one to see the check fail). */
  floodPassword?: string;
  /** The passwords sent as "right" (tests override them to see the checks fail). */
  passwords?: Partial<Record<Impl, string>>;
  /** Where progress and the report go (default: console.log). */
  print?: (line: string) => void;
}

export const DEFAULTS = {
  helper: `${ROOT}/dist/pam_mapi_helper`,
  module: `${ROOT}/dist/pam_mapi.so`,
  baselineScript: `${ROOT}/scripts/bench/pam_exec_kopano.sh`,
  latencyRounds: 4,
  latencyCount: 25,
  clients: [1, 4, 8],
  throughputMs: 1000,
  throughputRounds: 3,
  tlsProbes: 3,
  floodLogins: 20_000,
  floodClients: 32,
} satisfies BenchOptions;

export interface BenchReport {
  rows: Row[];
  /** The closing line (report.ts). */
  finalLine: string;
}

/** The rows, in the order of the table: without and with service=, then https://. */
export function benchCases(passwords?: Partial<Record<Impl, string>>): Case[] {
  const cases: Case[] = [];
  for (const mode of MODES) {
    for (const impl of IMPLS) cases.push(makeCase({ impl, mode, transport: "http" }, passwords));
  }
  // Forked, each login is a new process and pays Deno's first-TLS cost (docs/performance.md);
  // the daemon pays it once and keeps its TLS connection to the server alive.
  for (const impl of ["pam_mapi", "daemon"] as const) {
    cases.push(makeCase({ impl, mode: "plain", transport: "https" }, passwords));
  }
  return cases;
}

async function machine(): Promise<string> {
  const cpu = /model name\s*:\s*(.*)/.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1] ?? "?";
  const cores = navigator.hardwareConcurrency;
  return `${cores} cores (${cpu.trim()}), Linux ${Deno.osRelease()}, deno ${Deno.version.deno}`;
}

/** What the helper runs as: its launcher's Deno flags and code cache, and the daemon's. */
async function describeHelper(ws: Workspace): Promise<string[]> {
  const flags = ws.launcher?.flags.replace(/^run /, "") ?? "(compiled helper)";
  const cached: string[] = [];
  for (const f of ["v8_code_cache_v2", "v8_code_cache_v2-wal"]) {
    try {
      cached.push(`${fmt((await Deno.stat(`${ws.cacheDir}/${f}`)).size / 1024, 0)} KB`);
    } catch { /* absent */ }
  }
  return [
    `bench: helper: deno run ${flags}; V8 code cache ${cached.join(" + ") || "NOT written"}`,
    `bench: daemon: the same helper as \`serve --socket ${ws.daemon.socket}\`, pid ` +
    `${ws.daemon.pid}, as root (pam_mapi.service runs it as pam_mapi)` +
    (ws.launcher ? `, V8 flags ${ws.launcher.serve_v8_flags.replace(/^--v8-flags=/, "")}` : ""),
  ];
}

/** Runs the whole bench; returns the report (already printed) or throws BenchError. */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const print = options.print ?? ((s: string) => console.log(s));
  if (options.floodLogins % options.floodClients !== 0) {
    throw new BenchError("the flood's logins must be a multiple of its clients");
  }
  await using ws = await makeWorkspace(options);
  const cases = benchCases(options.passwords);
  print(`bench: ${await machine()}`);
  print(
    `bench: load average before: ${await loadAvg()}; kopano-sim at ${ws.sim.url} and ` +
      `${ws.sim.httpsUrl}`,
  );

  await checkCases(ws, cases, options.passwords);
  print(
    "bench: checks passed: right password accepted, wrong password refused, imap disabled " +
      "refused, with the same SOAP calls, for each row; the daemon rows' logins all counted by " +
      "the daemon, none forked",
  );
  for (const line of await describeHelper(ws)) print(line);

  /** One timed run: every login must succeed and make the expected calls. */
  const timed = (c: Case, args: string[]): Promise<DriverRun> =>
    checkedRun(ws, c, {
      what: `right password (user ${c.user})`,
      user: c.user,
      password: c.password,
      outcome: "PAM_SUCCESS",
      calls: acceptedCalls(c),
      warmup: 1,
    }, args);

  // --- latency, one client: rounds alternate the order of the rows. Each round also measures
  // Deno's first-TLS cost in fresh processes, under the same load.
  const lat = new Map<Case, DriverRun[]>(cases.map((c) => [c, []]));
  const probes = new TlsCostProbes(ws.sim.httpsUrl!, ws.pki.caFile);
  for (let round = 0; round < options.latencyRounds; round++) {
    const order = round % 2 === 0 ? cases : [...cases].reverse();
    for (const c of order) {
      lat.get(c)!.push(await timed(c, ["--count", String(options.latencyCount)]));
    }
    for (let i = 0; i < options.tlsProbes; i++) await probes.take();
  }
  const oneClient = await ws.daemon.status();
  // --- throughput, K clients for a fixed time each; rounds (median taken) so that a burst of
  // other work on the machine spoils one run, not the figure.
  const thr = new Map<Case, Map<number, DriverRun[]>>(
    cases.map((c) => [c, new Map(options.clients.map((k) => [k, []]))]),
  );
  let turn = 0;
  for (let round = 0; round < options.throughputRounds; round++) {
    for (const k of options.clients) {
      const order = turn++ % 2 === 0 ? cases : [...cases].reverse();
      for (const c of order) {
        const args = ["--clients", String(k), "--duration", String(options.throughputMs)];
        thr.get(c)!.get(k)!.push(await timed(c, args));
      }
    }
  }
  const afterTimed = await ws.daemon.status();
  const daemonPeakKb = ws.daemon.peakRssKb();

  // --- the flood, last: it must not leave its traces in the other rows' figures.
  const flood = await runFlood(
    ws,
    options.floodLogins,
    options.floodClients,
    options.floodPassword,
  );

  const { rows, lines, finalLine } = report({
    cases,
    lat,
    thr,
    options,
    daemonPeakKb,
    daemonStatus: { oneClient, afterTimed },
    tls: probes.result(),
  });
  for (const l of lines) print(l);
  print(describeFlood(flood));
  print(`bench: load average after: ${await loadAvg()}`);
  print(finalLine);
  return { rows, finalLine };
}
