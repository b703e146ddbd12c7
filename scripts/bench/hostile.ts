// `deno task bench --hostile`: the resident helper against a hostile Kopano server, through the
// real libpam, under the memory limit of pam_mapi.service (MemoryMax=256M, here a cgroup v1 memory
// controller group of its own). Two measurements:
//
// 1. Each hostile reply alone (tests/lib/hostile_kopano.ts): the daemon's CPU time for one login
//    that gets it, and the login's result. A reader that copies what it buffered on every read
//    spends seconds on a reply of 1-byte chunks, and its only thread serves nobody meanwhile.
// 2. The flood (tests/lib/hostile_flood.ts): 127 hostile logins at once, every kind of reply,
//    while a healthy login through the same daemon is made and timed again and again: whether the
//    daemon survives, its peak RSS (VmHWM) and the cgroup's peak charge, the healthy logins' times.
//
// Run it alone for figures you quote: `deno run -A scripts/bench/hostile.ts [--helper H --module M
// --rounds N]` measures another build (main's, say) with the same machinery.
import { parseArgs } from "node:util";
import { login, procUsage, startDaemon, trustedDir } from "../../tests/daemon/lib.ts";
import { buildFloodTools, runHostileFlood, showResults } from "../../tests/lib/hostile_flood.ts";
import {
  ALL_KINDS,
  HOSTILE_KINDS,
  type HostileKind,
  startHostileKopano,
} from "../../tests/lib/hostile_kopano.ts";
import { makeMemoryCgroup } from "../../tests/lib/memory_cgroup.ts";
import { BenchError, ROOT } from "./driver.ts";
import { CpuMeter, loadAvg, peakRssKb } from "./proc.ts";
import { startSim } from "./sim.ts";
import { fmt, percentile } from "./stats.ts";

/** pam_mapi.service's MemoryMax=. */
export const UNIT_MEMORY_MAX = 256 * 1024 * 1024;

export interface HostileOptions {
  helper: string;
  module: string;
  rounds: number;
  /** The cgroup's limit (default pam_mapi.service's); 0: none, the daemon runs as it is. */
  memoryMax?: number;
  /** Seconds a probe login may take (a slow reader needs long for a 1-byte-chunk reply). */
  probeTimeoutS?: number;
  /** Probe these kinds one by one (default: all). */
  kinds?: HostileKind[];
  print?: (line: string) => void;
}

export interface ProbeResult {
  kind: HostileKind;
  result: string;
  cpuMs: number;
  wallMs: number;
}

export interface HostileReport {
  probes: ProbeResult[];
  alive: boolean;
  oomKills: number;
  peakRssKb: number | null;
  cgroupPeakBytes: number;
  hostile: Map<string, number>;
  healthyMs: number[];
  healthyResults: Map<string, number>;
}

/** Replies that never end: their probes need only a short timeout=. */
const STALLS = new Set<HostileKind>([
  "stalled-length",
  "stalled-chunked",
  "endless-headers",
  "slow-status-line",
]);

const mb = (kb: number) => fmt(kb / 1024);

export async function runHostile(o: HostileOptions): Promise<HostileReport> {
  const print = o.print ?? ((s: string) => console.log(s));
  await using stack = new AsyncDisposableStack();
  const dir = await trustedDir("pam_mapi_hostile_");
  stack.defer(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
  const limit = o.memoryMax ?? UNIT_MEMORY_MAX;
  const cgroup = stack.use(makeMemoryCgroup(limit || Number.MAX_SAFE_INTEGER, "pam_mapi_hostile"));
  const sim = stack.use(await startSim());
  const hostile = stack.use(await startHostileKopano());
  const tools = stack.use(await buildFloodTools());
  // A probe may kill the daemon (the cgroup's OOM killer): then the next one gets a new daemon.
  const start = () => startDaemon({ helper: o.helper, dir, wrap: cgroup.wrap });
  let daemon = await start();
  stack.defer(async () => void await daemon.stop());
  print(
    `hostile: load average before: ${await loadAvg()}; daemon pid ${daemon.pid}, in a ` +
      `memory cgroup ${limit ? `limited to ${limit / 1024 / 1024} MiB` : "without a limit"}`,
  );
  print(`hostile: fresh daemon RSS ${mb(procUsage(daemon.pid).rssKb)} MB`);

  const probes: ProbeResult[] = [];
  for (const kind of o.kinds ?? ALL_KINDS) {
    const cpu = new CpuMeter(daemon.pid);
    const before = cpu.ms();
    // Looked at every 100 ms: what a daemon that gets killed used is then known too.
    const looking = setInterval(() => cpu.ms(), 100);
    const t0 = performance.now();
    const timeout = STALLS.has(kind) ? 5 : o.probeTimeoutS ?? 30;
    const r = await login(daemon.socket, {
      user: "alice",
      password: "hostile-probe",
      args: [`socket=${hostile.url(kind)}`, `timeout=${timeout}`],
    }).then((x) => x.result, (e) => `no reply (${(e as Error).message.slice(0, 60)})`);
    clearInterval(looking);
    const p = { kind, result: r, cpuMs: cpu.ms() - before, wallMs: performance.now() - t0 };
    probes.push(p);
    let after: string;
    try {
      after = `RSS now ${mb(procUsage(daemon.pid).rssKb)} MB`;
    } catch {
      after = `the daemon DIED (OOM kills so far: ${cgroup.oomKills()}); starting another`;
      await daemon.stop();
      daemon = await start();
    }
    print(
      `hostile: ${kind} (${HOSTILE_KINDS[kind]}): ${p.result}, daemon CPU ${fmt(p.cpuMs)} ms, ` +
        `${fmt(p.wallMs)} ms wall, ${after}`,
    );
  }

  // The flood gets a fresh daemon, and the group's peak starts over with it.
  await daemon.stop();
  daemon = await start();
  cgroup.resetMaxUsage();
  const oomBefore = cgroup.oomKills(); // the probes' daemons may have been killed
  print(`hostile: fresh daemon for the flood, pid ${daemon.pid}`);
  const cpu = new CpuMeter(daemon.pid);
  const cpuBefore = cpu.ms();
  const looking = setInterval(() => cpu.ms(), 100);
  let alive = true;
  daemon.exited.then(() => (alive = false));
  let sampledKb = 0;
  const sample = () => {
    try {
      sampledKb = Math.max(sampledKb, peakRssKb(daemon.pid));
    } catch { /* gone */ }
  };
  const flood = await runHostileFlood({
    daemonSocket: daemon.socket,
    module: o.module,
    hostileUrl: hostile.url("mix"),
    healthy: { url: sim.url, user: "alice", password: "secret" },
    tools,
    rounds: o.rounds,
    onTick: sample,
  });
  await new Promise((r) => setTimeout(r, 200));
  sample();
  clearInterval(looking);
  const floodCpuMs = cpu.ms() - cpuBefore;
  if (flood.hostile.has("PAM_SUCCESS")) {
    throw new BenchError(
      `a hostile login succeeded (${showResults(flood.hostile)}): no reply of the hostile ` +
        "server says success",
    );
  }
  const healthyMs = flood.healthy.map((h) => h.ms);
  const healthyResults = new Map<string, number>();
  for (const h of flood.healthy) {
    healthyResults.set(h.result, (healthyResults.get(h.result) ?? 0) + 1);
  }
  const report: HostileReport = {
    probes,
    alive,
    oomKills: cgroup.oomKills() - oomBefore,
    peakRssKb: alive ? sampledKb : null,
    cgroupPeakBytes: cgroup.maxUsageBytes(),
    hostile: flood.hostile,
    healthyMs,
    healthyResults,
  };
  print(
    `hostile: flood of ${o.rounds} × 127 hostile logins at once (every kind) in ` +
      `${fmt(flood.seconds)} s: ${showResults(flood.hostile)}; daemon CPU ${fmt(floodCpuMs)} ms`,
  );
  print(
    `hostile: daemon ${alive ? "alive" : "DEAD"} after the flood; OOM kills ${report.oomKills}; ` +
      `peak RSS ${alive ? `${mb(sampledKb)} MB` : "unknown"}; cgroup peak ` +
      `${fmt(report.cgroupPeakBytes / 1024 / 1024)} MiB` +
      (limit ? ` of ${limit / 1024 / 1024}` : ""),
  );
  print(
    `hostile: ${healthyMs.length} healthy logins meanwhile: ${showResults(healthyResults)}; ` +
      (healthyMs.length
        ? `p50 ${fmt(percentile(healthyMs, 50))} ms, max ${fmt(Math.max(...healthyMs))} ms`
        : "none made"),
  );
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  const healthyOk = healthyMs.length > 0 && healthyResults.size === 1 &&
    healthyResults.has("PAM_SUCCESS") && Math.max(...healthyMs) < 1000;
  print(
    `targets (hostile): daemon alive ${verdict(alive && report.oomKills === 0)}; peak RSS under ` +
      `half the limit ${verdict(alive && sampledKb < UNIT_MEMORY_MAX / 2 / 1024)}; every healthy ` +
      `login PAM_SUCCESS within 1 s ${verdict(healthyOk)}`,
  );
  print(`hostile: load average after: ${await loadAvg()}`);
  return report;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      helper: { type: "string", default: `${ROOT}/dist/pam_mapi_helper` },
      module: { type: "string", default: `${ROOT}/dist/pam_mapi.so` },
      rounds: { type: "string", default: "1" },
      "memory-max": { type: "string", default: String(UNIT_MEMORY_MAX / 1024 / 1024) },
    },
  });
  await runHostile({
    helper: values.helper,
    module: values.module,
    rounds: Number(values.rounds),
    memoryMax: Number(values["memory-max"]) * 1024 * 1024,
  });
}
