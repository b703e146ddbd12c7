// pam_bench (scripts/bench/pam_bench.c), the bench's load generator: built into the bench's private
// directory, run, and its "key=value" report read back.
import { run, runOrThrow } from "../lib/run.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

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
  /** CPU the resident helper used meanwhile, milliseconds (0 when the row does not use it). */
  daemonCpuMs: number;
}

/** Compiles pam_bench to `out`, warning-free. */
export async function buildDriver(out: string): Promise<void> {
  await runOrThrow("cc", [
    "-std=gnu11",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-O2",
    "-o",
    out,
    `${ROOT}/scripts/bench/pam_bench.c`,
    "-lpam",
  ]);
}

/** Runs pam_bench `args` CONFDIR SERVICE as `user` with `password`; throws unless it exits 0. */
export async function drive(
  driver: string,
  conf: string,
  service: string,
  user: string,
  password: string,
  args: string[],
): Promise<DriverRun> {
  const r = await run(driver, ["--user", user, ...args, conf, service], {
    stdin: password + "\n",
  });
  if (r.code !== 0) {
    throw new BenchError(`pam_bench ${args.join(" ")} failed (${r.code}):\n${r.stderr}`);
  }
  return parseDriver(r.stdout);
}

/** Reads pam_bench's "key=value" report. */
export function parseDriver(stdout: string): DriverRun {
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
    daemonCpuMs: 0,
  };
}

/** "logon×2 logoff×2", or "none". */
export function showCounts(m: Map<string, number>): string {
  return [...m].map(([k, v]) => `${k}×${v}`).join(" ") || "none";
}

/** Whether two counts are the same, a missing key counting as 0. */
export function sameCounts(got: Map<string, number>, want: Map<string, number>): boolean {
  const keys = new Set([...got.keys(), ...want.keys()]);
  for (const k of keys) if ((got.get(k) ?? 0) !== (want.get(k) ?? 0)) return false;
  return true;
}
