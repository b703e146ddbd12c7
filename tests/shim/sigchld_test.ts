// The helper's exit status must never be lost to the host's SIGCHLD handling: a reaping handler,
// SIG_IGN, or a wait() for any child (shim/README.md, "Starting the helper"). First the kernel
// facts the design rests on (tests/shim/clone_probe.c), then hosts that ignore SIGCHLD, reap every
// child like saslauthd, or interrupt every system call.
import assert from "node:assert/strict";
import { build, helperDir, line, pamConf, runDriver, runOk, TEST_BUILD, VARIANTS } from "./lib.ts";

Deno.test("kernel: an exit-signal-0 clone child is safe from the host only until it calls execve", async () => {
  await build();
  const probe = async (host: string, child: string) =>
    (await runOk(`${TEST_BUILD}/clone_probe`, [host, child])).stdout.trim();
  // execve resets the exit signal to SIGCHLD (fs/exec.c de_thread): the reaper takes the status,
  // SIG_IGN lets the kernel discard it. This is why spawn.c does not rely on it alone ...
  assert.equal(await probe("reaper", "exec"), "host_sigchld=1 host_reaped=1 status=-1");
  assert.equal(await probe("ign", "exec"), "host_sigchld=0 host_reaped=0 status=-1");
  // ... while a clone child that never execs stays invisible and keeps its status,
  assert.equal(await probe("reaper", "noexec"), "host_sigchld=0 host_reaped=0 status=3");
  assert.equal(await probe("ign", "noexec"), "host_sigchld=0 host_reaped=0 status=3");
  // ... and so does the status of a program run by such a supervisor (the shim's design).
  assert.equal(await probe("reaper", "super"), "host_sigchld=0 host_reaped=0 status=3");
  assert.equal(await probe("ign", "super"), "host_sigchld=0 host_reaped=0 status=3");
});

for (const v of VARIANTS) {
  const setup = async () => {
    await build();
    const { dir, helper } = await helperDir();
    const conf = await pamConf(dir, {
      mapi: [line(v, "auth", [`helper=${helper}`, "daemon=off", "timeout=1"])],
    });
    return { dir, conf };
  };

  for (const mode of ["ign", "reaper"]) {
    Deno.test(`${v.name}: host with SIGCHLD ${mode === "ign" ? "set to SIG_IGN" : "handler reaping every child"}`, async () => {
      const { conf } = await setup();
      const cases: Array<[string, string, string]> = [
        ["alice", "pw-alice", "PAM_SUCCESS"],
        ["alice", "wrong", "PAM_AUTH_ERR"],
        ["unavail", "x", "PAM_AUTHINFO_UNAVAIL"],
        ["exit1", "pw-exit1", "PAM_SERVICE_ERR"], // a lost status would not look like exit 1 either
        ["crash", "pw-crash", "PAM_SERVICE_ERR"],
      ];
      for (const [user, pw, expect] of cases) {
        const r = await runDriver(v, [
          "--sigchld",
          mode,
          "--user",
          user,
          "--password",
          pw,
          conf,
          "mapi",
        ]);
        assert.equal(r.kv.auth, expect, `${mode} ${user}`);
        assert.equal(r.kv.reaped, "0", "the host's handler never saw our processes");
        assert.equal(r.kv.zombies, "0");
        if (expect === "PAM_SERVICE_ERR") {
          assert.match(
            r.logs[0].message,
            /exited with status 1|killed by signal 11/,
            "the real status",
          );
        }
      }
      // Many in a row: nothing is ever lost, nothing accumulates.
      const loop = await runDriver(v, [
        "--sigchld",
        mode,
        "--loops",
        "200",
        "--password",
        "pw-alice",
        conf,
        "mapi",
      ], {
        capture: false,
      });
      assert.match(loop.stdout, /loops=200 success=200 other=0/);
      assert.equal(loop.kv.reaped, "0");
      assert.equal(loop.kv.children, "0");
    });
  }

  Deno.test(`${v.name}: every system call interrupted by signals (no SA_RESTART)`, async () => {
    const { conf } = await setup();
    // A thread sends SIGUSR1 to the authenticating thread every millisecond, on top of a
    // saslauthd-like reaper: poll, read, waitpid must all retry on EINTR.
    const r = await runDriver(v, [
      "--eintr",
      "--sigchld",
      "reaper",
      "--loops",
      "200",
      "--password",
      "pw-alice",
      conf,
      "mapi",
    ], {
      capture: false,
    });
    assert.match(r.stdout, /loops=200 success=200 other=0/);
    const f = await runDriver(v, [
      "--eintr",
      "--user",
      "slow-500",
      "--password",
      "wrong",
      conf,
      "mapi",
    ]);
    assert.equal(f.kv.auth, "PAM_AUTH_ERR");
    const h = await runDriver(v, ["--eintr", "--user", "hang", "--password", "x", conf, "mapi"]);
    assert.equal(h.kv.auth, "PAM_SERVICE_ERR");
    assert.match(h.logs[0].message, /did not finish within 3 s and was killed/);
  });
}
