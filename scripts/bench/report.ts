// The bench's report: a row per contender from its checked runs, the table, the targets with their
// verdicts, the https:// figures, and the closing line
//   bench: pam_mapi p50=…ms p95=…ms; daemon p50=…ms p95=…ms; baseline p50=…ms; ratio=…;
//   daemon_ratio=…; throughput=… auth/s; daemon_throughput=… auth/s
// (one client over http:// without service=; ratios are a mode's p50 over the baseline's;
// throughput with 4 clients for the fork path, 8 for the daemon).
import type { Case } from "./checks.ts";
import type { DriverRun } from "./driver.ts";
import { fmt, median, percentile, table } from "./stats.ts";
import type { TlsCost } from "./tls_cost.ts";
import { type Impl, label, type Mode, type RowKey, type Transport } from "./workspace.ts";

export interface Row extends RowKey {
  /** Latency of one client, milliseconds. */
  latMs: number[];
  /** Logins per second, by client count. */
  throughput: Map<number, number>;
  /** Median latency under load, by client count, milliseconds. */
  loadedP50: Map<number, number>;
  /**
   * CPU per login in the one-client latency runs, everything below the PAM host: the PAM client
   * processes (libpam, the module) with the helper or the script and curl they start, and for a
   * daemon row the daemon's CPU meanwhile.
   */
  cpuMsPerAuth: number;
  /** The server's CPU per login in the same runs. */
  serverCpuMsPerAuth: number;
  /** Largest process: the forked helper, the daemon, or sh/curl for the baseline. */
  peakRssKb: number;
}

export interface ReportInput {
  cases: Case[];
  lat: Map<Case, DriverRun[]>;
  thr: Map<Case, Map<number, DriverRun[]>>;
  options: { clients: number[]; throughputMs: number; throughputRounds: number };
  /** The daemon's VmHWM after the timed runs, and its status (§7.4) after the one-client runs and
   * after all timed runs. */
  daemonPeakKb: number;
  daemonStatus: { oneClient: Record<string, unknown>; afterTimed: Record<string, unknown> };
  tls: TlsCost;
}

function makeRow(c: Case, latRuns: DriverRun[], thr: Map<number, DriverRun[]>, daemonKb: number) {
  const throughput = new Map<number, number>();
  const loadedP50 = new Map<number, number>();
  for (const [k, rs] of thr) {
    throughput.set(k, median(rs.map((r) => r.transactions / (r.wallUs / 1e6))));
    loadedP50.set(k, median(rs.flatMap((r) => r.latUs)) / 1000);
  }
  const sum = (f: (r: DriverRun) => number) => latRuns.reduce((a, r) => a + f(r), 0);
  const logins = sum((r) => r.transactions);
  // The server and the daemon also served each run's warm-up login; the clients' CPU excludes it.
  const served = logins + latRuns.length;
  return {
    impl: c.impl,
    mode: c.mode,
    transport: c.transport,
    latMs: latRuns.flatMap((r) => r.latUs.map((u) => u / 1000)),
    throughput,
    loadedP50,
    cpuMsPerAuth: sum((r) => r.cpuUs) / 1000 / logins + sum((r) => r.daemonCpuMs) / served,
    serverCpuMsPerAuth: sum((r) => r.serverCpuMs) / served,
    peakRssKb: c.impl === "daemon"
      ? daemonKb
      : Math.max(...[...latRuns, ...[...thr.values()].flat()].map((r) => r.maxRssKb)),
  };
}

const verdict = (ok: boolean) => (ok ? "met" : "MISSED");

/** The rows, the lines to print (table, targets, https), and the closing line. */
export function report(i: ReportInput): { rows: Row[]; lines: string[]; finalLine: string } {
  const { clients, throughputMs, throughputRounds } = i.options;
  const rows: Row[] = i.cases.map((c) => makeRow(c, i.lat.get(c)!, i.thr.get(c)!, i.daemonPeakKb));
  const header = [
    "",
    "n",
    "p50 ms",
    "p95 ms",
    "max ms",
    ...clients.map((k) => `${k} cl auth/s`),
    ...clients.filter((k) => k > 1).map((k) => `p50@${k} ms`),
    "CPU ms/auth",
    "server CPU",
    "peak RSS MB",
  ];
  const body = rows.map((r) => [
    label(r),
    String(r.latMs.length),
    fmt(percentile(r.latMs, 50), 2),
    fmt(percentile(r.latMs, 95), 2),
    fmt(Math.max(...r.latMs), 2),
    ...clients.map((k) => fmt(r.throughput.get(k) ?? NaN)),
    ...clients.filter((k) => k > 1).map((k) => fmt(r.loadedP50.get(k) ?? NaN, 2)),
    fmt(r.cpuMsPerAuth, 2),
    fmt(r.serverCpuMsPerAuth, 2),
    fmt(r.peakRssKb / 1024),
  ]);
  const lines = [
    "",
    table(header, body),
    "",
    "pam_mapi: a helper forked per login (daemon=off); daemon: pam_mapi asking the resident " +
    "helper (daemon=SOCKET); baseline: pam_exec + curl. latency: one client, whole PAM " +
    "transaction (pam_start to pam_end); auth/s: K client processes for " +
    `${throughputMs} ms, median of ${throughputRounds} runs; p50@K: latency under that load; ` +
    "CPU ms/auth: everything below the PAM host (libpam and the module, the helper or the " +
    "script and curl, the daemon's share); server CPU: kopano-sim's, per login; peak RSS: " +
    "largest process (the helper, the daemon, or sh or curl)",
  ];

  const find = (impl: Impl, mode: Mode = "plain", transport: Transport = "http") =>
    rows.find((r) => r.impl === impl && r.mode === mode && r.transport === transport)!;
  const p = (r: Row, q: number) => percentile(r.latMs, q);
  const mapi = find("pam_mapi");
  const daemon = find("daemon");
  const b50 = p(find("baseline"), 50);
  const [p50, d50] = [p(mapi, 50), p(daemon, 50)];
  const ratio = p50 / b50;
  const dRatio = d50 / b50;
  const kFork = clients.includes(4) ? 4 : clients[clients.length - 1];
  const kDaemon = clients.includes(8) ? 8 : clients[clients.length - 1];
  const t = mapi.throughput.get(kFork) ?? NaN;
  const dt = daemon.throughput.get(kDaemon) ?? NaN;
  const peakMb = Math.max(...rows.filter((r) => r.impl === "pam_mapi").map((r) => r.peakRssKb)) /
    1024;
  lines.push(
    `targets: p50 <= 25 ms ${verdict(p50 <= 25)}; p50 <= 1.3 x baseline ${
      verdict(ratio <= 1.3)
    }; ${kFork} clients >= 80 auth/s ${verdict(t >= 80)}; helper peak RSS <= 40 MB ${
      verdict(peakMb <= 40)
    } (${fmt(peakMb)} MB)`,
    `targets (daemon): p50 <= 0.15 x baseline ${verdict(dRatio <= 0.15)} (${fmt(dRatio, 3)}); ` +
      `${kDaemon} clients >= 6 x the fork path's ${kFork} clients ${verdict(dt >= 6 * t)} ` +
      `(${fmt(dt / t)} x); the fork path's p50 <= 1.3 x baseline ${verdict(ratio <= 1.3)} ` +
      `(${fmt(ratio, 2)})`,
    `targets (daemon, absolute, for the 2-core machine of the issue; absolute times vary by a ` +
      `third or more between machines): p50 <= 2 ms ${verdict(d50 <= 2)} (${fmt(d50, 2)} ms); ` +
      `${kDaemon} clients >= 500 auth/s ${verdict(dt >= 500)} (${fmt(dt)} auth/s)`,
  );
  lines.push(...httpsLines(find("pam_mapi", "plain", "https"), mapi, i.tls));
  const secure = find("daemon", "plain", "https");
  const s50 = p(secure, 50);
  const pool = i.daemonStatus.afterTimed.kopano_connections as { opened: number; reused: number };
  const own = i.daemonStatus.oneClient.latency_ms as { p50: number; p95: number; samples: number };
  lines.push(
    `https: daemon https:// p50 ${fmt(s50, 2)} ms = http:// p50 ${fmt(d50, 2)} ms + ` +
      `${fmt(s50 - d50, 2)} ms (${fmt(s50 / d50, 2)} x); CPU per login ` +
      `${fmt(secure.cpuMsPerAuth, 2)} ms = ${fmt(daemon.cpuMsPerAuth, 2)} ms + ` +
      `${fmt(secure.cpuMsPerAuth - daemon.cpuMsPerAuth, 2)} ms`,
    `targets (https, daemon): p50 <= 1.5 x http ${verdict(s50 <= 1.5 * d50)}`,
    `daemon: its own latency (request read to reply sent) in the one-client runs, over its ` +
      `last ${own.samples} logins: p50 ${fmt(own.p50, 2)} ms, p95 ${fmt(own.p95, 2)} ms; ` +
      `after all timed runs: connections to the server opened ${pool.opened}, reused ` +
      `${pool.reused}; peak RSS ${fmt(i.daemonPeakKb / 1024)} MB`,
  );
  const finalLine = `bench: pam_mapi p50=${fmt(p50)}ms p95=${fmt(p(mapi, 95))}ms; ` +
    `daemon p50=${fmt(d50, 2)}ms p95=${fmt(p(daemon, 95), 2)}ms; baseline p50=${fmt(b50)}ms; ` +
    `ratio=${fmt(ratio, 2)}; daemon_ratio=${fmt(dRatio, 3)}; throughput=${fmt(t)} auth/s; ` +
    `daemon_throughput=${fmt(dt)} auth/s`;
  return { rows, lines, finalLine };
}

/**
 * The fork path's https:// against its http:// row, and against Deno's first-TLS cost measured in
 * fresh processes right now (docs/performance.md, "https://", explains where it goes).
 */
function httpsLines(secure: Row, plain: Row, tls: TlsCost): string[] {
  const s50 = percentile(secure.latMs, 50);
  const p50 = percentile(plain.latMs, 50);
  return [
    `https: pam_mapi https:// p50 ${fmt(s50)} ms = http:// p50 ${fmt(p50)} ms + ` +
    `${fmt(s50 - p50)} ms (${fmt(s50 / p50, 2)} x); CPU per login ` +
    `${fmt(secure.cpuMsPerAuth)} ms = ${fmt(plain.cpuMsPerAuth)} ms + ` +
    `${fmt(secure.cpuMsPerAuth - plain.cpuMsPerAuth)} ms`,
    `https: a fresh Deno process's first TLS connection ${fmt(tls.first)} ms ` +
    `(${fmt(tls.firstCpu)} ms CPU), its second ${fmt(tls.second)} ms; seeding AWS-LC's random ` +
    `generator first takes ${fmt(tls.rng)} ms and leaves ${fmt(tls.firstAfterRng)} ms for the ` +
    `first connection (medians of ${tls.runs} processes each); the daemon pays it once, at its ` +
    "first https:// login",
    `targets (https): p50 <= 1.5 x http ${verdict(s50 <= 1.5 * p50)}; p50 <= http p50 + ` +
    `first-TLS cost ${verdict(s50 <= p50 + tls.first)} (${fmt(p50 + tls.first)} ms)`,
  ];
}
