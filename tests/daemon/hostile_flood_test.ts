// The resident helper against a hostile Kopano server, through the real libpam and pam_mapi.so,
// under pam_mapi.service's memory limit (MemoryMax=256M, here a cgroup v1 memory group): 127
// logins at once get the worst replies tests/lib/hostile_kopano.ts can send (1-byte chunks, 1 MiB
// bodies held one byte short, endless and countless header lines, chunk extensions, complete 1 MiB
// bodies of references or attributes...), while healthy logins through the same daemon are timed.
// The daemon must live, stay under half the limit, answer every hostile login with "no answer"
// or the refusal the padded reply carries (never success, never the shim's timeout), and answer
// every healthy one correctly within a second. The figures: `deno task bench --hostile`.
import assert from "node:assert/strict";
import { CpuMeter } from "../../scripts/bench/proc.ts";
import { startSim } from "../../scripts/bench/sim.ts";
import { buildFloodTools, type FloodReport, runHostileFlood } from "../lib/hostile_flood.ts";
import { type HostileKind, startHostileKopano } from "../lib/hostile_kopano.ts";
import { makeMemoryCgroup, memoryCgroupAvailable } from "../lib/memory_cgroup.ts";
import { type Daemon, HELPER, login, startDaemon } from "./lib.ts";

const MODULE = new URL("../../dist/pam_mapi.so", import.meta.url).pathname;
const UNIT_MEMORY_MAX = 256 * 1024 * 1024;
const HALF_KB = UNIT_MEMORY_MAX / 2 / 1024;
const available = memoryCgroupAvailable();
const NEEDS = available ? "" : "SKIPPED (needs a writable cgroup v1 memory controller): ";

/** The daemon in its own 256 MiB memory group, the servers, the PAM applications; then `fn`. */
async function withFloodWorld(
  fn: (w: {
    daemon: Daemon;
    flood: (kind: HostileKind | "mix") => Promise<FloodReport>;
    hostileUrl: (kind: HostileKind) => string;
    oomKills: () => number;
  }) => Promise<void>,
): Promise<void> {
  await using cgroup = makeMemoryCgroup(UNIT_MEMORY_MAX, "pam_mapi_flood_test");
  await using tools = await buildFloodTools();
  await using hostile = await startHostileKopano();
  await using sim = await startSim();
  await using daemon = await startDaemon({ helper: HELPER, wrap: cgroup.wrap });
  await fn({
    daemon,
    flood: (kind) =>
      runHostileFlood({
        daemonSocket: daemon.socket,
        module: MODULE,
        hostileUrl: hostile.url(kind),
        healthy: { url: sim.url, user: "alice", password: "secret" },
        tools,
      }),
    hostileUrl: hostile.url,
    oomKills: cgroup.oomKills,
  });
}

function peakRssKb(pid: number): number {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))![1]);
}

/** Every healthy login succeeded within a second, and there were some. */
function assertHealthy(r: FloodReport): void {
  assert.ok(r.healthy.length >= 5, `only ${r.healthy.length} healthy logins were made`);
  for (const h of r.healthy) {
    assert.equal(h.result, "PAM_SUCCESS", JSON.stringify(r.healthy));
    assert.ok(h.ms < 1000, `a healthy login took ${h.ms} ms: ${JSON.stringify(r.healthy)}`);
  }
}

Deno.test({
  name:
    `${NEEDS}hostile flood: 127 logins get the worst replies, the daemon lives under half its ` +
    "memory limit, healthy logins meanwhile succeed within 1 s",
  ignore: !available,
  async fn() {
    await withFloodWorld(async ({ daemon, flood, oomKills }) => {
      const r = await flood("mix");
      assert.equal(oomKills(), 0, "the OOM killer ended the daemon");
      const rssKb = peakRssKb(daemon.pid); // throws when the daemon is gone
      assert.ok(rssKb < HALF_KB, `peak RSS ${rssKb} KiB`);
      const hostile = [...r.hostile.values()].reduce((a, b) => a + b, 0);
      assert.equal(hostile, 127);
      for (const result of r.hostile.keys()) {
        // PAM_AUTH_ERR: a complete reply within the bounds, which says "refused".
        assert.ok(["PAM_AUTHINFO_UNAVAIL", "PAM_AUTH_ERR"].includes(result), result);
      }
      assertHealthy(r);
      console.log(
        `peak RSS ${(rssKb / 1024).toFixed(1)} MB; healthy logins (ms): ` +
          r.healthy.map((h) => h.ms.toFixed(0)).join(" "),
      );
    });
  },
});

Deno.test({
  name:
    `${NEEDS}hostile flood: 127 replies held one byte short of 1 MiB exceed the reply budget: ` +
    "no answer for them, logged, and healthy logins still succeed",
  ignore: !available,
  async fn() {
    await withFloodWorld(async ({ daemon, flood, oomKills }) => {
      const r = await flood("stalled-length");
      assert.equal(oomKills(), 0);
      assert.ok(peakRssKb(daemon.pid) < HALF_KB);
      assert.deepEqual([...r.hostile], [["PAM_AUTHINFO_UNAVAIL", 127]]);
      assertHealthy(r);
      assert.match(
        daemon.log(),
        /memory for Kopano replies in progress used up \(64 KiB per login and 16 MiB shared\)/,
      );
    });
  },
});

Deno.test({
  name: `${NEEDS}hostile server: one reply of 1 MiB in 1-byte chunks costs the daemon little CPU ` +
    "and no answer",
  ignore: !available,
  async fn() {
    await withFloodWorld(async ({ daemon, hostileUrl }) => {
      const cpu = new CpuMeter(daemon.pid);
      const before = cpu.ms();
      const r = await login(daemon.socket, {
        user: "alice",
        password: "hostile",
        args: [`socket=${hostileUrl("one-byte-chunks")}`, "timeout=30"],
      });
      const used = cpu.ms() - before;
      assert.equal(r.result, "PAM_AUTHINFO_UNAVAIL");
      assert.match(r.log.at(-1)!.message, /more than 1024 chunks/);
      // Structural, not a benchmark: reading the whole 6 MiB took the old reader 7.5 s.
      assert.ok(used < 1000, `${used} ms of CPU`);
    });
  },
});
