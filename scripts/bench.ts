// deno task bench: pam_mapi.so against a pam_exec + curl baseline, through the real libpam and the
// Kopano-compatible server on loopback (SPEC section 8). See scripts/bench/mod.ts for what is
// measured and checked, and README.md "Performance" for the figures.
//
//   deno task bench [--rounds N] [--count N] [--duration MS] [--trounds N] [--clients 1,4,8]
//
// Prints a table (with a pam_mapi https:// row), the https:// figures against http:// and Deno's
// first-TLS cost, then, last, the line
//   bench: pam_mapi p50=…ms p95=…ms; baseline p50=…ms; ratio=…; throughput=… auth/s
// (one-client latency over http:// without service=, throughput with 4 clients). Exits 1 when a
// correctness check fails (no numbers then), 2 on bad usage.
import { parseArgs } from "node:util";
import { BenchError, DEFAULTS, runBench } from "./bench/mod.ts";

function positive(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench: --${name} needs a positive whole number`);
    Deno.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string" },
    count: { type: "string" },
    duration: { type: "string" },
    trounds: { type: "string" },
    clients: { type: "string" },
    help: { type: "boolean" },
  },
});
if (values.help) {
  console.log(
    "Usage: deno task bench [--rounds N] [--count N] [--duration MS] [--trounds N] " +
      "[--clients 1,4,8]\n" +
      `  --rounds    latency rounds, contenders alternating (default ${DEFAULTS.latencyRounds})\n` +
      `  --count     logins per contender and round (default ${DEFAULTS.latencyCount})\n` +
      `  --duration  milliseconds per throughput run (default ${DEFAULTS.throughputMs})\n` +
      `  --trounds   throughput rounds, median taken (default ${DEFAULTS.throughputRounds})\n` +
      `  --clients   concurrent clients for throughput (default ${DEFAULTS.clients.join(",")})`,
  );
  Deno.exit(0);
}
const clients = values.clients === undefined
  ? DEFAULTS.clients
  : values.clients.split(",").map((s) => positive("clients", s, 0));

try {
  await runBench({
    ...DEFAULTS,
    latencyRounds: positive("rounds", values.rounds, DEFAULTS.latencyRounds),
    latencyCount: positive("count", values.count, DEFAULTS.latencyCount),
    throughputMs: positive("duration", values.duration, DEFAULTS.throughputMs),
    throughputRounds: positive("trounds", values.trounds, DEFAULTS.throughputRounds),
    clients,
  });
} catch (e) {
  if (!(e instanceof BenchError)) throw e;
  console.error(`bench: FAILED: ${e.message}`);
  Deno.exit(1);
}
