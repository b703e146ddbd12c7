// The Debian package under a real systemd: a Debian root of the host's suite, made with
// debootstrap for this test (debian_root.ts, cached between runs), boots its own systemd as PID 1
// in a systemd-nspawn container (container.ts); the built .deb is installed there as an
// administrator would (apt-get install ./libpam-mapi_*.deb), and everything is checked through
// the real unit: the account, the unit enabled and active, its socket and directory, its
// confinement (systemd-analyze security, seccomp, no capabilities), logins through the daemon over
// http://, https:// with cafile= and file://, with and without service=, the fallback to a forked
// helper when the unit is stopped, Restart=on-failure after SIGKILL with logins running across it,
// MemoryMax= enforced by the kernel, the hostile-reply flood (tests/lib/hostile_flood.ts: 127 logins
// at once against tests/lib/hostile_kopano.ts, through the installed module and the unit's daemon,
// which must live under half its MemoryMax= while a correct login meanwhile succeeds within 1 s),
// saslauthd -a pam through it, the forked helper's code cache (used from the second login on, and
// as fast as the build tree's), and apt-get purge.
//
// The Kopano-compatible server and the hostile one run on the host: the container shares the
// host's network, and the server's file:// socket and the test CA are in a host directory bound at
// SHARE, where the unit can see them (not under /tmp, which PrivateTmp= hides, nor /home or /root:
// ProtectHome=). pam_bench and the flood's driver, built on the host, are copied into the root.
// Nothing is left on the host: the container's root, cgroups, mounts and processes go with it.
import assert from "node:assert/strict";
import { countersRose, decidedBy, USERS, waitFor } from "../e2e/lib.ts";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { buildFloodTools, runFlood, showResults } from "../lib/hostile_flood.ts";
import { startHostileKopano } from "../lib/hostile_kopano.ts";
import { makeTestPki } from "../lib/pki.ts";
import { Container, leftoversOf } from "./container.ts";
import { debLabel, debPlan, debToInstall, which } from "./deb.ts";
import { CACHE_DIR, debianRoot, hostSuite, rootCached, type RootSpec } from "./debian_root.ts";
import { compareForkedP50 } from "./fork_timing.ts";
import {
  cgroupMemory,
  DAEMON_SOCKET,
  daemonLogins,
  floodRunner,
  installPamBench,
  journalCursor,
  journalSince,
  type Login,
  pamBench,
  pamMapiLines,
  pamService,
  pamtester,
  processMemory,
  resetCgroupPeak,
  results,
  UNIT,
  unitState,
  waitActive,
} from "./in_container.ts";

const PKG = "libpam-mapi";
const CACHE = "/var/cache/pam_mapi"; // the forked helper's code cache (a bundle helper's)
const SHARE = "/srv/kopano"; // the server's socket and CA, bound from the host
const MEMORY_MAX = 256 * 1024 * 1024; // the unit's MemoryMax=256M
const EXPOSURE_MAX = 2.0; // systemd-analyze security: "OK" ends below 2.0
const FORK_RATIO = 0.15; // the installed fork path's p50 within 15% of the build tree's
const PACKAGES = ["systemd", "dbus", "pamtester", "sasl2-bin", "ca-certificates"];
// The hostile flood: logins at once (with one healthy login, the daemon's limit of 128 in
// progress), and how long a healthy login may take meanwhile.
const FLOOD_LOGINS = 127;
const HEALTHY_MS = 1000;

const host = hostSuite();
const spec: RootSpec = { ...host, packages: PACKAGES };
const plan = debPlan();

/** How many of each. */
function count(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

/** Whether debootstrap could fetch the suite now (only asked when no root is cached). */
async function mirrorReachable(): Promise<boolean> {
  try {
    const r = await fetch(`${spec.mirror}/dists/${spec.suite}/Release`, {
      method: "HEAD",
      signal: AbortSignal.timeout(5000),
    });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

const missing = [
  Deno.uid() !== 0 && "root",
  !(host.suite && host.arch) && "a Debian host (its suite for the container's root)",
  !which("systemd-nspawn") && "systemd-nspawn (the systemd-container package)",
  !which("debootstrap") && "debootstrap",
  !which("nsenter") && "nsenter (util-linux)",
  !which("cc") && "cc and libpam0g-dev (for pam_bench)",
  plan.missing,
].filter(Boolean) as string[];
if (!missing.length && !rootCached(spec) && !(await mirrorReachable())) {
  missing.push(
    `the Debian mirror ${spec.mirror} (debootstrap; PAM_MAPI_TEST_MIRROR names another)`,
  );
}

const what = "in a systemd-nspawn container booting its own systemd: the account, the unit, its " +
  "socket and confinement, logins through the daemon over http/https/file://, the fallback when " +
  "stopped, the restart after SIGKILL, MemoryMax=, the hostile flood, saslauthd, the code cache, " +
  "apt-get purge";

Deno.test({
  name: missing.length
    ? `installed package under systemd: SKIPPED, needs ${missing.join(", ")}`
    : `installed package under systemd: ${debLabel(plan, "apt-get install")}, ${what}`,
  ignore: missing.length > 0,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const figures: string[] = [];
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!(await t.step(name, fn))) throw new Error(`step failed: ${name}`);
    };
    const deb = await debToInstall();
    const debName = deb.slice(deb.lastIndexOf("/") + 1);

    await using stack = new AsyncDisposableStack();
    const share = await Deno.makeTempDir({ prefix: "pam_mapi_share_" });
    stack.defer(() => Deno.remove(share, { recursive: true }));
    await Deno.chmod(share, 0o755);
    const pki = await makeTestPki();
    stack.defer(() => Deno.remove(pki.dir, { recursive: true }));
    await Deno.copyFile(pki.caFile, `${share}/ca.pem`);
    await Deno.chmod(`${share}/ca.pem`, 0o644);
    const sim = stack.use(
      await startKopanoSim({
        listen: ["127.0.0.1:0"],
        tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
        unix: `${share}/kopano.sock`,
        // The dangerous peer: a real server lets a root caller of its UNIX socket in without a
        // password unless the logon says NO_UID_AUTH (forked helpers run as root).
        unixPeer: "admin",
        users: USERS,
      }),
    );
    const http = sim.urls.http[0];
    const servers = {
      "http://": `socket=${http}`,
      "https:// cafile=": `socket=${sim.urls.https[0].replace("127.0.0.1", "localhost")} ` +
        `cafile=${SHARE}/ca.pem`,
      "file://": `socket=file://${SHARE}/kopano.sock`,
    };
    // pam_bench and the flood's driver, built here for the container's libpam (the same suite).
    const tools = stack.use(await buildFloodTools());

    const root = await debianRoot(spec);
    figures.push(
      `root: ${root.cached ? "cached" : "made with debootstrap"} in ${root.seconds.toFixed(1)} s`,
    );
    let bootSeconds = performance.now();
    const c = await Container.boot({
      tarball: root.tarball,
      binds: [{ host: share, inside: SHARE }],
      files: {
        // The test reads every line the module logs, also in the login loop.
        "/etc/systemd/journald.conf.d/no-rate-limit.conf": "[Journal]\nRateLimitBurst=0\n",
      },
    }).finally(() => root[Symbol.dispose]());
    bootSeconds = (performance.now() - bootSeconds) / 1000;
    figures.push(`container: extracted and booted in ${bootSeconds.toFixed(1)} s`);
    stack.defer(async () => {
      const off = await c.poweroff();
      assert.equal(off.code, 0, `no clean poweroff:\n${off.console}`);
      assert.deepEqual(await leftoversOf(c), [], "the container left something on the host");
    });
    await installPamBench(c, tools);

    let files: string[] = [];
    let bundle = true; // the helper is the bundle started by its launcher, with a code cache
    let account = "";
    let state = await unitState(c);

    await step("apt-get install ./libpam-mapi_*.deb: the unit is enabled and active", async () => {
      await Deno.copyFile(deb, `${c.root}/root/${debName}`);
      const r = await c.run("sh", ["-c", `cd /root && apt-get install -y ./${debName}`], {
        env: { DEBIAN_FRONTEND: "noninteractive" },
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`Setting up ${PKG} `));
      files = (await c.ok("dpkg", ["-L", PKG])).split("\n").filter((l) => l && l !== "/.");
      bundle = files.includes("/usr/libexec/pam_mapi/deno");
      state = await waitActive(c);
      // Wherever this distribution keeps units: the package's own file.
      assert.ok(files.includes(state.fragmentPath), `${state.fragmentPath} not in dpkg -L`);
      assert.equal((await c.ok("systemctl", ["is-enabled", UNIT])).trim(), "enabled");
      // What docs/admin-guide.md, "Under systemd", tells an administrator to look at.
      const status = await c.run("systemctl", ["status", "pam_mapi", "--no-pager"]);
      assert.equal(status.code, 0, status.stdout);
      assert.match(status.stdout, /Active: active \(running\)/);
      const log = await c.ok("journalctl", ["-u", "pam_mapi", "--no-pager"]);
      assert.match(
        log,
        new RegExp(
          `pam_mapi_helper serve: started: version \\S+, pid ${state.mainPid}, uid \\d+, ` +
            `socket ${DAEMON_SOCKET} \\(mode 0600\\)`,
        ),
      );
    });

    await step("the account pam_mapi: a system account that cannot log in", async () => {
      account = (await c.ok("getent", ["passwd", "pam_mapi"])).trim();
      const [, , uid, gid, , home, shell] = account.split(":");
      assert.ok(Number(uid) > 0 && Number(uid) < 1000, account);
      assert.equal((await c.ok("getent", ["group", "pam_mapi"])).split(":")[2], gid);
      assert.deepEqual([home, shell], ["/nonexistent", "/usr/sbin/nologin"]);
      const shadow = (await c.ok("getent", ["shadow", "pam_mapi"])).split(":")[1];
      assert.match(shadow, /^[!*]/, "pam_mapi has a usable password");
    });

    await step(
      "the socket and its directory; the daemon's account, seccomp, no capabilities",
      async () => {
        const stat = await c.ok("stat", ["-c", "%n %U:%G %a %F", "/run/pam_mapi", DAEMON_SOCKET]);
        assert.deepEqual(stat.trim().split("\n"), [
          "/run/pam_mapi pam_mapi:pam_mapi 755 directory",
          `${DAEMON_SOCKET} pam_mapi:pam_mapi 600 socket`,
        ]);
        const uid = account.split(":")[2];
        const proc = await c.ok("cat", [`/proc/${state.mainPid}/status`]);
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(proc)?.[1];
        assert.deepEqual(field("Uid")?.split(/\s+/), [uid, uid, uid, uid]);
        for (const cap of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) {
          assert.equal(field(cap), "0000000000000000", cap);
        }
        assert.equal(field("NoNewPrivs"), "1");
        assert.equal(field("Seccomp"), "2", "no seccomp filter");
      },
    );

    await step(`systemd-analyze security ${UNIT}: at most ${EXPOSURE_MAX}`, async () => {
      const out = await c.ok("systemd-analyze", ["security", UNIT, "--no-pager"]);
      const m = /Overall exposure level for pam_mapi\.service: (\d+\.\d+) (\S+)/.exec(out);
      assert.ok(m, out);
      figures.push(`systemd-analyze security: ${m[1]} ${m[2]}`);
      assert.ok(Number(m[1]) <= EXPOSURE_MAX, `exposure ${m[1]}`);
    });

    /** Right and wrong passwords, and service=, each decided by `by`. */
    const fourLogins = async (socket: string, by: RegExp) => {
      const cases: Array<[string, string, string, RegExp]> = [
        ["", "alice", "secret", /^authentication success; user=alice .*result=PAM_SUCCESS/],
        ["", "alice", "wrong", /result=PAM_AUTH_ERR reason="logon refused"$/],
        [" service=imap", "alice", "secret", /reason="feature not enabled" required=imap$/],
        [" service=imap", "bob", "bobpass", /^authentication success; user=bob .*feature=imap$/],
      ];
      for (const [extra, user, password, line] of cases) {
        await pamService(c, "smtp", [
          `auth required pam_mapi.so ${socket}${extra} debug`,
          "account required pam_mapi.so",
        ]);
        const r: Login = await pamtester(c, "smtp", user, password);
        const what = `${user}/${password}${extra} ${socket}: ${r.out} ${JSON.stringify(r.result)}`;
        assert.deepEqual(r.warnings, [], what);
        assert.equal(r.code === 0, line.source.includes("success"), what);
        assert.equal(r.result.length, 1, what);
        assert.match(r.result[0], line, what);
        assert.match(r.by, by, what);
      }
    };

    await step("logins through the daemon: http://, https:// with cafile=, file://", async () => {
      for (const [name, socket] of Object.entries(servers)) {
        const before = await daemonLogins(c, state.mainPid);
        await fourLogins(socket, new RegExp(`^daemon pid ${state.mainPid}$`));
        assert.deepEqual(
          countersRose(before, await daemonLogins(c, state.mainPid)),
          { PAM_SUCCESS: 2, PAM_AUTH_ERR: 2 },
          name,
        );
      }
      assert.equal(sim.openSessions(), 0);
    });

    await step("systemctl stop: logins fork the helper and decide the same", async () => {
      await c.ok("systemctl", ["stop", UNIT]);
      assert.equal((await unitState(c)).activeState, "inactive");
      assert.notEqual((await c.run("test", ["-e", "/run/pam_mapi"])).code, 0);
      // An empty code cache, as after an installation (pam_mapi_helper status, run as root,
      // used it too).
      if (bundle) await c.ok("find", [CACHE, "-mindepth", "1", "-delete"]);
      for (const socket of Object.values(servers)) {
        await fourLogins(socket, /^helper \(.*No such file or directory\)$/);
      }
    });

    await step(
      bundle
        ? "the forked helper's code cache: used from the second login on"
        : "the forked helper's code cache: none (a deno compile helper keeps none)",
      async () => {
        if (!bundle) {
          assert.notEqual((await c.run("test", ["-e", CACHE])).code, 0, `${CACHE} exists`);
          return;
        }
        // fourLogins saw no warning on any of the twelve forked logins: the launcher trusted the
        // cache every time. What Deno left there is what the launcher's check allows: no link.
        const tree = await c.ok("find", [CACHE, "-mindepth", "1", "-printf", "%y %P\n"]);
        assert.match(tree, /^f v8_code_cache_v2$/m, tree);
        assert.doesNotMatch(tree, /^[^fd] /m, tree);
        assert.doesNotMatch(tree, /node_compat_bin/, tree);
      },
    );

    await step(
      `the forked p50 from the package within ${FORK_RATIO * 100}% of the build tree's`,
      async () => {
        const cursor = await journalCursor(c);
        const f = await compareForkedP50(c, http);
        const notUsed = (await journalSince(c, cursor)).filter((l) => /code cache/.test(l.message));
        assert.deepEqual(notUsed, [], "a forked helper ran without its code cache");
        const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
        const ms = (x: { p50: number; p25: number; p75: number }) =>
          `${x.p50.toFixed(1)} ms (p25-p75 ${x.p25.toFixed(1)}-${x.p75.toFixed(1)})`;
        figures.push(
          `forked p50, ${f.logins} logins each, in turn: installed ${ms(f.installed)}, build ` +
            `tree ${ms(f.buildTree)}, ratio ${f.ratio.toFixed(3)} (halves ` +
            `${f.halves.map((r) => r.toFixed(3)).join(", ")}; load average ${load})`,
        );
        assert.ok(Math.abs(f.ratio - 1) <= FORK_RATIO, figures.at(-1));
      },
    );

    await step(
      "systemctl kill -s KILL: the unit is back, and no login loop decided wrong",
      async () => {
        await c.ok("systemctl", ["start", UNIT]);
        const old = await waitActive(c);
        await pamService(c, "loop", [`auth required pam_mapi.so socket=${http} debug`]);
        const cursor = await journalCursor(c);
        const args = ["--duration", "8000"];
        const right = pamBench(c, "loop", "alice", "secret", args);
        const wrong = pamBench(c, "loop", "alice", "wrong", args);
        await new Promise((r) => setTimeout(r, 1500));
        await c.ok("systemctl", ["kill", "-s", "KILL", UNIT]);
        const [ok, bad] = [results(await right), results(await wrong)];
        state = await waitActive(c, old.mainPid);
        assert.equal(state.nRestarts, old.nRestarts + 1);
        const text = JSON.stringify({ right: ok, wrong: bad });
        // None is decided wrong. A login the daemon had taken when it was killed fails: those in
        // progress, and those still queued on its socket while the kernel tore it down.
        assert.deepEqual(
          Object.keys(ok).filter((k) => k !== "PAM_SUCCESS" && k !== "PAM_SERVICE_ERR"),
          [],
          text,
        );
        assert.deepEqual(
          Object.keys(bad).filter((k) => k !== "PAM_AUTH_ERR" && k !== "PAM_SERVICE_ERR"),
          [],
          text,
        );
        const lines = pamMapiLines(await journalSince(c, cursor));
        const errors = lines.filter((l) => l.priority <= 3).map((l) => l.message);
        // (the daemon closed the connection without a reply, reset it, ...)
        const killed = new RegExp(
          `^pam_mapi\\(loop:auth\\): resident helper ${
            DAEMON_SOCKET.replaceAll(".", "\\.")
          } \\(pid ${old.mainPid}\\): ` +
            ".*; user=alice result=PAM_SERVICE_ERR$",
        );
        const why = `${text}\n${errors.join("\n")}`;
        assert.equal(errors.length, (ok.PAM_SERVICE_ERR ?? 0) + (bad.PAM_SERVICE_ERR ?? 0), why);
        for (const e of errors) assert.match(e, killed, why);
        // The loop ran across the kill: the old daemon, the forked helper, the new daemon.
        const debug = lines.map((l) => l.message);
        const count = (re: RegExp) => debug.filter((l) => re.test(l)).length;
        const paths = {
          old: count(new RegExp(`resident helper \\S+ \\(pid ${old.mainPid}\\) answered`)),
          forked: count(/debug: starting helper /),
          new: count(new RegExp(`resident helper \\S+ \\(pid ${state.mainPid}\\) answered`)),
        };
        figures.push(`login loop across SIGKILL: ${text}, decided by ${JSON.stringify(paths)}`);
        assert.ok(paths.old > 0 && paths.forked > 0 && paths.new > 0, figures.at(-1));
      },
    );

    await step("MemoryMax=256M: read by systemd, enforced by the kernel", async () => {
      assert.equal(state.memoryMax, MEMORY_MAX);
      assert.ok(
        state.memoryCurrent > 0 && state.memoryCurrent < MEMORY_MAX,
        String(state.memoryCurrent),
      );
      const mem = await cgroupMemory(c, state.controlGroup);
      assert.equal(mem.limit, MEMORY_MAX, "the kernel's limit for the unit's cgroup");
      // And the limit bites in this container: a unit that goes over its MemoryMax= is killed by
      // the kernel (systemd 252 on cgroup v1 reports only the SIGKILL), while the same command
      // without the limit runs to its end.
      const hog = (limit: string[]) =>
        c.run("systemd-run", [
          "--wait",
          "--pipe",
          ...limit,
          "sh",
          "-c",
          'head -c 200M /dev/zero | tail -n 1 >/dev/null; echo "tail: $?"',
        ]);
      const limited = await hog(["-p", "MemoryMax=32M"]);
      assert.equal(limited.stdout.trim(), "tail: 137", limited.stderr); // 128 + SIGKILL
      const free = await hog([]);
      assert.equal(free.stdout.trim(), "tail: 0", free.stderr);
      figures.push(
        `MemoryCurrent ${(state.memoryCurrent / 2 ** 20).toFixed(1)} MiB of ` +
          `${mem.limit / 2 ** 20} MiB`,
      );
    });

    await step(
      "1600 wrong passwords from 16 clients at once: every one refused by the daemon",
      async () => {
        await pamService(c, "many", [`auth required pam_mapi.so socket=${http}`]);
        const before = await daemonLogins(c, state.mainPid);
        const run = await pamBench(c, "many", "alice", "wrong", [
          "--clients",
          "16",
          "--count",
          "100",
        ]);
        assert.deepEqual(results(run), { PAM_AUTH_ERR: 1600 });
        assert.deepEqual(countersRose(before, await daemonLogins(c, state.mainPid)), {
          PAM_AUTH_ERR: 1600,
        });
      },
    );

    await step(
      `the hostile-reply flood: ${FLOOD_LOGINS} logins at once through the unit's daemon, which ` +
        "lives under half its MemoryMax=; healthy logins meanwhile succeed within 1 s",
      async () => {
        const t0 = performance.now();
        // The hostile Kopano server of tests/lib/hostile_kopano.ts runs on the host (the
        // container shares its network): every reply it has for a reader and its memory (1-byte
        // chunks, 1 MiB bodies stalled one byte short, endless header lines, ...), one kind per
        // connection, none of them a success. FLOOD_LOGINS logins at once (one process of as many
        // threads, tests/shim/driver.c) go to it through the installed module and the module's
        // default daemon=, the unit's; with the healthy login that is the daemon's limit of 128
        // logins in progress. Meanwhile alice logs in to the healthy server again and again,
        // through the same daemon, each login timed inside its PAM application
        // (tests/lib/hostile_flood.ts).
        await using hostile = await startHostileKopano();
        await pamService(c, "flood", [
          `auth required pam_mapi.so socket=${hostile.url("mix")} timeout=5`,
        ]);
        await pamService(c, "healthy", [`auth required pam_mapi.so socket=${http}`]);
        const before = await unitState(c);
        assert.deepEqual([before.activeState, before.mainPid], ["active", state.mainPid]);
        const counters = await daemonLogins(c, state.mainPid);
        const hwmBefore = (await processMemory(c, state.mainPid)).vmHwm;
        // The peak from here on is the flood's (and the daemon's charge at rest).
        const reset = await resetCgroupPeak(c, state.controlGroup);

        const r = await runFlood(
          floodRunner(c, {
            hostile: "flood",
            healthy: "healthy",
            user: "alice",
            password: "secret",
          }),
          { logins: FLOOD_LOGINS },
        );

        // The daemon lived through it: the unit's main process is the same, never restarted
        // (the module forks a helper when the daemon is gone, which alone would hide a dead one),
        // and it decided every login of the flood (its counters rose by exactly these).
        const after = await unitState(c);
        // (null, NaN: gone with a daemon the OOM killer ended; systemd removes the cgroup)
        const mem = await cgroupMemory(c, state.controlGroup).catch(() => null);
        const proc = await processMemory(c, state.mainPid).catch(() => null);
        const hwm = proc?.vmHwm ?? NaN;
        const ms = r.healthy.map((h) => h.ms);
        const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
        figures.push(
          `hostile flood of ${FLOOD_LOGINS} logins at once (every kind) in ` +
            `${r.seconds.toFixed(1)} s: ${showResults(r.hostile)}; ${r.healthy.length} healthy ` +
            `logins meanwhile: ${showResults(count(r.healthy.map((h) => h.result)))}, ` +
            `${ms.map((m) => m.toFixed(0)).join(" ")} ms; ` +
            (mem
              ? `cgroup peak ${mib(mem.peak)} of ${mib(mem.limit)} ` +
                `(${reset ? "from the flood's start" : "since the unit started"}), limit hit ` +
                `${mem.failcnt} times, OOM kills ${mem.oomKills}`
              : "the unit's cgroup is gone") +
            `; daemon VmHWM ${mib(hwmBefore)} before, ${mib(hwm)} after (RssFile ` +
            `${mib(proc?.rssFile ?? NaN)}); unit ` +
            `${after.activeState}, MainPID ${after.mainPid}, NRestarts ${after.nRestarts}; step ` +
            `${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
        let why = figures.at(-1)!;
        assert.deepEqual(
          [after.activeState, after.mainPid, after.nRestarts],
          ["active", state.mainPid, state.nRestarts],
          why,
        );
        assert.ok(mem, why);
        const rose = countersRose(counters, await daemonLogins(c, state.mainPid));
        why += `\nthe daemon's counters rose by ${JSON.stringify(rose)}`;
        assert.equal(mem.oomKills, 0, why);
        assert.equal(mem.failcnt, 0, why);

        // No answer, or the refusal a complete padded reply carries: never a success.
        assert.equal([...r.hostile.values()].reduce((a, b) => a + b, 0), FLOOD_LOGINS, why);
        for (const result of r.hostile.keys()) {
          assert.ok(["PAM_AUTHINFO_UNAVAIL", "PAM_AUTH_ERR"].includes(result), why);
        }
        assert.ok(r.healthy.length >= 5, `only ${r.healthy.length} healthy logins: ${why}`);
        for (const h of r.healthy) {
          assert.equal(h.result, "PAM_SUCCESS", why);
          assert.ok(h.ms < HEALTHY_MS, why);
        }
        const decided = count(r.healthy.map((h) => h.result));
        for (const [k, n] of r.hostile) decided.set(k, (decided.get(k) ?? 0) + n);
        assert.deepEqual(rose, Object.fromEntries(decided), why);

        // Under half the limit, both: the kernel's charge of the unit's cgroup, which is what
        // MemoryMax= bounds (the OOM killer acts on it), and the daemon's peak resident set
        // (issue 18's measure), which also counts the pages of the files it maps (RssFile, most of
        // them the runtime's), charged to whichever cgroup first read them, not to the unit's.
        assert.ok(mem.peak < MEMORY_MAX / 2, why);
        assert.ok(hwm < MEMORY_MAX / 2, why);
      },
    );

    await step("saslauthd -a pam through the daemon (Debian 12: after START=yes)", async () => {
      await pamService(c, "smtp", [
        `auth required pam_mapi.so socket=${http} debug`,
        "account required pam_mapi.so",
      ]);
      const mux = "/run/saslauthd/mux";
      if (spec.suite === "bookworm") {
        // Debian 12's saslauthd starts nothing until /etc/default/saslauthd says START=yes.
        await c.ok("systemctl", ["start", "saslauthd"]);
        const started = (await c.run("test", ["-S", mux])).code === 0;
        assert.ok(!started, "saslauthd started without START=yes");
        assert.match(
          await c.ok("journalctl", ["-u", "saslauthd", "--no-pager"]),
          /To enable saslauthd, edit \/etc\/default\/saslauthd and set START=yes/,
        );
      }
      await c.ok("sh", ["-c", "echo START=yes >> /etc/default/saslauthd"]);
      await c.ok("systemctl", ["enable", "saslauthd"]);
      await c.ok("systemctl", ["restart", "saslauthd"]);
      await waitFor(
        async () => (await c.run("test", ["-S", mux])).code === 0,
        "saslauthd's socket",
      );
      const before = await daemonLogins(c, state.mainPid);
      for (const [password, answer] of [["wrong", "NO"], ["secret", "OK"]]) {
        const cursor = await journalCursor(c);
        const r = await c.run("testsaslauthd", [
          "-f",
          mux,
          "-s",
          "smtp",
          "-u",
          "alice",
          "-p",
          password,
        ]);
        assert.match(r.stdout, new RegExp(`^0: ${answer} `), r.stdout + r.stderr);
        const lines = pamMapiLines(await journalSince(c, cursor)).filter((l) =>
          l.ident === "saslauthd"
        );
        assert.equal(
          decidedBy(lines.map((l) => l.message), DAEMON_SOCKET),
          `daemon pid ${state.mainPid}`,
        );
      }
      assert.deepEqual(countersRose(before, await daemonLogins(c, state.mainPid)), {
        PAM_AUTH_ERR: 1,
        PAM_SUCCESS: 1,
      });
      await c.ok("systemctl", ["stop", "saslauthd"]);
    });

    await step("apt-get purge: nothing is left but the account", async () => {
      const r = await c.run("apt-get", ["purge", "-y", PKG], {
        env: { DEBIAN_FRONTEND: "noninteractive" },
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /warning/i);
      assert.equal(
        (await c.ok("systemctl", ["show", "-p", "LoadState", "--value", UNIT])).trim(),
        "not-found",
      );
      const procs = await c.ok("find", [
        "/proc",
        "-maxdepth",
        "1",
        "-name",
        "[0-9]*",
        "-user",
        "pam_mapi",
      ]);
      assert.equal(procs.trim(), "", "a process of pam_mapi runs");
      for (const f of files.filter((f) => /pam_mapi|libpam-mapi/.test(f))) {
        assert.notEqual((await c.run("test", ["-e", f])).code, 0, `${f} left behind`);
      }
      for (const p of ["/run/pam_mapi", CACHE]) {
        assert.notEqual((await c.run("test", ["-e", p])).code, 0, `${p} left behind`);
      }
      const named = await c.ok("find", [
        "/",
        "-xdev",
        "(",
        "-name",
        "*pam_mapi*",
        "-o",
        "-name",
        "*pam-mapi*",
        ")",
        "-not",
        "-path",
        `/root/${debName}`,
      ]);
      assert.equal(named.trim(), "", "files named after the package are left");
      assert.equal(
        (await c.ok("getent", ["passwd", "pam_mapi"])).trim(),
        account,
        "the account changed",
      );
      // /etc/pam.d/smtp, the administrator's, still names the module: every login now fails.
      const login = await pamtester(c, "smtp", "alice", "secret");
      assert.notEqual(login.code, 0);
      assert.match(login.out, /Module is unknown/);
    });

    console.log(
      `systemd container (${spec.suite}, cache ${CACHE_DIR}):\n  ${figures.join("\n  ")}`,
    );
  },
});
