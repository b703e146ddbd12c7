// deno task bench: pam_mapi.so forking a helper per login and asking the resident helper, against
// a pam_exec + curl baseline, through the real libpam and the Kopano-compatible server on loopback
// (docs/performance.md). See scripts/bench/mod.ts for what is measured and checked, and
// docs/performance.md for the figures.
//
//   deno task bench [--rounds N] [--count N] [--duration MS] [--trounds N] [--clients 1,4,8]
//                   [--flood N] [--flood-clients K]
//   deno task bench --daemon-memory N [--memory-warmup W]
//   deno task bench --hostile [--hostile-rounds N]
//
// Prints a table (https:// rows included), the targets, the https:// figures against http:// and
// Deno's first-TLS cost, the flood of wrong passwords against the daemon, then, last, the line
//   bench: pam_mapi p50=…ms p95=…ms; daemon p50=…ms p95=…ms; baseline p50=…ms; ratio=…;
//   daemon_ratio=…; throughput=… auth/s; daemon_throughput=… auth/s
// (one-client latency over http:// without service=; throughput with 4 clients for the fork path,
// 8 for the daemon). --daemon-memory measures the daemon's memory instead (scripts/bench/memory.ts),
// --hostile the daemon against a hostile Kopano server (scripts/bench/hostile.ts).
// Exits 1 when a correctness check fails (no numbers then), 2 on bad usage.
import { parseArgs } from "node:util";
import { BenchError, DEFAULTS, runBench } from "./bench/mod.ts";
import { MEMORY_CLIENTS, runDaemonMemory } from "./bench/memory.ts";
import { runHostile } from "./bench/hostile.ts";

const MEMORY_WARMUP = 30_000;

function usageError(message: string): never {
  console.error(`bench: ${message} (try --help)`);
  Deno.exit(2);
}

// pam_bench's limits: 64 clients, 20 000 logins per client, runs of at most 600 000 ms.
function whole(
  name: string,
  v: string | undefined,
  fallback: number,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    usageError(`--${name} needs a whole number from ${min} to ${max}`);
  }
  return n;
}

const HELP = `Usage: deno task bench [options]
       deno task bench --daemon-memory N [--memory-warmup W]
       deno task bench --hostile [--hostile-rounds N]

Measures pam_mapi.so forking a helper per login (daemon=off), pam_mapi.so asking the resident
helper (daemon=SOCKET), and a pam_exec + curl baseline through the real libpam, checks each first,
then floods the daemon with wrong passwords. The last line sums it up.
  --rounds N         latency rounds, rows alternating (default ${DEFAULTS.latencyRounds})
  --count N          logins per row and round (default ${DEFAULTS.latencyCount})
  --duration MS      milliseconds per throughput run (default ${DEFAULTS.throughputMs})
  --trounds N        throughput rounds, median taken (default ${DEFAULTS.throughputRounds})
  --clients LIST     concurrent clients for throughput (default ${DEFAULTS.clients.join(",")})
  --flood N          wrong-password logins of the flood (default ${DEFAULTS.floodLogins})
  --flood-clients K  clients of the flood, up to 64, dividing N (default ${DEFAULTS.floodClients})
Instead of all that, the daemon's memory through the real libpam (${MEMORY_CLIENTS} clients):
  --daemon-memory N  RSS and descriptors before and after N logins from a fresh start, and
                     after W warm-up logins (N, W multiples of ${MEMORY_CLIENTS})
  --memory-warmup W  (default ${MEMORY_WARMUP})
Or the daemon against a hostile Kopano server, in a 256 MiB memory cgroup (its unit's limit):
  --hostile          the daemon's CPU for each hostile reply alone, then 127 logins at once
                     getting them while healthy logins through the same daemon are timed
  --hostile-rounds N rounds of the flood (default 1)`;

const { values } = (() => {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        rounds: { type: "string" },
        count: { type: "string" },
        duration: { type: "string" },
        trounds: { type: "string" },
        clients: { type: "string" },
        flood: { type: "string" },
        "flood-clients": { type: "string" },
        "daemon-memory": { type: "string" },
        "memory-warmup": { type: "string" },
        hostile: { type: "boolean" },
        "hostile-rounds": { type: "string" },
        help: { type: "boolean" },
      },
    });
  } catch (e) {
    usageError((e as Error).message);
  }
})();
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

try {
  if (values.hostile) {
    const rounds = whole("hostile-rounds", values["hostile-rounds"], 1, 1, 100);
    await runHostile({ helper: DEFAULTS.helper, module: DEFAULTS.module, rounds });
  } else if (values["daemon-memory"] !== undefined) {
    const logins = whole("daemon-memory", values["daemon-memory"], 0);
    const warmup = whole("memory-warmup", values["memory-warmup"], MEMORY_WARMUP, 0);
    if (logins % MEMORY_CLIENTS !== 0 || warmup % MEMORY_CLIENTS !== 0) {
      usageError(`--daemon-memory and --memory-warmup must be multiples of ${MEMORY_CLIENTS}`);
    }
    await runDaemonMemory({ ...DEFAULTS, logins, warmup });
  } else {
    const floodLogins = whole("flood", values.flood, DEFAULTS.floodLogins);
    const floodClients = whole(
      "flood-clients",
      values["flood-clients"],
      DEFAULTS.floodClients,
      1,
      64,
    );
    if (floodLogins % floodClients !== 0 || floodLogins / floodClients > 20_000) {
      usageError("--flood must be a multiple of --flood-clients, at most 20000 times it");
    }
    await runBench({
      ...DEFAULTS,
      latencyRounds: whole("rounds", values.rounds, DEFAULTS.latencyRounds),
      latencyCount: whole("count", values.count, DEFAULTS.latencyCount, 1, 20_000),
      throughputMs: whole("duration", values.duration, DEFAULTS.throughputMs, 1, 600_000),
      throughputRounds: whole("trounds", values.trounds, DEFAULTS.throughputRounds),
      clients: values.clients === undefined
        ? DEFAULTS.clients
        : values.clients.split(",").map((s) => whole("clients", s, 0, 1, 64)),
      floodLogins,
      floodClients,
    });
  }
} catch (e) {
  if (!(e instanceof BenchError)) throw e;
  console.error(`bench: FAILED: ${e.message}`);
  Deno.exit(1);
}
