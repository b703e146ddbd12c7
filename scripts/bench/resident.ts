// The resident helper for the bench's daemon rows: the bench's copy of the built helper run as
// `serve --socket DIR/helper.sock` in a directory pam_mapi.so trusts (in /run), as
// pam_mapi.service starts it (but as the bench's own user, root here, where the unit uses the
// pam_mapi account), and what proves a row's logins went through it: its status counters
// (docs/protocol.md §7.4) and a tripwire on the module's fallback. The daemon rows name, as helper=, a script that records every
// start and then runs the real helper: had the module forked a helper instead of asking the
// daemon, the login would still be decided right, and the record would show it.
import { procUsage, startDaemon, status } from "../../tests/daemon/lib.ts";
import { BenchError, sameCounts, showCounts } from "./driver.ts";
import { CpuMeter, peakRssKb } from "./proc.ts";

/** The daemon's counters that a login changes (§7.4). */
export interface DaemonCounters {
  logins: Map<string, number>;
  /** Busy replies, malformed and late requests, internal errors: none is expected in the bench. */
  trouble: Map<string, number>;
  /** Times the module forked the helper for a daemon row (the tripwire's record). */
  forks: number;
}

export interface Usage {
  rssKb: number;
  fds: number;
  /** Open connections to Kopano (kept alive for reuse), among the descriptors. */
  kopano: number;
}

export interface BenchDaemon extends AsyncDisposable {
  socket: string;
  pid: number;
  /** helper= for the daemon rows: the tripwire, which runs the real helper. */
  fallbackHelper: string;
  cpu: CpuMeter;
  counters(): Promise<DaemonCounters>;
  /** RSS and descriptors once the connections of the last logins are back in the pool. */
  usage(): Promise<Usage>;
  peakRssKb(): number;
  status(): Promise<Record<string, unknown>>;
}

const TROUBLE = ["rejected_busy", "malformed", "late", "internal_errors"] as const;

/** Starts the daemon from `helper` (the bench's copy), and the tripwire in `dir`. */
export async function startBenchDaemon(dir: string, helper: string): Promise<BenchDaemon> {
  const record = `${dir}/fallback_forks`;
  const fallbackHelper = `${dir}/fallback_helper`;
  // The module starts it with an environment of its own and umask 077: absolute paths only.
  await Deno.writeTextFile(
    fallbackHelper,
    `#!/bin/sh\necho forked >> ${record}\nexec ${helper} "$@"\n`,
  );
  await Deno.chmod(fallbackHelper, 0o755);
  // In a directory of its own in /run (root's, 0755: trusted), removed when it stops.
  const d = await startDaemon({ helper });
  const forks = async () =>
    (await Deno.readTextFile(record).catch(() => "")).split("\n").filter((l) => l !== "").length;
  const stat = () => status(d.socket);
  return {
    socket: d.socket,
    pid: d.pid,
    fallbackHelper,
    cpu: new CpuMeter(d.pid),
    async counters() {
      const s = await stat();
      const logins = new Map(
        Object.entries(s.logins as Record<string, number>).filter(([, n]) => n > 0),
      );
      const trouble = new Map<string, number>(TROUBLE.map((k) => [k, s[k] as number]));
      return { logins, trouble, forks: await forks() };
    },
    async usage() {
      await new Promise((r) => setTimeout(r, 200));
      const u = procUsage(d.pid);
      const kopano = ((await stat()).kopano_connections as { open: number }).open;
      return { ...u, kopano };
    },
    peakRssKb: () => peakRssKb(d.pid),
    status: stat,
    async [Symbol.asyncDispose]() {
      const { code, log } = await d.stop();
      if (code !== 0) console.error(`bench: the daemon exited ${code}:\n${log}`);
    },
  };
}

/** Counts per key between two snapshots (keys that did not change left out). */
function delta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const d = new Map<string, number>();
  for (const [k, v] of after) if (v !== (before.get(k) ?? 0)) d.set(k, v - (before.get(k) ?? 0));
  return d;
}

/**
 * Throws unless the daemon counted exactly `want` (logins by result) between the two snapshots,
 * with no busy reply, malformed or late request or internal error, and the module forked no
 * helper.
 */
export function checkThroughDaemon(
  what: string,
  before: DaemonCounters,
  after: DaemonCounters,
  want: Map<string, number>,
): void {
  const got = delta(before.logins, after.logins);
  const forked = after.forks - before.forks;
  if (!sameCounts(got, want) || forked !== 0) {
    throw new BenchError(
      `${what}: the daemon counted ${showCounts(got)}, expected ${showCounts(want)}; ` +
        `the module forked the helper ${forked} time(s)`,
    );
  }
  const trouble = delta(before.trouble, after.trouble);
  if (trouble.size > 0) throw new BenchError(`${what}: the daemon counted ${showCounts(trouble)}`);
}
