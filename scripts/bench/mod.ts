// The machinery of `deno task bench` (SPEC section 8): pam_mapi.so and the pam_exec + curl
// baseline, side by side in one run, through the real libpam (scripts/bench/pam_bench.c) against
// the Kopano-compatible server in a process of its own, with and without service=; and pam_mapi
// over https:// (the server's TLS listener, cafile= with a throw-away CA) next to its http:// row.
//
// Every number comes with a check that it measured the right thing: each run must end in
// PAM_SUCCESS for every transaction and make exactly the SOAP calls expected of it (counted in
// the server's request log), and before any timing both contenders must refuse a wrong password
// and a user whose feature is disabled. A failed check throws BenchError: no table is printed.
import { buildLauncher, launcherInfo } from "../lib/helper_build.ts";
import { makeTestPki } from "../../tests/lib/pki.ts";
import { run, runOrThrow } from "../lib/run.ts";
import { diff, startSim } from "./sim.ts";
import { fmt, median, percentile, table } from "./stats.ts";
import { TlsCostProbes } from "./tls_cost.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

export type Impl = "pam_mapi" | "baseline";
export type Mode = "plain" | "service";
/** How the module reaches the server: the sim's plain HTTP or its TLS listener. */
export type Transport = "http" | "https";
export const IMPLS: Impl[] = ["pam_mapi", "baseline"];
export const MODES: Mode[] = ["plain", "service"];
/** The feature service= asks for (bob has it enabled, alice has not: the server disables it). */
export const FEATURE = "imap";

export interface BenchOptions {
  /** The built helper and module (copied to a private directory before use). */
  helper: string;
  module: string;
  /** The baseline's script (pam_exec expose_authtok). */
  baselineScript: string;
  /** Latency: rounds, each running `latencyCount` logins per contender and mode, alternating. */
  latencyRounds: number;
  latencyCount: number;
  /** Throughput: client counts, how long each run lasts, and how many rounds (median taken). */
  clients: number[];
  throughputMs: number;
  throughputRounds: number;
  /** Fresh processes per latency round that measure Deno's first-TLS cost (tls_cost.ts). */
  tlsProbes: number;
  /** The listener the https:// row uses (tests set "plain" to see the transport check fail). */
  tlsListener?: "tls" | "plain";
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
} satisfies BenchOptions;

/** A check failed: the numbers would not mean anything. */
export class BenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BenchError";
  }
}

/** What one pam_bench run reported. */
export interface DriverRun {
  clients: number;
  transactions: number;
  wallUs: number;
  maxRssKb: number;
  cpuUs: number;
  results: Map<string, number>;
  latUs: number[];
  /** CPU the server used meanwhile, milliseconds. */
  serverCpuMs: number;
}

export interface Row {
  impl: Impl;
  mode: Mode;
  transport: Transport;
  /** Latency of one client, milliseconds. */
  latMs: number[];
  /** Transactions per second, by client count. */
  throughput: Map<number, number>;
  /** Median latency under load, by client count, milliseconds. */
  loadedP50: Map<number, number>;
  /** Client-side CPU per login in the one-client latency runs (module, helper or script, curl). */
  cpuMsPerAuth: number;
  /** The server's CPU per login in the same runs. */
  serverCpuMsPerAuth: number;
  peakRssKb: number;
}

export interface BenchReport {
  rows: Row[];
  /** The closing line: `bench: pam_mapi p50=…ms p95=…ms; baseline p50=…ms; ratio=…; throughput=… auth/s`. */
  finalLine: string;
}

interface Case {
  impl: Impl;
  mode: Mode;
  transport: Transport;
  service: string;
  user: string;
  password: string;
}

const RIGHT = {
  plain: { user: "alice", password: "secret" },
  service: { user: "bob", password: "bobpass" },
};

function parseDriver(stdout: string): DriverRun {
  const kv = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1));
  }
  const num = (k: string) => {
    const v = Number(kv.get(k));
    if (!kv.has(k) || !Number.isFinite(v)) {
      throw new BenchError(`pam_bench printed no ${k}:\n${stdout}`);
    }
    return v;
  };
  const results = new Map<string, number>();
  for (const [k, v] of kv) if (k.startsWith("result_")) results.set(k.slice(7), Number(v));
  const lat = (kv.get("lat_us") ?? "").split(" ").filter((s) => s !== "").map(Number);
  return {
    clients: num("clients"),
    transactions: num("transactions"),
    wallUs: num("wall_us"),
    maxRssKb: num("maxrss_kb"),
    cpuUs: num("cpu_us"),
    results,
    latUs: lat,
    serverCpuMs: 0,
  };
}

function showCalls(m: Map<string, number>): string {
  return [...m].map(([k, v]) => `${k}×${v}`).join(" ") || "none";
}

function sameCalls(got: Map<string, number>, want: Record<string, number>): boolean {
  const keys = new Set([...got.keys(), ...Object.keys(want)]);
  for (const k of keys) if ((got.get(k) ?? 0) !== (want[k] ?? 0)) return false;
  return true;
}

async function machine(): Promise<string> {
  const cpu = /model name\s*:\s*(.*)/.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1] ?? "?";
  const cores = navigator.hardwareConcurrency;
  return `${cores} cores (${cpu.trim()}), Linux ${Deno.osRelease()}, deno ${Deno.version.deno}`;
}

async function loadAvg(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
}

/** Runs the whole bench; returns the report (already printed) or throws BenchError. */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const print = options.print ?? ((s: string) => console.log(s));
  for (const f of [options.helper, options.module, options.baselineScript]) {
    try {
      await Deno.stat(f);
    } catch {
      throw new BenchError(`${f} is missing (deno task bench runs deno task build first)`);
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_bench_" });
  let pkiDir: string | null = null;
  try {
    await Deno.chmod(dir, 0o755);
    // Private copies: the module refuses a helper that is not root-owned in root-owned
    // directories, and another engineer's `deno task build` may rewrite dist/ meanwhile.
    const helper = `${dir}/pam_mapi_helper`;
    const module = `${dir}/pam_mapi.so`;
    const script = `${dir}/pam_exec_kopano.sh`;
    await Deno.copyFile(options.module, module);
    // The bundle's launcher has the Deno cache directory it was built for compiled in
    // (dist/cache in a checkout). The copy gets a fresh one, like the single-entry
    // /var/cache/pam_mapi of an installation: dist/cache collects an entry for every path the
    // tests run a bundle from, and every helper start reads that SQLite cache's whole write-ahead
    // log (~3 ms at 7 MB). A compiled helper is copied as it is.
    const launcher = await launcherInfo(options.helper);
    if (launcher) {
      await Deno.copyFile(launcher.bundle, `${dir}/pam_mapi_helper.js`);
      await buildLauncher(ROOT, helper, {
        deno: launcher.deno,
        bundle: `${dir}/pam_mapi_helper.js`,
        cache: `${dir}/c`,
      });
    } else {
      await Deno.copyFile(options.helper, helper);
    }
    await Deno.copyFile(options.baselineScript, script);
    for (const f of [helper, module, script]) await Deno.chmod(f, 0o755);
    const driver = `${dir}/pam_bench`;
    await runOrThrow("cc", [
      "-std=gnu11",
      "-D_GNU_SOURCE",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-O2",
      "-o",
      driver,
      `${ROOT}/scripts/bench/pam_bench.c`,
      "-lpam",
    ]);

    // A throw-away CA and a server certificate (ECDSA P-256) for the sim's TLS listener.
    const pki = await makeTestPki();
    pkiDir = pki.dir;
    await using sim = await startSim(pki);
    const conf = `${dir}/pam.d`;
    await Deno.mkdir(conf);
    const mapiLine = `auth required ${module} helper=${helper}`;
    const services: Record<string, string> = {
      other: "auth required pam_deny.so",
      mapi: `${mapiLine} socket=${sim.url}`,
      mapi_svc: `${mapiLine} socket=${sim.url} service=${FEATURE}`,
      mapi_tls: options.tlsListener === "plain"
        ? `${mapiLine} socket=${sim.url}`
        : `${mapiLine} socket=${sim.httpsUrl} cafile=${pki.caFile}`,
      exec: `auth required pam_exec.so expose_authtok quiet ${script} ${sim.url}`,
      exec_svc: `auth required pam_exec.so expose_authtok quiet ${script} ${sim.url} ${FEATURE}`,
    };
    for (const [name, line] of Object.entries(services)) {
      await Deno.writeTextFile(`${conf}/${name}`, line + "\n");
    }
    const cases: Case[] = [];
    for (const mode of MODES) {
      for (const impl of IMPLS) {
        const service = (impl === "pam_mapi" ? "mapi" : "exec") +
          (mode === "service" ? "_svc" : "");
        const password = options.passwords?.[impl] ?? RIGHT[mode].password;
        cases.push({ impl, mode, transport: "http", service, user: RIGHT[mode].user, password });
      }
    }
    // The fork path over TLS: each login is a new helper process, so each pays Deno's first-TLS
    // cost (README "Performance").
    cases.push({
      impl: "pam_mapi",
      mode: "plain",
      transport: "https",
      service: "mapi_tls",
      user: RIGHT.plain.user,
      password: options.passwords?.pam_mapi ?? RIGHT.plain.password,
    });
    const label = (c: { impl: Impl; mode: Mode; transport: Transport }) =>
      (c.impl === "pam_mapi" ? "pam_mapi" : "baseline") +
      (c.mode === "service" ? ` service=${FEATURE}` : "") +
      (c.transport === "https" ? " https://" : "");
    /** Every request of a run came over the case's transport (TLS for https://). */
    const sameTransport = (c: Case, before: Map<string, number>) => {
      const via = diff(before, sim.transports());
      const want = c.transport === "https" ? "tls" : "tcp";
      if ([...via.keys()].some((t) => t !== want)) {
        throw new BenchError(`${label(c)}: requests came over ${showCalls(via)}, not ${want} only`);
      }
    };

    const drive = async (
      c: Case,
      args: string[],
      user = c.user,
      password = c.password,
    ): Promise<DriverRun> => {
      const r = await run(driver, ["--user", user, ...args, conf, c.service], {
        stdin: password + "\n",
      });
      if (r.code !== 0) {
        throw new BenchError(`pam_bench ${args.join(" ")} failed (${r.code}):\n${r.stderr}`);
      }
      return parseDriver(r.stdout);
    };

    /** One timed run: every transaction must succeed and make the expected calls. */
    const timed = async (c: Case, args: string[], warmup: number): Promise<DriverRun> => {
      const before = sim.counts();
      const via = sim.transports();
      const cpu0 = sim.cpuMs();
      const r = await drive(c, ["--warmup", String(warmup), ...args]);
      r.serverCpuMs = sim.cpuMs() - cpu0;
      await sim.sync();
      const calls = diff(before, sim.counts());
      const ok = r.results.get("PAM_SUCCESS") ?? 0;
      if (ok !== r.transactions || r.latUs.length !== r.transactions) {
        throw new BenchError(
          `${label(c)}: ${r.transactions - ok} of ${r.transactions} logins with the right ` +
            `password did not succeed (${showCalls(r.results)})`,
        );
      }
      const n = r.transactions + warmup;
      const want = { logon: n, logoff: n, ...(c.mode === "service" ? { getUser: n } : {}) };
      if (!sameCalls(calls, want)) {
        throw new BenchError(
          `${label(c)}: ${n} logins made the calls ${showCalls(calls)}, expected ` +
            showCalls(new Map(Object.entries(want))),
        );
      }
      sameTransport(c, via);
      return r;
    };

    print(`bench: ${await machine()}`);
    print(
      `bench: load average before: ${await loadAvg()}; kopano-sim at ${sim.url} and ` +
        `${sim.httpsUrl}`,
    );

    // --- correctness: each contender accepts the right password, refuses a wrong one, and with
    // service= refuses a user whose feature is disabled; with exactly the expected SOAP calls.
    for (const c of cases) {
      const samples: Array<
        { what: string; user: string; password: string; success: boolean; calls: string[] }
      > = [
        {
          what: "right password",
          user: c.user,
          password: c.password,
          success: true,
          calls: c.mode === "service" ? ["logon", "getUser", "logoff"] : ["logon", "logoff"],
        },
        {
          what: "wrong password",
          user: c.user,
          password: c.password + "-wrong",
          success: false,
          calls: ["logon"],
        },
      ];
      if (c.mode === "service") {
        samples.push({
          what: `${FEATURE} disabled for the user`,
          user: RIGHT.plain.user,
          password: options.passwords?.[c.impl] ?? RIGHT.plain.password,
          success: false,
          calls: ["logon", "getUser", "logoff"],
        });
      }
      for (const s of samples) {
        const before = sim.counts();
        const via = sim.transports();
        const r = await drive(c, ["--count", "1"], s.user, s.password);
        await sim.sync();
        const calls = diff(before, sim.counts());
        const succeeded = r.results.get("PAM_SUCCESS") === 1;
        if (succeeded !== s.success) {
          throw new BenchError(
            `${label(c)}: ${s.what} (user ${s.user}) gave ${showCalls(r.results)}, ` +
              `expected ${s.success ? "PAM_SUCCESS" : "a refusal"}`,
          );
        }
        const want = Object.fromEntries(s.calls.map((k) => [k, 1]));
        if (!sameCalls(calls, want)) {
          throw new BenchError(
            `${label(c)}: ${s.what} made the calls ${showCalls(calls)}, expected ` +
              s.calls.join(" "),
          );
        }
        sameTransport(c, via);
      }
    }
    print(
      "bench: checks passed: right password accepted, wrong password refused, " +
        `${FEATURE} disabled refused, with the same SOAP calls, for both (pam_mapi also over ` +
        "https://)",
    );
    const flags = launcher?.flags.replace(/^run /, "") ?? "(compiled helper)";
    const cached: string[] = [];
    for (const f of ["v8_code_cache_v2", "v8_code_cache_v2-wal"]) {
      try {
        cached.push(`${fmt((await Deno.stat(`${dir}/c/${f}`)).size / 1024, 0)} KB`);
      } catch { /* absent */ }
    }
    print(
      `bench: helper: deno run ${flags}; V8 code cache ${cached.join(" + ") || "NOT written"}`,
    );

    // --- latency, one client: rounds alternate which contender goes first. Each round also
    // measures Deno's first-TLS cost in fresh processes, under the same load.
    const lat = new Map<Case, DriverRun[]>(cases.map((c) => [c, []]));
    const probes = new TlsCostProbes(sim.httpsUrl!, pki.caFile);
    for (let round = 0; round < options.latencyRounds; round++) {
      const order = round % 2 === 0 ? cases : [...cases].reverse();
      for (const c of order) {
        lat.get(c)!.push(await timed(c, ["--count", String(options.latencyCount)], 1));
      }
      for (let i = 0; i < options.tlsProbes; i++) await probes.take();
    }
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
          thr.get(c)!.get(k)!.push(await timed(c, args, 1));
        }
      }
    }

    const rows: Row[] = cases.map((c) => {
      const runs = [...lat.get(c)!, ...[...thr.get(c)!.values()].flat()];
      const latRuns = lat.get(c)!;
      const throughput = new Map<number, number>();
      const loadedP50 = new Map<number, number>();
      for (const [k, rs] of thr.get(c)!) {
        throughput.set(k, median(rs.map((r) => r.transactions / (r.wallUs / 1e6))));
        loadedP50.set(k, median(rs.flatMap((r) => r.latUs)) / 1000);
      }
      return {
        impl: c.impl,
        mode: c.mode,
        transport: c.transport,
        latMs: latRuns.flatMap((r) => r.latUs.map((u) => u / 1000)),
        throughput,
        loadedP50,
        cpuMsPerAuth: latRuns.reduce((a, r) => a + r.cpuUs, 0) / 1000 /
          latRuns.reduce((a, r) => a + r.transactions, 0),
        // warm-up logins included: the server served them too
        serverCpuMsPerAuth: latRuns.reduce((a, r) => a + r.serverCpuMs, 0) /
          latRuns.reduce((a, r) => a + r.transactions + 1, 0),
        peakRssKb: Math.max(...runs.map((r) => r.maxRssKb)),
      };
    });

    const header = [
      "",
      "n",
      "p50 ms",
      "p95 ms",
      "max ms",
      ...options.clients.map((k) => `${k} cl auth/s`),
      ...options.clients.filter((k) => k > 1).map((k) => `p50@${k} ms`),
      "CPU ms/auth",
      "server CPU",
      "peak RSS MB",
    ];
    const body = rows.map((r) => [
      label(r),
      String(r.latMs.length),
      fmt(percentile(r.latMs, 50)),
      fmt(percentile(r.latMs, 95)),
      fmt(Math.max(...r.latMs)),
      ...options.clients.map((k) => fmt(r.throughput.get(k) ?? NaN)),
      ...options.clients.filter((k) => k > 1).map((k) => fmt(r.loadedP50.get(k) ?? NaN)),
      fmt(r.cpuMsPerAuth),
      fmt(r.serverCpuMsPerAuth),
      fmt(r.peakRssKb / 1024),
    ]);
    print("");
    print(table(header, body));
    print("");
    print(
      "latency: one client, whole PAM transaction (pam_start to pam_end); auth/s: K client " +
        `processes for ${options.throughputMs} ms, median of ${options.throughputRounds} runs; ` +
        "p50@K: latency under that load; CPU ms/auth: everything below the PAM " +
        "host (module, helper or script and curl); server CPU: kopano-sim's, per login; " +
        "peak RSS: largest process (the helper; for the baseline sh or curl)",
    );
    print(`bench: load average after: ${await loadAvg()}`);

    const find = (impl: Impl, mode: Mode, transport: Transport = "http") =>
      rows.find((r) => r.impl === impl && r.mode === mode && r.transport === transport)!;
    const mapi = find("pam_mapi", "plain");
    const base = find("baseline", "plain");
    const p50 = percentile(mapi.latMs, 50);
    const p95 = percentile(mapi.latMs, 95);
    const b50 = percentile(base.latMs, 50);
    const k = options.clients.includes(4) ? 4 : options.clients[options.clients.length - 1];
    const ratio = p50 / b50;
    const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
    const peakMb = Math.max(...rows.filter((r) => r.impl === "pam_mapi").map((r) => r.peakRssKb)) /
      1024;
    const t4 = mapi.throughput.get(k) ?? NaN;
    print(
      `targets: p50 <= 25 ms ${verdict(p50 <= 25)}; p50 <= 1.3 x baseline ${
        verdict(ratio <= 1.3)
      }; ${k} clients >= 80 auth/s ${verdict(t4 >= 80)}; helper peak RSS <= 40 MB ${
        verdict(peakMb <= 40)
      } (${fmt(peakMb)} MB)`,
    );
    // https:// next to http://: what a forked helper pays for TLS, against Deno's own first-TLS
    // cost measured in fresh processes right now (README "Performance" explains where it goes).
    const secure = find("pam_mapi", "plain", "https");
    const s50 = percentile(secure.latMs, 50);
    const tls = probes.result();
    print(
      `https: pam_mapi https:// p50 ${fmt(s50)} ms = http:// p50 ${fmt(p50)} ms + ` +
        `${fmt(s50 - p50)} ms (${fmt(s50 / p50, 2)} x); CPU per login ` +
        `${fmt(secure.cpuMsPerAuth)} ms = ${fmt(mapi.cpuMsPerAuth)} ms + ` +
        `${fmt(secure.cpuMsPerAuth - mapi.cpuMsPerAuth)} ms`,
    );
    print(
      `https: a fresh Deno process's first TLS connection ${fmt(tls.first)} ms ` +
        `(${fmt(tls.firstCpu)} ms CPU), its second ${
          fmt(tls.second)
        } ms; seeding AWS-LC's random generator first takes ${fmt(tls.rng)} ms ` +
        `and leaves ${fmt(tls.firstAfterRng)} ms for the first connection (medians of ` +
        `${tls.runs} processes each)`,
    );
    print(
      `targets (https): p50 <= 1.5 x http ${verdict(s50 <= 1.5 * p50)}; p50 <= http p50 + ` +
        `first-TLS cost ${verdict(s50 <= p50 + tls.first)} (${fmt(p50 + tls.first)} ms)`,
    );
    const finalLine = `bench: pam_mapi p50=${fmt(p50)}ms p95=${fmt(p95)}ms; baseline p50=${
      fmt(b50)
    }ms; ratio=${fmt(ratio, 2)}; throughput=${fmt(t4)} auth/s`;
    print(finalLine);
    return { rows, finalLine };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    if (pkiDir) await Deno.remove(pkiDir, { recursive: true }).catch(() => {});
  }
}
