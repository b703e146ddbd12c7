// The hostile flood, through the real libpam and the real pam_mapi.so: many logins at once,
// through one resident helper, against a server that trickles the worst replies it can
// (hostile_kopano.ts); meanwhile, one login after another from a healthy Kopano-compatible server
// through the same daemon, each timed inside its PAM application. What the daemon must survive.
//
//   await using tools = await buildFloodTools();           // the two PAM applications, compiled
//   await using hostile = await startHostileKopano();
//   const report = await runHostileFlood({
//     daemonSocket: "/run/pam_mapi/helper.sock",
//     module: "/usr/lib/x86_64-linux-gnu/security/pam_mapi.so",
//     hostileUrl: hostile.url("mix"),
//     healthy: { url: "http://127.0.0.1:PORT/kopano", user: "alice", password: "secret" },
//     tools,
//   });
//
// The daemon is the caller's: it measures the daemon (alive? peak RSS?) around the call.
// runHostileFlood runs both PAM applications on this machine; runFlood runs the same flood
// wherever a FloodRunner runs them (tests/packaging/in_container.ts: in a container, through the
// installed module and the unit's daemon).
import { buildDriver, compileC, drive } from "../../scripts/bench/driver.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** tests/shim/driver (many threads, one login each) and pam_bench (a login timed inside it). */
export interface FloodTools extends AsyncDisposable {
  driver: string;
  pamBench: string;
}

/** Compiles both into a temporary directory (cc and the libpam headers are needed). */
export async function buildFloodTools(): Promise<FloodTools> {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_flood_tools_" });
  try {
    const driver = `${dir}/driver`;
    await compileC(driver, `${ROOT}/tests/shim/driver.c`, ["-lpam", "-ldl"]);
    const pamBench = `${dir}/pam_bench`;
    await buildDriver(pamBench);
    return {
      driver,
      pamBench,
      [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

/** When the flood's logins run: the same whichever FloodRunner runs them. */
export interface FloodSchedule {
  /**
   * Hostile logins at once. Default 127: with the healthy one that makes the daemon's limit of
   * 128 logins in progress (a 129th would be answered "busy" at once, by design).
   */
  logins?: number;
  /** How long after the flood starts the healthy logins begin, and the pause between them. */
  healthyAfterMs?: number;
  healthyEveryMs?: number;
  /** Rounds of the flood, one after another (default 1). */
  rounds?: number;
  /** Called once per healthy login and once per round (to sample the daemon's memory, say). */
  onTick?: () => void;
}

/** Where the flood's two PAM applications run. */
export interface FloodRunner {
  /**
   * `logins` hostile logins at once (tests/shim/driver --threads N CONFDIR SERVICE): resolves to
   * the driver's output once every one has ended; rejects unless the driver exits 0.
   */
  hostile(logins: number): Promise<string>;
  /** One healthy login (pam_bench --count 1), timed inside its PAM application. */
  healthy(): Promise<HealthyLogin>;
}

export interface FloodOptions extends FloodSchedule {
  /** The resident helper's socket (daemon= of both pam.d lines). */
  daemonSocket: string;
  /** pam_mapi.so for both pam.d lines. */
  module: string;
  /** More module arguments for both lines (helper=, say). */
  moduleArgs?: string[];
  /** socket= of the flood's logins: a HostileKopano's url(kind). */
  hostileUrl: string;
  /** A server that answers like Kopano, and a user and password it accepts. */
  healthy: { url: string; user: string; password: string; args?: string[] };
  tools: FloodTools;
  /** timeout= of the hostile logins, seconds (default 5). */
  timeoutS?: number;
}

export interface HealthyLogin {
  result: string;
  /** pam_start to pam_end, as the PAM application measured it. */
  ms: number;
}

export interface FloodReport {
  /** Results of the hostile logins, by PAM result name. */
  hostile: Map<string, number>;
  healthy: HealthyLogin[];
  seconds: number;
}

/** Writes the two pam.d files into a new directory; returns it. */
async function writeServices(o: FloodOptions): Promise<string> {
  const conf = await Deno.makeTempDir({ prefix: "pam_mapi_flood_pamd_" });
  const common = [o.module, `daemon=${o.daemonSocket}`, ...(o.moduleArgs ?? [])];
  const line = (args: string[]) => ["auth", "required", ...common, ...args].join(" ") + "\n";
  await Deno.writeTextFile(`${conf}/other`, "auth required pam_deny.so\n");
  await Deno.writeTextFile(
    `${conf}/hostile`,
    line([`socket=${o.hostileUrl}`, `timeout=${o.timeoutS ?? 5}`]),
  );
  await Deno.writeTextFile(
    `${conf}/healthy`,
    line([`socket=${o.healthy.url}`, ...(o.healthy.args ?? [])]),
  );
  return conf;
}

/** One round: `logins` hostile logins at once, healthy ones one after another meanwhile. */
async function round(runner: FloodRunner, o: FloodSchedule, report: FloodReport): Promise<void> {
  let done = false;
  const flood = runner.hostile(o.logins ?? 127).finally(() => (done = true));
  const ended = flood.then(() => {}, () => {});
  await Promise.race([ended, new Promise((r) => setTimeout(r, o.healthyAfterMs ?? 500))]);
  while (!done) {
    report.healthy.push(await runner.healthy());
    o.onTick?.();
    await Promise.race([ended, new Promise((r) => setTimeout(r, o.healthyEveryMs ?? 250))]);
  }
  for (const m of (await flood).matchAll(/^thread=\d+ iteration=\d+ user=\S+ auth=(\S+)$/gm)) {
    report.hostile.set(m[1], (report.hostile.get(m[1]) ?? 0) + 1);
  }
  o.onTick?.();
}

/** Runs the flood's rounds through `runner`. */
export async function runFlood(runner: FloodRunner, o: FloodSchedule = {}): Promise<FloodReport> {
  const report: FloodReport = { hostile: new Map(), healthy: [], seconds: 0 };
  const t0 = performance.now();
  for (let i = 0; i < (o.rounds ?? 1); i++) await round(runner, o, report);
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/** Runs the flood on this machine; the pam.d files live in a temporary directory removed at the
 * end. */
export async function runHostileFlood(o: FloodOptions): Promise<FloodReport> {
  const conf = await writeServices(o);
  const runner: FloodRunner = {
    async hostile(logins) {
      const out = await new Deno.Command(o.tools.driver, {
        args: ["--threads", String(logins), conf, "hostile"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (out.code !== 0) {
        throw new Error(
          `the flood's driver exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`,
        );
      }
      return new TextDecoder().decode(out.stdout);
    },
    async healthy() {
      const h = o.healthy;
      const r = await drive(o.tools.pamBench, conf, "healthy", h.user, h.password, [
        "--count",
        "1",
      ]);
      return { result: [...r.results.keys()].join(","), ms: r.latUs[0] / 1000 };
    },
  };
  try {
    return await runFlood(runner, o);
  } finally {
    await Deno.remove(conf, { recursive: true });
  }
}

/** "PAM_AUTH_ERR×3 PAM_AUTHINFO_UNAVAIL×124" */
export function showResults(m: Map<string, number>): string {
  return [...m].sort().map(([k, v]) => `${k}×${v}`).join(" ") || "none";
}
