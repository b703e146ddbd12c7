// Deno's first-TLS cost, measured for the bench in fresh processes started like the helper (its
// V8 flags, DENO_TLS_CA_STORE empty, nothing else of the environment): the first TLS connection of
// a process against the sim's TLS listener, the second one in the same process, and how much of
// the first goes to seeding AWS-LC's random generator (scripts/bench/tls_probe.ts).
import { DENO_FLAGS } from "../../tests/lib/helper.ts";
import { run } from "../lib/run.ts";
import { median } from "./stats.ts";

const PROBE = new URL("./tls_probe.ts", import.meta.url).pathname;

export interface TlsCost {
  /** First TLS connection of a fresh process (connect, startTls, handshake), median ms. */
  first: number;
  /** The second one in the same process, median ms. */
  second: number;
  /** The CPU time the first one took, median ms. */
  firstCpu: number;
  /** Seeding AWS-LC's generator when done first, before any TLS, median ms. */
  rng: number;
  /** The first connection after that seeding, median ms. */
  firstAfterRng: number;
  runs: number;
}

interface Probe {
  first: number;
  second: number;
  firstCpu: number;
  rng?: number;
}

async function probe(url: string, caFile: string, mode: "tls" | "rng") {
  const r = await run(Deno.execPath(), [...DENO_FLAGS, PROBE, url, caFile, mode], {
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      DENO_TLS_CA_STORE: "",
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
    },
  });
  if (r.code !== 0) throw new Error(`tls_probe ${mode} failed (${r.code}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Probe;
}

/**
 * Collects probes of both kinds; the bench takes them between its latency rounds, so that they
 * see the same load as the logins they are compared with.
 */
export class TlsCostProbes {
  #tls: Probe[] = [];
  #rng: Probe[] = [];

  constructor(private url: string, private caFile: string) {}

  /** One fresh process of each kind. */
  async take(): Promise<void> {
    this.#tls.push(await probe(this.url, this.caFile, "tls"));
    this.#rng.push(await probe(this.url, this.caFile, "rng"));
  }

  /** Medians of what was taken. */
  result(): TlsCost {
    return {
      first: median(this.#tls.map((p) => p.first)),
      second: median(this.#tls.map((p) => p.second)),
      firstCpu: median(this.#tls.map((p) => p.firstCpu)),
      rng: median(this.#rng.map((p) => p.rng ?? NaN)),
      firstAfterRng: median(this.#rng.map((p) => p.first)),
      runs: this.#tls.length,
    };
  }
}
