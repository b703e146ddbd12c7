// The resident helper alone, through a TypeScript client that speaks docs/protocol.md §7 as the
// shim does, without libpam or the module: one client's latency, logins per second with 8 clients,
// and the daemon's memory and descriptors before and after many logins, against the
// Kopano-compatible server as a process of its own on 127.0.0.1. For trying the daemon's V8 flags
// (--v8); the figures through the real libpam are `deno task bench`'s (its daemon rows, the flood,
// and --daemon-memory).
//
//   deno task build && deno run -A scripts/bench/daemon.ts [--count N] [--seconds S] [--memory N]
//       [--clients N] [--v8=FLAGS]
//
// --v8=FLAGS runs the daemon from src/ with exactly these V8 flags (e.g. "--max-semi-space-size=1",
// "" for none) instead of the built helper, whose launcher gives `serve` its own flags
// (shim/launcher.c): to compare them.
import { parseArgs } from "node:util";
import { login, procUsage, startDaemon } from "../../tests/daemon/lib.ts";
import { ROOT } from "./mod.ts";
import { fmt, percentile } from "./stats.ts";
import { startSim } from "./sim.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string" },
    seconds: { type: "string" },
    memory: { type: "string" },
    clients: { type: "string" },
    v8: { type: "string" },
  },
});
const COUNT = Number(values.count ?? 3000);
const SECONDS = Number(values.seconds ?? 5);
const MEMORY = Number(values.memory ?? 0);
const CLIENTS = Number(values.clients ?? 8);
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

console.log(`load average at start: ${load()}`);
await using sim = await startSim();
const fromSource = values.v8 === undefined ? {} : {
  helper: `${ROOT}/src/main.ts`,
  wrap: [Deno.execPath(), "run", "--no-config", "--no-prompt", "-N", "-R", "-W"].concat(
    values.v8 ? [`--v8-flags=${values.v8}`] : [],
  ),
  env: { DENO_V8_FLAGS: "", DENO_TLS_CA_STORE: "", HOME: Deno.env.get("HOME") ?? "/root" },
};
await using d = await startDaemon(fromSource);
console.log(
  values.v8 === undefined
    ? "daemon: dist/pam_mapi_helper (the launcher's flags for serve)"
    : `daemon: src/main.ts, --v8-flags=${values.v8}`,
);
const args = [`socket=${sim.url}`];
const one = async () => {
  const r = await login(d.socket, { user: "alice", password: "secret", args });
  if (r.result !== "PAM_SUCCESS") throw new Error(JSON.stringify(r));
};

const start = procUsage(d.pid);
for (let i = 0; i < 500; i++) await one(); // warm up: connections, caches, V8

const ms: number[] = [];
for (let i = 0; i < COUNT; i++) {
  const t0 = performance.now();
  await one();
  ms.push(performance.now() - t0);
}
console.log(
  `1 client, ${COUNT} logins: p50 ${fmt(percentile(ms, 50), 2)} ms, ` +
    `p95 ${fmt(percentile(ms, 95), 2)} ms, p99 ${fmt(percentile(ms, 99), 2)} ms`,
);

let done = 0;
const until = performance.now() + SECONDS * 1000;
const t0 = performance.now();
await Promise.all(Array.from({ length: CLIENTS }, async () => {
  while (performance.now() < until) {
    await one();
    done++;
  }
}));
const rate = done / ((performance.now() - t0) / 1000);
console.log(`${CLIENTS} clients, ${SECONDS} s: ${done} logins, ${fmt(rate, 0)} logins/s`);

if (MEMORY > 0) {
  const before = procUsage(d.pid);
  let next = 0;
  const m0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next++ < MEMORY) await one();
  }));
  const secs = (performance.now() - m0) / 1000;
  await new Promise((r) => setTimeout(r, 200));
  const after = procUsage(d.pid);
  console.log(
    `memory: RSS ${start.rssKb} KiB at start, ${before.rssKb} KiB after ` +
      `${500 + COUNT + done} logins, ${after.rssKb} KiB after ${MEMORY} more ` +
      `(${fmt(secs, 1)} s, ${fmt(MEMORY / secs, 0)}/s); fds ${start.fds}, ${before.fds}, ` +
      `${after.fds}`,
  );
}
console.log(`load average at end: ${load()}`);
