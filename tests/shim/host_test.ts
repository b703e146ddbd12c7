// What pam_mapi does to the process it is loaded into, and what the helper gets from it: threads,
// leaks over 1,000 authentications, the password in /proc, descriptors, environment, signals,
// process groups; and the close_range/pidfd fallbacks.
import assert from "node:assert/strict";
import {
  assertThreadResults,
  build,
  helperDir,
  line,
  LOG_NOTICE,
  pamConf,
  PLAIN,
  ROOT,
  run,
  runDriver,
  runOk,
  TEST_BUILD,
  Variant,
  VARIANTS,
} from "./lib.ts";

async function setup(v: Variant, args: string[] = ["timeout=1"]) {
  await build();
  const { dir, helper } = await helperDir();
  const conf = await pamConf(dir, {
    mapi: [line(v, "auth", [`helper=${helper}`, "daemon=off", ...args])],
  });
  return { dir, helper, conf };
}

for (const v of VARIANTS) {
  Deno.test(`${v.name}: eight threads authenticating at once get their own results`, async () => {
    const { conf } = await setup(v);
    for (const sigchld of ["default", "reaper"]) {
      const r = await runDriver(v, [
        "--sigchld",
        sigchld,
        "--threads",
        "8",
        "--iterations",
        "10",
        conf,
        "mapi",
      ], {
        capture: false,
      });
      assertThreadResults(r.stdout, 8, 10);
      assert.equal(r.kv.children, "0");
      assert.equal(r.kv.reaped, "0");
    }
  });

  Deno.test(`${v.name}: many authentications leave no fd, no zombie${v.name === "plain" ? ", no RSS growth" : ""}`, async () => {
    const { conf } = await setup(v);
    // ASan's quarantine holds freed memory on purpose, so RSS is judged on the plain build only.
    const loops = v.name === "plain" ? 1000 : 300;
    const start = performance.now();
    const r = await runDriver(
      v,
      ["--loops", String(loops), "--password", "pw-alice", conf, "mapi"],
      {
        capture: false,
      },
    );
    const seconds = (performance.now() - start) / 1000;
    assert.match(r.stdout, new RegExp(`loops=${loops} success=${loops} other=0`));
    assert.equal(r.kv.fds_after, r.kv.fds_before, "no descriptor leaked");
    assert.equal(r.kv.children, "0");
    assert.equal(r.kv.zombies, "0");
    if (v.name === "plain") {
      const growth = Number(r.kv.rss_after_kb) - Number(r.kv.rss_before_kb);
      console.log(
        `${loops} authentications in ${
          seconds.toFixed(1)
        } s; RSS ${r.kv.rss_before_kb} -> ${r.kv.rss_after_kb} kB`,
      );
      assert.ok(growth < 512, `RSS grew by ${growth} kB`);
    }
  });

  Deno.test(`${v.name}: the password is in neither cmdline nor environ of the helper or supervisor`, async () => {
    const { helper, conf } = await setup(v, ["timeout=5"]);
    const password = "pw-slow-1500";
    // slow-1500 sleeps 1.5 s after reading the request; the driver reads the password from stdin.
    const child = new Deno.Command(v.driver, {
      args: ["--password-stdin", "--user", "slow-1500", conf, "mapi"],
      env: v.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(password + "\n"));
    await w.close();
    let helperPid = 0;
    for (let i = 0; i < 100 && !helperPid; i++) {
      await new Promise((res) => setTimeout(res, 10));
      for await (const e of Deno.readDir("/proc")) {
        if (!/^\d+$/.test(e.name)) continue;
        try {
          const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
          if (cmd === `${helper}\0--pam\0`) helperPid = Number(e.name);
        } catch { /* gone */ }
      }
    }
    assert.ok(helperPid, "found the running helper");
    const stat = await Deno.readTextFile(`/proc/${helperPid}/stat`);
    const supervisorPid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const supStat = await Deno.readTextFile(`/proc/${supervisorPid}/stat`);
    assert.equal(
      await Deno.readTextFile(`/proc/${supervisorPid}/comm`),
      "pam_mapi_sup\n",
      "the supervisor is named for ps",
    );
    assert.equal(
      Number(supStat.slice(supStat.lastIndexOf(")") + 2).split(" ")[1]),
      child.pid,
      "driver -> supervisor -> helper",
    );
    for (const pid of [helperPid, supervisorPid]) {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
      const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
      assert.ok(!cmdline.includes(password), `password in /proc/${pid}/cmdline`);
      assert.ok(!environ.includes(password), `password in /proc/${pid}/environ`);
    }
    assert.equal(await Deno.readTextFile(`/proc/${helperPid}/environ`), "PATH=/usr/bin:/bin\0");
    // The supervisor holds nothing of the host's: its control pipe, its report pipe, a pidfd.
    const fds: string[] = [];
    for await (const e of Deno.readDir(`/proc/${supervisorPid}/fd`)) {
      fds.push(await Deno.readLink(`/proc/${supervisorPid}/fd/${e.name}`));
    }
    assert.deepEqual(fds.map((f) => f.replace(/\[\d+\]/, "")).sort(), [
      "anon_inode:[pidfd]",
      "pipe:",
      "pipe:",
    ]);
    const out = await child.output();
    assert.match(new TextDecoder().decode(out.stdout), /^auth=PAM_SUCCESS$/m);
  });

  Deno.test(`${v.name}: the helper gets fds 0-2 only, PATH only, default signals, its own group`, async () => {
    const { helper, conf } = await setup(v);
    for (const host of [[], ["--host-signals", "--sigchld", "ign"]]) {
      let r = await runDriver(v, [...host, "--user", "fds", "--password", "x", conf, "mapi"]);
      assert.deepEqual(r.logs, [{ priority: LOG_NOTICE, message: "fds=0,1,2," }]);
      r = await runDriver(v, [...host, "--user", "env", "--password", "x", conf, "mapi"], {
        env: { SECRET_FROM_HOST: "x", LD_PRELOAD: "", DENO_DIR: "/tmp/x" },
      });
      assert.deepEqual(r.logs, [{
        priority: LOG_NOTICE,
        message: `argv=${helper}|--pam| env=PATH=/usr/bin:/bin| pgrp_is_pid=1 ` +
          "sigign=0000000000000000 sigblk=0000000000000000 stdin_is_socket=1",
      }], host.join(" "));
    }
  });

  Deno.test(`${v.name}: the host's signal dispositions are never touched`, async () => {
    const { conf } = await setup(v);
    const trace = await Deno.makeTempFile({ prefix: "pam_mapi_strace_" });
    try {
      // No -f: only the host's own calls. Its SIGCHLD handler is installed once, by the driver.
      const r = await run("strace", [
        "-o",
        trace,
        "-e",
        "trace=rt_sigaction",
        v.driver,
        "--sigchld",
        "reaper",
        "--loops",
        "20",
        "--password",
        "pw-alice",
        conf,
        "mapi",
      ], {
        env: { ...v.env, ...(v.name === "asan" ? { ASAN_OPTIONS: "detect_leaks=0" } : {}) },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /success=20/);
      const st = await Deno.readTextFile(trace);
      assert.equal(st.split("\n").filter((l) => l.includes("SIGCHLD")).length, 1, st);
    } finally {
      await Deno.remove(trace);
    }
  });
}

Deno.test("fallbacks: without close_range and pidfd_open the same guarantees hold", async () => {
  await build();
  const buildDir = await Deno.makeTempDir({ prefix: "pam_mapi_fallback_" });
  try {
    await runOk("make", [
      "-s",
      "-C",
      `${ROOT}/shim`,
      `BUILD=${buildDir}`,
      "EXTRA_CFLAGS=-DPAM_MAPI_TEST_NO_CLOSE_RANGE -DPAM_MAPI_TEST_NO_PIDFD",
    ]);
    const v: Variant = { ...PLAIN, module: `${buildDir}/pam_mapi.so` };
    const { conf } = await setup(v);
    // The fallback build really makes neither call.
    const trace = `${buildDir}/trace`;
    await runOk("strace", [
      "-f",
      "-o",
      trace,
      "-e",
      "trace=close_range,pidfd_open",
      v.driver,
      "--password",
      "pw-alice",
      conf,
      "mapi",
    ]);
    assert.doesNotMatch(await Deno.readTextFile(trace), /close_range\(|pidfd_open\(/);
    let r = await runDriver(v, ["--user", "fds", "--password", "x", conf, "mapi"]);
    assert.deepEqual(r.logs, [{ priority: LOG_NOTICE, message: "fds=0,1,2," }]);
    r = await runDriver(v, [
      "--loops",
      "300",
      "--sigchld",
      "reaper",
      "--password",
      "pw-alice",
      conf,
      "mapi",
    ], { capture: false });
    assert.match(r.stdout, /loops=300 success=300 other=0/);
    assert.equal(r.kv.fds_after, r.kv.fds_before);
    assert.equal(r.kv.zombies, "0");
    const start = performance.now();
    r = await runDriver(v, ["--user", "hangterm", "--password", "x", conf, "mapi"]);
    const seconds = (performance.now() - start) / 1000;
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
    assert.match(r.logs[0].message, /did not finish within 3 s and was killed/);
    assert.ok(seconds < 4.5, `took ${seconds} s`);
    // The reference build (close_range and pidfd_open available) does use both.
    const ref = await setup(PLAIN);
    await runOk("strace", [
      "-f",
      "-o",
      trace,
      "-e",
      "trace=close_range,pidfd_open",
      PLAIN.driver,
      "--password",
      "pw-alice",
      ref.conf,
      "mapi",
    ]);
    const st = await Deno.readTextFile(trace);
    assert.match(st, /close_range\(3, 4294967295, 0\)\s+= 0/);
    assert.match(st, /pidfd_open\(\d+, 0\)\s+= \d+/);
  } finally {
    await Deno.remove(buildDir, { recursive: true });
  }
});

Deno.test("the tests' driver counts children and fds correctly (sanity)", async () => {
  await build();
  const r = await runOk(`${TEST_BUILD}/driver`, ["--dlopen", `${ROOT}/shim/build/pam_mapi.so`]);
  assert.match(r.stdout, /symbol pam_sm_authenticate=found/);
});
